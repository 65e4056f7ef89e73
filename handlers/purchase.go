// A paywalled path's purchase (SPEC §4.4): pay_url, where the order is made
// when the buyer chooses how to pay; the receipt handed to the browser that
// paid; and receipt_url, where a program fetches it.
package handlers

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/sign"
	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/templates"
)

const (
	// buyLinkTTL is how long a pay_url can start an order: long enough to
	// pay later in the day, short enough that old links die.
	buyLinkTTL = 24 * time.Hour
	// purchaseCookiePrefix starts the name of the cookie that marks the
	// browser which made a purchase: only it is handed the receipt.
	purchaseCookiePrefix = "checkout_purchase_"
)

// purchase is one purchase of a priced path, named by a random nonce:
// pay_url and receipt_url carry "<nonce>.<b|p>.<unix exp>.<mac>" and the
// path (b for a browser, sent back to the path after paying; p for a
// program, which fetches the receipt). The two MACs differ, so that
// whoever sees pay_url (the person paying, a shared link) cannot make
// receipt_url from it. Making one stores nothing.
type purchase struct {
	nonce   string
	program bool
	path    string // the path to send the buyer back to, escaped
	exp     time.Time
	expired bool // too old to start an order (a receipt_url still answers)
}

func (pu purchase) orderID() string { return paywallIDPrefix + pu.nonce }

func (pu purchase) client() string {
	if pu.program {
		return "p"
	}
	return "b"
}

func (s *Site) newPurchase(p string, program bool) purchase {
	return purchase{nonce: order.NewRef(), program: program, path: p, exp: s.now().Add(buyLinkTTL).Truncate(time.Second)}
}

// purchaseToken is the token of pay_url ("buy") or receipt_url
// ("receipt-url").
func (s *Site) purchaseToken(pu purchase, purpose string) string {
	return pu.nonce + "." + pu.client() + "." + s.cfg.Secret.Token(purpose, s.purchaseSubject(pu), pu.exp)
}

// purchaseSubject is what a purchase's tokens sign: the site, the nonce,
// the kind of purchase and the path.
func (s *Site) purchaseSubject(pu purchase) string {
	return s.cfg.Site + "\n" + pu.nonce + "\n" + pu.client() + "\n" + pu.path
}

// payURL and receiptURL are the purchase's routes under base_path.
func (s *Site) payURL(pu purchase) string {
	return s.cfg.BasePath + "/buy/" + s.purchaseToken(pu, "buy") + "?path=" + url.QueryEscape(pu.path)
}

func (s *Site) receiptURL(pu purchase) string {
	return s.cfg.BasePath + "/receipt/" + s.purchaseToken(pu, "receipt-url") + "?path=" + url.QueryEscape(pu.path)
}

// openPurchase checks the token of a pay_url ("buy") or receipt_url
// ("receipt-url") request. An expired one is returned, marked.
func (s *Site) openPurchase(r *http.Request, purpose string) (purchase, bool) {
	parts := strings.SplitN(r.PathValue("token"), ".", 3)
	p := r.URL.Query().Get("path")
	if len(parts) != 3 || len(parts[0]) != 26 || (parts[1] != "b" && parts[1] != "p") || !localTarget(p) || len(p) > maxPricedPath {
		return purchase{}, false
	}
	pu := purchase{nonce: parts[0], program: parts[1] == "p", path: p}
	err := s.cfg.Secret.VerifyToken(parts[2], purpose, s.purchaseSubject(pu), s.now())
	if err != nil && !errors.Is(err, sign.ErrExpired) {
		return purchase{}, false
	}
	exp, _, _ := strings.Cut(parts[2], ".")
	unix, _ := strconv.ParseInt(exp, 10, 64) // checked by VerifyToken
	pu.exp, pu.expired = time.Unix(unix, 0), err != nil
	return pu, true
}

// purchaseOf checks a pay_url's token and finds its price; it writes the
// error page.
func (s *Site) purchaseOf(w http.ResponseWriter, r *http.Request) (purchase, *price, bool) {
	pu, ok := s.openPurchase(r, "buy")
	if !ok {
		s.fail(w, r, http.StatusNotFound, "error.not_found")
		return pu, nil, false
	}
	var pr *price
	if u, err := url.Parse(pu.path); err == nil {
		pr, _, _ = s.priceOf(u)
	}
	if pr == nil {
		s.fail(w, r, http.StatusNotFound, "error.not_for_sale")
		return pu, nil, false
	}
	return pu, pr, true
}

// serveBuy is pay_url: the price and the ways to pay. It reads the store
// only to find an order this purchase already has, and writes nothing.
func (s *Site) serveBuy(w http.ResponseWriter, r *http.Request) {
	pu, pr, ok := s.purchaseOf(w, r)
	if !ok {
		return
	}
	o, err := s.cfg.Store.Get(r.Context(), order.Key{Site: s.cfg.Site, ID: pu.orderID()})
	switch {
	case err == nil:
		s.showPurchase(w, r, o)
		return
	case !errors.Is(err, store.ErrNotFound):
		s.internalError(w, r, "reading order", err)
		return
	case pu.expired:
		s.fail(w, r, http.StatusGone, "error.buy_link_expired")
		return
	}
	if s.resumePurchase(w, r, pr, pu) {
		return
	}
	p := templates.Page{
		Name:        "pay",
		Description: pr.Description,
		Amount:      pr.amount,
		Providers:   s.choicesFor(r, "", pr.amount.Currency()),
		CSRF:        s.csrfToken("buy\n" + pu.nonce),
		Action:      r.URL.RequestURI(),
		ContinueURL: "/",
	}
	p.FormOrigins = s.formOrigins(p.Providers)
	s.render(w, r, http.StatusOK, p)
}

// serveBuyPost is the choice made at pay_url: the order is made now (the
// same one for every post of one purchase), this browser is marked as the
// buyer's, and the chosen provider is started.
func (s *Site) serveBuyPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	pu, pr, ok := s.purchaseOf(w, r)
	if !ok {
		return
	}
	if !s.verifyCSRF(r, "buy\n"+pu.nonce) {
		s.fail(w, r, http.StatusForbidden, "error.form_expired")
		return
	}
	name := r.PostFormValue("provider")
	if p, ok := s.providers[name]; !ok || !accepts(p, pr.amount.Currency()) {
		s.fail(w, r, http.StatusBadRequest, "error.choose_shown")
		return
	}
	key := order.Key{Site: s.cfg.Site, ID: pu.orderID()}
	if pu.expired {
		// An order made already goes on; a new one is not made.
		o, err := s.cfg.Store.Get(r.Context(), key)
		switch {
		case errors.Is(err, store.ErrNotFound):
			s.fail(w, r, http.StatusGone, "error.buy_link_expired")
			return
		case err != nil:
			s.internalError(w, r, "reading order", err)
			return
		case !o.Status.Open():
			s.showPurchase(w, r, o)
			return
		}
	}
	client := "browser"
	if pu.program {
		client = "program"
	}
	in := order.Intake{Key: key, Amount: pr.amount, Description: pr.Description,
		Metadata: map[string]string{metaPath: pu.path, metaPrice: pr.Path, metaClient: client}}
	o, _, err := s.Receive(r.Context(), in, name)
	if errors.Is(err, order.ErrAmountFixed) {
		// The price changed after this purchase ended: show how it ended.
		if o, err = s.cfg.Store.Get(r.Context(), key); err == nil {
			s.showPurchase(w, r, o)
			return
		}
	}
	if err != nil {
		s.internalError(w, r, "storing order", err)
		return
	}
	if !o.Status.Open() {
		s.showPurchase(w, r, o)
		return
	}
	s.markBuyer(w, r, o)
	s.sendToProvider(w, r, o, name)
}

// lateAllowance is how long after an order's deadline its buyer cookie
// still lasts (a payment that arrives late still pays it), beyond the
// receipt's life.
const lateAllowance = 7 * 24 * time.Hour

// buyerCookie names the cookie of the buyer of o: one per price and kind
// of purchase (b or p), so that a browser holds few, and finding its
// purchase of a price takes one store read.
func (s *Site) buyerCookie(o *order.Order) string {
	client := "b_"
	if o.Metadata[metaClient] == "program" {
		client = "p_"
	}
	return purchaseCookiePrefix + client + priceID(s.cfg.Site, o.Metadata[metaPrice])
}

// markBuyer gives the browser that made a purchase a cookie saying so,
// "<nonce>.<unix exp>.<mac>", for as long as the order may yet be paid and
// its receipt last: the receipt is handed only to it, never to whoever
// opens a link of the purchase later (a pay_url or a pay page shared after
// paying).
func (s *Site) markBuyer(w http.ResponseWriter, r *http.Request, o *order.Order) {
	base := o.Deadline()
	if now := s.now(); base.Before(now) {
		base = now
	}
	exp := base.Add(s.receiptTTL + lateAllowance).Truncate(time.Second)
	s.setCookie(w, r, s.buyerCookie(o), strings.TrimPrefix(o.ID, paywallIDPrefix)+"."+s.cfg.Secret.Token("purchase", s.cfg.Site+"\n"+o.ID, exp),
		s.cfg.BasePath, exp)
}

// setCookie sets one of the paywall's cookies: HttpOnly, SameSite=Lax,
// Secure when the site is reached over https, until exp.
func (s *Site) setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, exp time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: path, Expires: exp, MaxAge: int(exp.Sub(s.now()) / time.Second),
		HttpOnly: true, Secure: strings.HasPrefix(s.publicURL(r), "https:"), SameSite: http.SameSiteLaxMode,
	})
}

// isBuyer reports whether r comes from the browser that made o.
func (s *Site) isBuyer(r *http.Request, o *order.Order) bool {
	c, err := r.Cookie(s.buyerCookie(o))
	if err != nil {
		return false
	}
	nonce, tok, _ := strings.Cut(c.Value, ".")
	return paywallIDPrefix+nonce == o.ID && s.cfg.Secret.VerifyToken(tok, "purchase", s.cfg.Site+"\n"+o.ID, s.now()) == nil
}

// resumePurchase looks for a purchase of pr that this browser made for
// itself before (its buyer cookie for the price) and, rather than offering
// to pay again, hands over its receipt (paid while the buyer was away)
// sending it on to target, or sends it back to its pay page (still open).
// It reports whether it answered. A program's pay_url is never resumed:
// its program waits for its own receipt_url.
func (s *Site) resumePurchase(w http.ResponseWriter, r *http.Request, pr *price, pu purchase) bool {
	if pu.program {
		return false
	}
	c, err := r.Cookie(purchaseCookiePrefix + "b_" + pr.id)
	if err != nil {
		return false
	}
	nonce, _, _ := strings.Cut(c.Value, ".")
	if len(nonce) != 26 || nonce == pu.nonce {
		return false
	}
	id := paywallIDPrefix + nonce
	o, err := s.cfg.Store.Get(r.Context(), order.Key{Site: s.cfg.Site, ID: id})
	if err != nil || o.Metadata[metaPrice] != pr.Path || o.Metadata[metaClient] == "program" || !s.isBuyer(r, o) {
		return false
	}
	switch {
	case o.Status == order.Paid && s.now().Before(o.PaidAt.Add(s.receiptTTL)):
		s.deliverReceiptTo(w, r, o, o.Current().Ref, pu.path)
		return true
	case o.Status.Open():
		http.Redirect(w, r, s.cfg.BasePath+"/pay/"+o.Current().Ref, http.StatusSeeOther)
		return true
	}
	return false
}

// keepBuyer renews the buyer cookie of a paywall order whenever its buyer
// comes by, so that it outlasts a hold of days set after the purchase
// began.
func (s *Site) keepBuyer(w http.ResponseWriter, r *http.Request, o *order.Order) {
	if isPaywall(o) && s.isBuyer(r, o) {
		s.markBuyer(w, r, o)
	}
}

// localTarget reports whether p is a path of this site that can go in a
// Location header as it is: absolute, not "//", printable ASCII.
func localTarget(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] <= ' ' || p[i] >= 0x7f {
			return false
		}
	}
	return true
}

// showPurchase shows an order a pay_url already made: its pay page while
// open, its receipt once paid, how it ended otherwise.
func (s *Site) showPurchase(w http.ResponseWriter, r *http.Request, o *order.Order) {
	if o.Status.Open() {
		http.Redirect(w, r, s.cfg.BasePath+"/pay/"+o.Current().Ref, http.StatusSeeOther)
		return
	}
	s.showEnded(w, r, o)
}

// isPaywall reports whether o was made at a pay_url.
func isPaywall(o *order.Order) bool {
	return o != nil && strings.HasPrefix(o.ID, paywallIDPrefix) && o.Metadata[metaPrice] != ""
}

// receiptOf is the receipt of a paid paywall order and when it expires.
func (s *Site) receiptOf(o *order.Order) (string, time.Time) {
	exp := o.PaidAt.Add(s.receiptTTL).Truncate(time.Second)
	return s.receipt(o.Metadata[metaPrice], o.ID, exp), exp
}

// deliverReceipt hands a paid paywall order's receipt to the browser that
// bought it: as the price's cookie, and then the path itself (a browser's
// purchase) or the paid page showing the receipt (a program's). Anyone
// else is told the order is paid, and given nothing.
func (s *Site) deliverReceipt(w http.ResponseWriter, r *http.Request, o *order.Order, ref string) {
	s.deliverReceiptTo(w, r, o, ref, o.Metadata[metaPath])
}

// deliverReceiptTo is deliverReceipt sending a browser on to target (an
// escaped path of the price).
func (s *Site) deliverReceiptTo(w http.ResponseWriter, r *http.Request, o *order.Order, ref, target string) {
	rc, exp := s.receiptOf(o)
	if !s.now().Before(exp) || !s.isBuyer(r, o) {
		if s.now().Before(exp) {
			s.log.Info("paid purchase opened by another browser than the buyer's: receipt not handed out",
				zap.String("site", s.cfg.Site), zap.String("order", o.ID))
		}
		s.render(w, r, http.StatusOK, s.page("already_paid", o, ref))
		return
	}
	var pr *price
	for _, p := range s.prices {
		if p.Path == o.Metadata[metaPrice] {
			pr = p
		}
	}
	if pr == nil {
		// The price is gone from the config: the receipt opens nothing.
		s.render(w, r, http.StatusOK, s.page("already_paid", o, ref))
		return
	}
	s.setCookie(w, r, pr.cookie, rc, pr.cookiePath(), exp)
	if !localTarget(target) {
		target = escapePath(pr.dir())
	}
	if o.Metadata[metaClient] != "program" {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, s.publicURL(r)+target, http.StatusSeeOther)
		return
	}
	p := s.page("paid", o, ref)
	p.Receipt, p.ReceiptExpires, p.ContinueURL = rc, exp, target
	s.render(w, r, http.StatusOK, p)
}

// serveReceipt is receipt_url: {receipt, expires_at} once the purchase is
// paid, 402 until then, 410 when it can no longer be.
func (s *Site) serveReceipt(w http.ResponseWriter, r *http.Request) {
	pu, ok := s.openPurchase(r, "receipt-url")
	if !ok || !pu.program {
		writeAPIError(w, http.StatusNotFound, "no such purchase")
		return
	}
	o, err := s.cfg.Store.Get(r.Context(), order.Key{Site: s.cfg.Site, ID: pu.orderID()})
	switch {
	case errors.Is(err, store.ErrNotFound) && pu.expired:
		writeJSON(w, http.StatusGone, receiptAnswer{Status: "unpaid", Error: "nothing was paid with this pay_url and it has expired; request the path again for a new one"})
		return
	case errors.Is(err, store.ErrNotFound):
		writeJSON(w, http.StatusPaymentRequired, receiptAnswer{Status: "unpaid", Error: "not paid yet", PayURL: s.publicURL(r) + s.payURL(pu)})
		return
	case err != nil:
		s.apiInternal(w, "reading order", err)
		return
	}
	switch o.Status {
	case order.Paid:
		rc, exp := s.receiptOf(o)
		if !s.now().Before(exp) {
			writeJSON(w, http.StatusGone, receiptAnswer{Status: "expired_receipt", Error: "the receipt has expired; request the path again to pay for a new one"})
			return
		}
		writeJSON(w, http.StatusOK, receiptAnswer{Status: string(o.Status), Receipt: rc, ExpiresAt: &exp, Path: o.Metadata[metaPrice], OrderID: o.ID})
	case order.Pending, order.OnHold:
		writeJSON(w, http.StatusPaymentRequired, receiptAnswer{Status: string(o.Status), Error: "not paid yet",
			PayURL: s.url(r, "/pay/"+o.Current().Ref), OrderID: o.ID})
	default:
		writeJSON(w, http.StatusGone, receiptAnswer{Status: string(o.Status), Error: "this purchase is " + string(o.Status) + "; request the path again to pay anew", OrderID: o.ID})
	}
}

// receiptAnswer is what receipt_url says.
type receiptAnswer struct {
	Status    string     `json:"status"`
	Receipt   string     `json:"receipt,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Path      string     `json:"path,omitempty"` // what the receipt opens
	OrderID   string     `json:"order_id,omitempty"`
	PayURL    string     `json:"pay_url,omitempty"`
	Error     string     `json:"error,omitempty"`
}
