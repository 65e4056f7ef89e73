// The customer's pages: choosing a provider, coming back from it, and the
// shop's success page reached with a verified payment.
package handlers

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/sign"
	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/templates"
)

const maxForm = 16 << 10

// orderByRef finds the order of an attempt reference, answering 404 (JSON
// for API-like routes, a page otherwise) when there is none.
func (s *Site) orderByRef(w http.ResponseWriter, r *http.Request, ref string, asJSON bool) (*order.Order, bool) {
	o, err := s.cfg.Store.ByRef(r.Context(), ref)
	if err == nil {
		return o, true
	}
	if errors.Is(err, store.ErrNotFound) {
		if asJSON {
			writeAPIError(w, http.StatusNotFound, "no such payment")
		} else {
			s.fail(w, r, http.StatusNotFound, "error.not_found")
		}
		return nil, false
	}
	if asJSON {
		s.apiInternal(w, "reading order", err)
	} else {
		s.internalError(w, r, "reading order", err)
	}
	return nil, false
}

// page fills the fields every page of an order shows.
func (s *Site) page(name string, o *order.Order, ref string) templates.Page {
	a := o.Attempt(ref)
	if a == nil {
		a = o.Current()
	}
	return templates.Page{
		Name:        name,
		Ref:         a.Ref,
		OrderID:     o.ID,
		Description: o.Description,
		Amount:      a.Amount,
		Received:    a.Received,
		Status:      string(o.Status),
		ExpiresAt:   o.Deadline(),
		Late:        o.Late,
		Provider:    a.Provider,
		StatusURL:   s.cfg.BasePath + "/status/" + a.Ref,
		EventsURL:   s.cfg.BasePath + "/events/" + a.Ref,
		ContinueURL: s.continueURL(o),
	}
}

// continueURL is where a customer goes back to the shop without a verified
// payment: the cancel URL, or the site's home page (always, for a paywalled
// path's purchase: the cancel URL is the shop's cart).
func (s *Site) continueURL(o *order.Order) string {
	if s.cfg.CancelURL != "" && !isPaywall(o) {
		return fillOrderID(s.cfg.CancelURL, o.ID)
	}
	return "/"
}

// choices are the providers the pay page offers for the order, named in
// the customer's language.
func (s *Site) choices(r *http.Request, o *order.Order) []templates.Choice {
	return s.choicesFor(r, o.Provider, o.Amount.Currency())
}

// choicesFor are the providers that take currency (only fixed, when set).
func (s *Site) choicesFor(r *http.Request, fixed, currency string) []templates.Choice {
	locale := s.cfg.Pages.Locale(r)
	var cs []templates.Choice
	for _, p := range s.cfg.Providers {
		if fixed != "" && p.Name() != fixed || !accepts(p, currency) {
			continue
		}
		cs = append(cs, templates.Choice{Name: p.Name(), Label: label(p, locale)})
	}
	return cs
}

// formOrigins are the providers' page origins that a pay form offering
// choices may be redirected to: the form's POST is answered with a
// redirect to the provider's page, which CSP form-action also governs.
func (s *Site) formOrigins(choices []templates.Choice) []string {
	var out []string
	for _, c := range choices {
		if o, ok := s.providers[c.Name].(provider.Origins); ok {
			out = append(out, o.PageOrigins()...)
		}
	}
	return out
}

func label(p provider.Provider, locale string) string {
	if l, ok := p.(provider.Labeler); ok {
		return l.Label(locale)
	}
	return p.Name()
}

// showEnded shows the page of an order that can no longer be paid; a paid
// paywall order's customer gets the receipt.
func (s *Site) showEnded(w http.ResponseWriter, r *http.Request, o *order.Order) {
	if o.Status == order.Paid && isPaywall(o) {
		s.deliverReceipt(w, r, o, o.Current().Ref)
		return
	}
	name := map[order.State]string{order.Paid: "already_paid", order.Refunded: "already_paid",
		order.Failed: "failed", order.Cancelled: "cancelled", order.Expired: "expired"}[o.Status]
	if name == "" {
		name = "error"
	}
	s.render(w, r, http.StatusOK, s.page(name, o, o.Current().Ref))
}

func (s *Site) servePay(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("ref")
	o, ok := s.orderByRef(w, r, ref, false)
	if !ok {
		return
	}
	s.keepBuyer(w, r, o)
	if cur := o.Current(); cur.Ref != ref && o.Status.Open() {
		// The shop changed the amount: this link is for the old one.
		http.Redirect(w, r, s.cfg.BasePath+"/pay/"+cur.Ref, http.StatusSeeOther)
		return
	}
	if !o.Status.Open() {
		s.showEnded(w, r, o)
		return
	}
	if !s.now().Before(o.Deadline()) {
		s.render(w, r, http.StatusOK, s.page("expired", o, ref))
		return
	}
	if in := s.holdInstructions(r, o); in != "" {
		// A slip to pay at a store is out: paying another way would take
		// the money twice.
		s.showProcessing(w, r, o, ref, in)
		return
	}
	choices := s.choices(r, o)
	if len(choices) == 0 {
		// No provider of this config can take the order (the shop fixed
		// one that is gone, or none takes its currency): it fails, and the
		// shop is told.
		o, _, err := s.Apply(r.Context(), order.ByConfig, provider.Finding{Ref: ref, Status: order.Failed,
			Note: "no configured payment provider can take this order"})
		if err != nil {
			s.internalError(w, r, "failing order", err)
			return
		}
		s.showEnded(w, r, o)
		return
	}
	p := s.page("pay", o, ref)
	p.Providers = choices
	p.FormOrigins = s.formOrigins(choices)
	p.CSRF = s.csrfToken(ref)
	p.Action = s.cfg.BasePath + "/pay/" + ref
	if cur := o.Current(); cur.Failed {
		p.Declined, p.Provider = true, cur.Provider
	} else if name := r.URL.Query().Get("provider"); name != "" {
		if _, ok := s.providers[name]; ok && (o.Provider == "" || o.Provider == name) {
			// An on-page provider (address and QR, form) shows its part here.
			st, next, err := s.start(r.Context(), r, o, name)
			if err != nil {
				s.startError(w, r, o, name, err)
				return
			}
			if next.Current().Ref != ref {
				// Shown for a new attempt: its page has its own address.
				http.Redirect(w, r, s.cfg.BasePath+"/pay/"+next.Current().Ref+"?provider="+url.QueryEscape(name), http.StatusSeeOther)
				return
			}
			if st.Redirect != "" {
				p.Provider = name
			} else {
				p.Provider, p.ProviderHTML = name, st.Page
			}
		}
	}
	s.render(w, r, http.StatusOK, p)
}

// startError shows why a provider could not be started: too many tries
// for one order, or the provider's own failure.
func (s *Site) startError(w http.ResponseWriter, r *http.Request, o *order.Order, name string, err error) {
	if errors.Is(err, order.ErrTooManyRetries) {
		s.log.Warn("payment attempts exhausted", zap.String("site", s.cfg.Site), zap.Error(err))
		s.failOrder(w, r, http.StatusTooManyRequests, "error.too_many_tries", o)
		return
	}
	s.providerError(w, r, o, name, err)
}

func (s *Site) servePayPost(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("ref")
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if !s.verifyCSRF(r, ref) {
		s.fail(w, r, http.StatusForbidden, "error.form_expired")
		return
	}
	o, ok := s.orderByRef(w, r, ref, false)
	if !ok {
		return
	}
	if o.Current().Ref != ref || !o.Status.Open() {
		http.Redirect(w, r, s.cfg.BasePath+"/pay/"+o.Current().Ref, http.StatusSeeOther)
		return
	}
	if r.PostFormValue("action") == "cancel" {
		o, _, err := s.Apply(r.Context(), order.ByCustomer, provider.Finding{Ref: ref, Status: order.Cancelled, Note: "cancelled by the customer"})
		if err != nil {
			s.internalError(w, r, "cancelling order", err)
			return
		}
		s.showEnded(w, r, o)
		return
	}
	if !s.now().Before(o.Deadline()) {
		s.render(w, r, http.StatusOK, s.page("expired", o, ref))
		return
	}
	if in := s.holdInstructions(r, o); in != "" {
		// A pay form from before a slip was taken: the slip stands.
		s.showProcessing(w, r, o, ref, in)
		return
	}
	name := r.PostFormValue("provider")
	if _, ok := s.providers[name]; !ok || (o.Provider != "" && o.Provider != name) {
		s.failOrder(w, r, http.StatusBadRequest, "error.choose_shown", o)
		return
	}
	s.sendToProvider(w, r, o, name)
}

// sendToProvider starts the provider for the current attempt and sends the
// customer on: to the provider's page, or to our pay page with the
// provider's on-page part.
func (s *Site) sendToProvider(w http.ResponseWriter, r *http.Request, o *order.Order, name string) {
	st, o, err := s.start(r.Context(), r, o, name)
	if err != nil {
		s.startError(w, r, o, name, err)
		return
	}
	if st.Redirect != "" {
		http.Redirect(w, r, st.Redirect, http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, s.cfg.BasePath+"/pay/"+o.Current().Ref+"?provider="+url.QueryEscape(name), http.StatusSeeOther)
}

// serveReturn is the customer coming back from the provider. Nothing in
// the request is trusted: the provider is asked server-side, and the
// customer reaches the shop as paid only when the stored order is paid.
func (s *Site) serveReturn(w http.ResponseWriter, r *http.Request) {
	name, ref := r.PathValue("provider"), r.PathValue("ref")
	p, ok := s.providers[name]
	if !ok {
		s.fail(w, r, http.StatusNotFound, "error.not_found")
		return
	}
	o, ok := s.orderByRef(w, r, ref, false)
	if !ok {
		return
	}
	if !s.checkReferer(r, name, p) {
		s.failOrder(w, r, http.StatusForbidden, "error.foreign_referer", o)
		return
	}
	if ret, ok := p.(provider.Returner); ok && o.Status != order.Paid {
		att := o.Attempt(ref)
		f, err := ret.Return(r.Context(), r, s.payment(r, o, att, name))
		switch {
		case errors.Is(err, provider.ErrMalformed) || errors.Is(err, provider.ErrUnauthenticated):
			s.failOrder(w, r, http.StatusBadRequest, "error.return_mismatch", o)
			return
		case err != nil:
			s.log.Warn("checking return with provider", zap.String("provider", name), zap.String("order", o.ID), zap.Error(err))
		case f.Ref != "" && f.Ref != ref:
			s.log.Warn("provider return names another payment", zap.String("provider", name), zap.String("order", o.ID))
			s.failOrder(w, r, http.StatusBadRequest, "error.return_mismatch", o)
			return
		default:
			f.Ref, f.From = ref, name
			cur, _, err := s.Apply(r.Context(), order.ByReturn, f)
			if errors.Is(err, order.ErrUnknownRef) {
				// The attempt is another provider's: this return says
				// nothing about it.
				s.failOrder(w, r, http.StatusBadRequest, "error.return_mismatch", o)
				return
			}
			if err != nil {
				s.internalError(w, r, "applying provider return", err)
				return
			}
			o = cur
		}
	}
	s.continueAfterReturn(w, r, o, ref)
}

func (s *Site) continueAfterReturn(w http.ResponseWriter, r *http.Request, o *order.Order, ref string) {
	s.keepBuyer(w, r, o)
	if a := o.Attempt(ref); a != nil && a.Failed && o.Status.Open() {
		// Declined: the pay page says so and offers to try again.
		http.Redirect(w, r, s.cfg.BasePath+"/pay/"+o.Current().Ref, http.StatusSeeOther)
		return
	}
	switch o.Status {
	case order.Paid:
		if isPaywall(o) {
			s.deliverReceipt(w, r, o, ref)
			return
		}
		if s.cfg.SuccessURL == "" {
			s.render(w, r, http.StatusOK, s.page("paid", o, ref))
			return
		}
		target := fillOrderID(s.cfg.SuccessURL, o.ID)
		sep := "?"
		if strings.Contains(target, "?") {
			sep = "&"
		}
		http.Redirect(w, r, target+sep+returnTokenParam+"="+url.QueryEscape(ref+"."+s.returnToken(o)), http.StatusSeeOther)
	case order.Pending, order.OnHold:
		s.showProcessing(w, r, o, ref, s.holdInstructions(r, o))
	default:
		s.showEnded(w, r, o)
	}
}

// showProcessing is the page of an order whose payment is under way: for
// one held open while the customer pays elsewhere, with what the provider
// asks them to do (a konbini slip's details and deadline).
func (s *Site) showProcessing(w http.ResponseWriter, r *http.Request, o *order.Order, ref string, instructions template.HTML) {
	p := s.page("processing", o, ref)
	p.RetryURL = s.cfg.BasePath + "/pay/" + o.Current().Ref
	p.ProviderHTML = instructions
	s.render(w, r, http.StatusOK, p)
}

// holdInstructions is what the provider holding the order asks the
// customer to do to pay it, or "".
func (s *Site) holdInstructions(r *http.Request, o *order.Order) template.HTML {
	if o.Status != order.OnHold {
		return ""
	}
	gen := o.Current().Generation
	for i := len(o.Attempts) - 1; i >= 0; i-- {
		a := &o.Attempts[i]
		in, ok := s.providers[a.Provider].(provider.Instructor)
		if a.Generation != gen || a.Failed || !ok {
			continue
		}
		if h := in.Instructions(s.payment(r, o, a, a.Provider), s.cfg.Pages.Locale(r)); h != "" {
			return h
		}
	}
	return ""
}

// serveSuccess is the shop's success page reached with a return token: the
// token is checked and removed, and the request goes on to the shop with
// the signed X-Checkout-* headers. Without a valid token it goes on with
// none.
func (s *Site) serveSuccess(w http.ResponseWriter, r *http.Request, next Next) error {
	tok := takeQueryParam(r.URL, returnTokenParam)
	r.RequestURI = r.URL.RequestURI()
	ref, rest, _ := strings.Cut(tok, ".")
	if o, err := s.cfg.Store.ByRef(r.Context(), ref); err == nil && s.successPathMatches(r, o) && s.openReturnToken(r.Context(), rest, o.ID) {
		s.setShopHeaders(r, o)
	} else {
		s.log.Info("success page reached without a valid return token", zap.String("path", r.URL.Path))
	}
	if s.cfg.Intake.Headers {
		return s.proxyWatchingHeaders(w, r, next)
	}
	return next(w, r)
}

func (s *Site) successPathMatches(r *http.Request, o *order.Order) bool {
	if s.cfg.SuccessURL == "" {
		return false
	}
	u, err := url.Parse(fillOrderID(s.cfg.SuccessURL, o.ID))
	return err == nil && u.EscapedPath() == r.URL.EscapedPath()
}

// setShopHeaders adds the signed headers of SPEC §6.2 to the request.
func (s *Site) setShopHeaders(r *http.Request, o *order.Order) {
	vals := s.shopHeaders(r.Method, r.URL.EscapedPath(), o, s.now())
	setHeaders(r.Header, &vals)
}

// shopHeaderNames are the headers of SPEC §6.2, in the order of the
// values shopHeaders makes.
var shopHeaderNames = [...]string{"X-Checkout-Status", "X-Checkout-Order", "X-Checkout-Amount", "X-Checkout-Currency",
	"X-Checkout-Provider", "X-Checkout-Transaction", "X-Checkout-Signature"}

// shopHeaders are the values of shopHeaderNames for a request with method
// and path (as the shop sees it in REQUEST_URI) about o, signed at now.
func (s *Site) shopHeaders(method, path string, o *order.Order, now time.Time) [len(shopHeaderNames)]string {
	f := sign.Fields{
		Method:      method,
		Path:        path,
		Order:       o.ID,
		Status:      string(o.Status),
		Amount:      o.Amount.String(),
		Currency:    o.Amount.Currency(),
		Transaction: headerSafe(o.Transaction),
	}
	return [...]string{f.Status, f.Order, f.Amount, f.Currency, headerSafe(o.PaidWith), f.Transaction, s.cfg.Secret.Headers(now, f)}
}

// setHeaders sets shopHeaderNames to vals in h, with one allocation.
func setHeaders(h http.Header, vals *[len(shopHeaderNames)]string) {
	backing := append([]string(nil), vals[:]...)
	for i, k := range shopHeaderNames {
		h[k] = backing[i : i+1 : i+1]
	}
}

// headerSafe keeps provider-made values to printable ASCII: control
// characters would break the header line, and non-ASCII bytes are read as
// Latin-1 by Node and WSGI, so the shop could not verify the signature.
// Such values are percent-encoded (and signed as encoded).
func headerSafe(v string) string {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return url.QueryEscape(v)
		}
	}
	return v
}

// takeQueryParam removes every name=value pair of name from u's raw query
// and returns the first value. The rest of the query reaches the shop
// byte for byte: re-encoding it would reorder and re-escape the shop's own
// parameters.
func takeQueryParam(u *url.URL, name string) string {
	var kept []string
	var val string
	found := false
	for _, pair := range strings.Split(u.RawQuery, "&") {
		k, v, _ := strings.Cut(pair, "=")
		if key, err := url.QueryUnescape(k); err == nil && key == name {
			if !found {
				val, _ = url.QueryUnescape(v)
				found = true
			}
			continue
		}
		if pair != "" {
			kept = append(kept, pair)
		}
	}
	u.RawQuery = strings.Join(kept, "&")
	return val
}
