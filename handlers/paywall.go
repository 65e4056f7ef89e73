// Paywalled routes (SPEC §4.4): a path sold for a price, with no shop
// behind it. A request for the path without a receipt learns the price
// and where to pay and stores nothing; the order is made when someone
// chooses how to pay at pay_url; a paid order gives a receipt (a cookie
// for a browser, a bearer token for a program) that opens the path until
// it expires or the order is refunded.
package handlers

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/sign"
	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/templates"
)

// Price sells access to a path.
type Price struct {
	// Path is an exact path ("/downloads/ebook.pdf") or a prefix ending
	// in "/*" ("/reports/*": /reports and everything under it).
	Path string
	// Amount is a decimal in the currency's major units ("9.99").
	Amount      string
	Currency    string
	Description string
}

// DefaultReceiptTTL is how long a receipt opens its path unless
// configured.
const DefaultReceiptTTL = 30 * 24 * time.Hour

const (
	// paywallIDPrefix starts the order id of every paywall order; the rest
	// is the purchase's random nonce.
	paywallIDPrefix = "paywall-"
	// receiptCookie holds a browser's receipt, one per priced path.
	receiptCookie = "checkout_receipt"
	// buyLinkTTL is how long a pay_url can start an order: long enough to
	// pay later in the day, short enough that old links die.
	buyLinkTTL = 24 * time.Hour
	// Metadata keys of a paywall order, also sent to the shop in its
	// callbacks (data.metadata).
	metaPath   = "path"   // the path that was asked for
	metaPrice  = "price"  // the price's path, which the receipt opens
	metaClient = "client" // "browser" (sent back to the path) or "program" (shown the receipt)
)

// price is a Price checked and ready to match.
type price struct {
	Price
	// exact is the cleaned path of an exact price; prefix the cleaned
	// path before "/*" of a prefix price ("/reports").
	exact, prefix string
	amount        money.Amount
}

// cookiePath is where a browser sends the price's receipt cookie: the
// exact path, or the prefix (which covers /reports and /reports/...).
func (p *price) cookiePath() string {
	v := p.exact
	if v == "" {
		v = p.prefix
	}
	return (&url.URL{Path: v}).EscapedPath()
}

// checkPricePaths checks the shape of the prices' paths: each an exact
// path or a prefix ending in /*, outside base_path, and no request path
// matched by two of them.
func checkPricePaths(list []Price, base string) ([]*price, error) {
	out := make([]*price, 0, len(list))
	for _, p := range list {
		raw := p.Path
		pr := &price{Price: p}
		if !strings.HasPrefix(raw, "/") || strings.ContainsAny(raw, "?#;,\\ ") || strings.ContainsFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, fmt.Errorf("price %q: want a path such as /downloads/ebook.pdf, or a prefix such as /reports/*", raw)
		}
		if strings.Contains(strings.TrimSuffix(raw, "/*"), "*") {
			return nil, fmt.Errorf("price %q: a * may only end a prefix, as in /reports/*", raw)
		}
		if rest, ok := strings.CutSuffix(raw, "/*"); ok {
			pr.prefix = path.Clean("/" + rest)
			if pr.prefix != "/"+strings.TrimPrefix(rest, "/") {
				return nil, fmt.Errorf("price %q: write the path in its plain form (%s/*)", raw, pr.prefix)
			}
		} else {
			pr.exact = path.Clean(raw)
			if pr.exact != raw && pr.exact+"/" != raw {
				return nil, fmt.Errorf("price %q: write the path in its plain form (%s)", raw, pr.exact)
			}
		}
		if pr.prefix == "/" {
			return nil, fmt.Errorf("price %q: selling the whole site is not supported; price a prefix such as /members/*", raw)
		}
		if b := path.Clean(base); pr.covers(b) || strings.HasPrefix(pr.exact+pr.prefix+"/", b+"/") {
			return nil, fmt.Errorf("price %q: overlaps base_path %s, where the checkout's own routes are", raw, base)
		}
		for _, q := range out {
			if q.overlaps(pr) {
				return nil, fmt.Errorf("price %q overlaps price %q: a path may have one price", raw, q.Path)
			}
		}
		if !utf8.ValidString(p.Description) || strings.ContainsAny(p.Description, "\x00\r\n") || len(p.Description) > order.MaxDescriptionLen {
			return nil, fmt.Errorf("price %q: the description must be one line of UTF-8 text, at most %d bytes", raw, order.MaxDescriptionLen)
		}
		out = append(out, pr)
	}
	return out, nil
}

// covers reports whether the price applies to the cleaned path p.
func (p *price) covers(cp string) bool {
	if p.exact != "" {
		return cp == p.exact
	}
	return cp == p.prefix || (strings.HasPrefix(cp, p.prefix) && cp[len(p.prefix)] == '/')
}

func (p *price) overlaps(q *price) bool {
	if p.exact != "" && q.exact != "" {
		return p.exact == q.exact
	}
	return p.covers(q.exact+q.prefix) || q.covers(p.exact+p.prefix)
}

// checkPrices parses the prices' amounts once the providers have
// registered their currencies, and refuses a price no provider can take.
func (s *Site) checkPrices() error {
	for _, pr := range s.prices {
		amt, err := s.currencies.Parse(pr.Amount, pr.Currency)
		if err != nil {
			return fmt.Errorf("price %s: %v", pr.Path, err)
		}
		if !slices.ContainsFunc(s.cfg.Providers, func(p provider.Provider) bool { return accepts(p, pr.Currency) }) {
			return fmt.Errorf("price %s: no payment provider of this site takes %s", pr.Path, pr.Currency)
		}
		pr.amount = amt
	}
	return nil
}

// priceFor is the price of a request path, or nil. The path is cleaned
// first: /downloads//ebook.pdf and /downloads/./ebook.pdf reach the same
// file as /downloads/ebook.pdf, so they cost the same.
func (s *Site) priceFor(p string) *price {
	if len(s.prices) == 0 {
		return nil
	}
	cp := path.Clean(p)
	for _, pr := range s.prices {
		if pr.covers(cp) {
			return pr
		}
	}
	return nil
}

// --- the priced path ---

// servePriced answers a request for a priced path: passed on with the
// signed paid headers when it carries a valid receipt, else sent to pay
// (a browser) or told the price (a program). Without a receipt it reads
// and writes nothing.
func (s *Site) servePriced(w http.ResponseWriter, r *http.Request, pr *price, next Next) error {
	rc, refused, err := s.receiptOrder(r, pr)
	if err != nil {
		// Fail closed: a receipt that cannot be checked opens nothing.
		s.log.Error("checking a receipt", zap.String("site", s.cfg.Site), zap.Error(err))
		w.Header().Set("Retry-After", "5")
		if wantsHTML(r) {
			s.fail(w, r, http.StatusServiceUnavailable, "error.unavailable")
		} else {
			writeAPIError(w, http.StatusServiceUnavailable, "receipts cannot be checked right now; try again shortly")
		}
		return nil
	}
	if rc != nil {
		s.setPaidHeaders(r, rc)
		if s.cfg.Intake.Headers {
			return s.proxyWatchingHeaders(w, r, next)
		}
		return next(w, r)
	}
	tok := s.buyToken(r.URL.Path, !wantsHTML(r))
	payURL := s.cfg.BasePath + "/buy/" + tok
	if wantsHTML(r) {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, payURL, http.StatusSeeOther)
		return nil
	}
	body := paymentRequired{
		Error:       "payment_required",
		Message:     "Payment required: a person pays at pay_url; then GET receipt_url for the receipt and send it in the header Authorization: Bearer followed by the receipt.",
		Amount:      pr.amount.String(),
		Currency:    pr.amount.Currency(),
		Description: pr.Description,
		Path:        pr.Path,
		PayURL:      s.publicURL(r) + payURL,
		ReceiptURL:  s.publicURL(r) + s.cfg.BasePath + "/receipt/" + tok,
		ReceiptTTL:  int64(s.receiptTTL / time.Second),
		Refused:     refused,
	}
	writeJSON(w, http.StatusPaymentRequired, body)
	return nil
}

// paymentRequired is the 402 body a program gets.
type paymentRequired struct {
	Error       string `json:"error"`
	Message     string `json:"message"`
	Amount      string `json:"amount"`
	Currency    string `json:"currency"`
	Description string `json:"description,omitempty"`
	Path        string `json:"path"`
	PayURL      string `json:"pay_url"`
	ReceiptURL  string `json:"receipt_url"`
	ReceiptTTL  int64  `json:"receipt_ttl_seconds"`
	// Refused says why a receipt sent with the request opened nothing.
	Refused string `json:"receipt_refused,omitempty"`
}

// wantsHTML reports whether the client takes text/html: a browser, as
// opposed to a program (curl sends */*, which does not count).
func wantsHTML(r *http.Request) bool {
	for _, part := range r.Header.Values("Accept") {
		for v := range strings.SplitSeq(part, ",") {
			typ, params, err := mime.ParseMediaType(strings.TrimSpace(v))
			if err != nil || (typ != "text/html" && typ != "application/xhtml+xml") {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err != nil || f <= 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}

// receiptOrder finds a valid receipt for pr sent with r (Authorization:
// Bearer, or the receipt cookie) and removes the receipt from the request,
// which goes on to the upstream. With no valid receipt it returns nil and,
// when one was sent, why it opened nothing. An error means the store could
// not be read.
func (s *Site) receiptOrder(r *http.Request, pr *price) (*receiptEntry, string, error) {
	var candidates []string
	bearer := false
	if v := r.Header.Get("Authorization"); len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		if tok := strings.TrimSpace(v[7:]); strings.HasPrefix(tok, paywallIDPrefix) {
			candidates, bearer = append(candidates, tok), true
		}
	}
	for _, c := range r.CookiesNamed(receiptCookie) {
		candidates = append(candidates, c.Value)
	}
	refused := ""
	now := s.now()
	for _, tok := range candidates {
		rc := s.receipts.get(tok, pr.Path, now)
		if rc == nil {
			epoch := s.receipts.epoch.Load()
			o, until, why, err := s.openReceipt(r.Context(), pr, tok, now)
			if err != nil {
				return nil, "", err
			}
			if o == nil {
				if refused == "" {
					refused = why
				}
				continue
			}
			rc = s.receipts.put(tok, pr.Path, o, earlier(until, now.Add(receiptFresh)), epoch)
		}
		if bearer {
			delete(r.Header, "Authorization")
		}
		if len(r.Header["Cookie"]) > 0 {
			dropCookie(r, receiptCookie)
		}
		return rc, "", nil
	}
	return nil, refused, nil
}

// setPaidHeaders gives r the signed headers of SPEC §6.2 for the
// receipt's order. They are made once per receipt, path and second.
func (s *Site) setPaidHeaders(r *http.Request, rc *receiptEntry) {
	now := s.now()
	method, p := r.Method, r.URL.EscapedPath()
	sh := rc.signed.Load()
	if sh == nil || sh.unix != now.Unix() || sh.method != method || sh.path != p {
		sh = &signedHeaders{unix: now.Unix(), method: method, path: p, vals: s.shopHeaders(method, p, rc.o, now)}
		rc.signed.Store(sh)
	}
	setHeaders(r.Header, &sh.vals)
}

// receipt is "<order id>.<unix expiry>.<mac>": the order it proves paid and
// when it stops opening the price's path. It holds no secret and nothing
// about the customer; the MAC binds the site and the price's path.
func (s *Site) receipt(pr string, orderID string, exp time.Time) string {
	return orderID + "." + s.cfg.Secret.Token("receipt", s.cfg.Site+"\n"+pr+"\n"+orderID, exp)
}

// openReceipt checks a receipt for pr at now: the signature, the expiry,
// and that its order is still paid (a refund revokes it). It returns the
// order and when the receipt expires, or why it opens nothing.
func (s *Site) openReceipt(ctx context.Context, pr *price, tok string, now time.Time) (o *order.Order, until time.Time, why string, err error) {
	id, rest, ok := strings.Cut(tok, ".")
	if !ok || !strings.HasPrefix(id, paywallIDPrefix) || len(id) > order.MaxIDLen {
		return nil, until, "the receipt is not one of this site's", nil
	}
	switch err := s.cfg.Secret.VerifyToken(rest, "receipt", s.cfg.Site+"\n"+pr.Path+"\n"+id, now); {
	case errors.Is(err, sign.ErrExpired):
		return nil, until, "the receipt has expired", nil
	case err != nil:
		return nil, until, "the receipt is not valid for this path", nil
	}
	exp, _, _ := strings.Cut(rest, ".")
	unix, _ := strconv.ParseInt(exp, 10, 64) // checked by VerifyToken
	o, err = s.cfg.Store.Get(ctx, order.Key{Site: s.cfg.Site, ID: id})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, until, "the receipt's order is unknown", nil
	case err != nil:
		return nil, until, "", err
	case o.Status == order.Refunded:
		return nil, until, "the order was refunded", nil
	case o.Status != order.Paid || o.Metadata[metaPrice] != pr.Path:
		return nil, until, "the receipt's order is not paid", nil
	case !now.Before(o.PaidAt.Add(s.receiptTTL)):
		return nil, until, "the receipt has expired", nil
	}
	return o, earlier(time.Unix(unix, 0), o.PaidAt.Add(s.receiptTTL)), "", nil
}

// dropCookie removes every cookie called name from r's Cookie headers,
// keeping the others byte for byte.
func dropCookie(r *http.Request, name string) {
	lines := r.Header["Cookie"]
	changed := false
	for i, line := range lines {
		if !strings.Contains(line, name) {
			continue
		}
		var kept []string
		for part := range strings.SplitSeq(line, ";") {
			k, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if k == name {
				changed = true
				continue
			}
			kept = append(kept, strings.TrimSpace(part))
		}
		lines[i] = strings.Join(kept, "; ")
	}
	if changed {
		r.Header["Cookie"] = slices.DeleteFunc(lines, func(l string) bool { return l == "" })
	}
}

// --- pay_url and receipt_url ---

// buyToken names one purchase of the path p: "<nonce>.<b|p>.<exp>.<mac>",
// b for a browser (sent back to the path after paying) and p for a
// program (shown the receipt). The path travels in the URL beside it.
// Making one stores nothing.
func (s *Site) buyToken(p string, program bool) string {
	client := "b"
	if program {
		client = "p"
	}
	nonce := order.NewRef()
	tok := nonce + "." + client + "." + s.cfg.Secret.Token("buy", s.buySubject(nonce, client, p), s.now().Add(buyLinkTTL))
	return tok + "?path=" + url.QueryEscape(p)
}

func (s *Site) buySubject(nonce, client, p string) string {
	return s.cfg.Site + "\n" + nonce + "\n" + client + "\n" + p
}

// purchase is a checked buy token.
type purchase struct {
	nonce   string
	program bool
	path    string // the path asked for
	expired bool   // too old to start an order (a receipt_url still answers)
}

func (pu purchase) orderID() string { return paywallIDPrefix + pu.nonce }

// openBuyToken checks the token of a pay_url or receipt_url.
func (s *Site) openBuyToken(r *http.Request) (purchase, bool) {
	parts := strings.SplitN(r.PathValue("token"), ".", 3)
	p := r.URL.Query().Get("path")
	if len(parts) != 3 || len(parts[0]) != 26 || (parts[1] != "b" && parts[1] != "p") || !strings.HasPrefix(p, "/") {
		return purchase{}, false
	}
	err := s.cfg.Secret.VerifyToken(parts[2], "buy", s.buySubject(parts[0], parts[1], p), s.now())
	if err != nil && !errors.Is(err, sign.ErrExpired) {
		return purchase{}, false
	}
	return purchase{nonce: parts[0], program: parts[1] == "p", path: p, expired: err != nil}, true
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
// same one for every post of one purchase) and the chosen provider
// started.
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
	if pu.expired {
		// An order made already goes on; a new one is not made.
		o, err := s.cfg.Store.Get(r.Context(), order.Key{Site: s.cfg.Site, ID: pu.orderID()})
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
	in := order.Intake{Key: order.Key{Site: s.cfg.Site, ID: pu.orderID()}, Amount: pr.amount, Description: pr.Description,
		Metadata: map[string]string{metaPath: pu.path, metaPrice: pr.Path, metaClient: client}}
	o, _, err := s.Receive(r.Context(), in, name)
	if errors.Is(err, order.ErrAmountFixed) {
		// The price changed after this purchase ended: show how it ended.
		if o, err = s.cfg.Store.Get(r.Context(), in.Key); err == nil {
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
	s.sendToProvider(w, r, o, name)
}

// purchaseOf checks a pay_url's token and finds its price; it writes the
// error page.
func (s *Site) purchaseOf(w http.ResponseWriter, r *http.Request) (purchase, *price, bool) {
	pu, ok := s.openBuyToken(r)
	if !ok {
		s.fail(w, r, http.StatusNotFound, "error.not_found")
		return pu, nil, false
	}
	pr := s.priceFor(pu.path)
	if pr == nil {
		s.fail(w, r, http.StatusNotFound, "error.not_for_sale")
		return pu, nil, false
	}
	return pu, pr, true
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
	return strings.HasPrefix(o.ID, paywallIDPrefix) && o.Metadata[metaPrice] != ""
}

// receiptOf is the receipt of a paid paywall order and when it expires.
func (s *Site) receiptOf(o *order.Order) (string, time.Time) {
	exp := o.PaidAt.Add(s.receiptTTL).Truncate(time.Second)
	return s.receipt(o.Metadata[metaPrice], o.ID, exp), exp
}

// deliverReceipt hands a paid paywall order's receipt to the customer who
// paid it: as a cookie for the price's path, and then the path itself (a
// browser) or the paid page showing the receipt (someone paying for a
// program).
func (s *Site) deliverReceipt(w http.ResponseWriter, r *http.Request, o *order.Order, ref string) {
	rc, exp := s.receiptOf(o)
	target, err := localPath(o.Metadata[metaPath])
	if !s.now().Before(exp) || err != nil {
		s.render(w, r, http.StatusOK, s.page("already_paid", o, ref))
		return
	}
	cookiePath := target
	if pr := s.priceFor(target); pr != nil && pr.Path == o.Metadata[metaPrice] {
		cookiePath = pr.cookiePath()
	}
	http.SetCookie(w, &http.Cookie{
		Name: receiptCookie, Value: rc, Path: cookiePath,
		Expires: exp, MaxAge: int(exp.Sub(s.now()) / time.Second),
		HttpOnly: true, Secure: strings.HasPrefix(s.publicURL(r), "https:"), SameSite: http.SameSiteLaxMode,
	})
	if o.Metadata[metaClient] != "program" {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	}
	p := s.page("paid", o, ref)
	p.Receipt, p.ReceiptExpires, p.ContinueURL = rc, exp, target
	s.render(w, r, http.StatusOK, p)
}

// serveReceipt is receipt_url: {receipt, expires_at} once the purchase is
// paid, 402 until then, 410 when it can no longer be.
func (s *Site) serveReceipt(w http.ResponseWriter, r *http.Request) {
	pu, ok := s.openBuyToken(r)
	if !ok {
		writeAPIError(w, http.StatusNotFound, "no such purchase")
		return
	}
	o, err := s.cfg.Store.Get(r.Context(), order.Key{Site: s.cfg.Site, ID: pu.orderID()})
	switch {
	case errors.Is(err, store.ErrNotFound) && pu.expired:
		writeJSON(w, http.StatusGone, receiptAnswer{Status: "unpaid", Error: "nothing was paid with this pay_url and it has expired; request the path again for a new one"})
		return
	case errors.Is(err, store.ErrNotFound):
		payURL := s.publicURL(r) + s.cfg.BasePath + "/buy/" + r.PathValue("token") + "?path=" + url.QueryEscape(pu.path)
		writeJSON(w, http.StatusPaymentRequired, receiptAnswer{Status: "unpaid", Error: "not paid yet", PayURL: payURL})
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

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
