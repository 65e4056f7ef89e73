// The three ways an order comes in from the shop (SPEC §4.1-4.3): X-Checkout-*
// response headers from the upstream, signed links, and the server API.
package handlers

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
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
)

// orderFields are the shop's words about an order, before validation:
// from response headers, link parameters or API JSON alike.
type orderFields struct {
	ID, Amount, Currency, Description, Provider, Email, Expires string
	Metadata                                                    map[string]string
}

// maxExpiry bounds how long a shop may keep an order payable.
const maxExpiry = 30 * 24 * time.Hour

func (f orderFields) intake(site string, currencies *money.Currencies) (order.Intake, error) {
	var in order.Intake
	if f.ID == "" || f.Amount == "" || f.Currency == "" {
		return in, fmt.Errorf("order id, amount and currency are all required")
	}
	if err := order.ValidID(f.ID); err != nil {
		return in, err
	}
	amt, err := currencies.Parse(f.Amount, f.Currency)
	if err != nil {
		return in, err
	}
	if !utf8.ValidString(f.Description) || strings.ContainsAny(f.Description, "\x00\r\n") {
		return in, fmt.Errorf("description must be UTF-8 text on one line")
	}
	in = order.Intake{Key: order.Key{Site: site, ID: f.ID}, Amount: amt, Description: f.Description,
		Provider: f.Provider, Email: f.Email, Metadata: f.Metadata}
	if f.Expires != "" {
		d, err := time.ParseDuration(f.Expires)
		if err != nil {
			if n, nerr := strconv.Atoi(f.Expires); nerr == nil {
				d, err = time.Duration(n)*time.Second, nil
			}
		}
		if err != nil || d < time.Minute || d > maxExpiry {
			return in, fmt.Errorf("expiry %q: want a duration between 1m and 720h, such as 30m", f.Expires)
		}
		in.Expires = d
	}
	return in, in.Validate()
}

// --- response headers ---

// interceptor watches the upstream's response for X-Checkout-Order. When
// it is there the upstream response is swallowed (headers and body) and
// the order is taken instead; otherwise only X-Checkout-* headers are
// removed and the response streams through untouched.
type interceptor struct {
	http.ResponseWriter
	fields      *orderFields
	wroteHeader bool
}

func (iw *interceptor) WriteHeader(code int) {
	if iw.wroteHeader {
		return
	}
	if code >= 100 && code < 200 {
		stripCheckoutFields(iw.ResponseWriter.Header())
		iw.ResponseWriter.WriteHeader(code)
		return
	}
	iw.wroteHeader = true
	h := iw.ResponseWriter.Header()
	if id := h.Get("X-Checkout-Order"); id != "" || len(h["X-Checkout-Order"]) > 0 {
		desc, err := url.PathUnescape(h.Get("X-Checkout-Description"))
		if err != nil {
			desc = "\x00" // refused by validation: not percent-encoded UTF-8
		}
		iw.fields = &orderFields{
			ID:          id,
			Amount:      h.Get("X-Checkout-Amount"),
			Currency:    h.Get("X-Checkout-Currency"),
			Description: desc,
			Provider:    h.Get("X-Checkout-Provider"),
			Email:       h.Get("X-Checkout-Email"),
			Expires:     h.Get("X-Checkout-Expires"),
		}
		for k := range h {
			delete(h, k)
		}
		return
	}
	stripCheckoutFields(h)
	iw.ResponseWriter.WriteHeader(code)
}

func (iw *interceptor) Write(b []byte) (int, error) {
	if !iw.wroteHeader {
		iw.WriteHeader(http.StatusOK)
	}
	if iw.fields != nil {
		return len(b), nil // the upstream body is discarded, not streamed
	}
	return iw.ResponseWriter.Write(b)
}

// Flush keeps a swallowed response from being sent early.
func (iw *interceptor) Flush() {
	if iw.fields != nil {
		return
	}
	if !iw.wroteHeader {
		iw.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(iw.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the real writer (hijacking for
// WebSockets, deadlines).
func (iw *interceptor) Unwrap() http.ResponseWriter { return iw.ResponseWriter }

func (s *Site) proxyWatchingHeaders(w http.ResponseWriter, r *http.Request, next Next) error {
	iw := &interceptor{ResponseWriter: w}
	if err := next(iw, r); err != nil && !iw.wroteHeader {
		// Nothing was sent: the error (an upstream that cannot be
		// reached, a 404 of a file server) is the server's to answer,
		// with its status and error pages, as it would be without us.
		stripCheckoutFields(w.Header())
		return err
	}
	if !iw.wroteHeader {
		// A handler that set headers and returned without writing.
		iw.WriteHeader(http.StatusOK)
	}
	if iw.fields == nil {
		return nil
	}
	in, err := iw.fields.intake(s.cfg.Site, s.currencies)
	if err != nil {
		s.log.Warn("upstream sent an order this checkout cannot take",
			zap.String("site", s.cfg.Site), zap.String("path", r.URL.Path), zap.Error(err))
		s.fail(w, r, http.StatusUnprocessableEntity, "error.order_refused")
		return nil
	}
	s.takeOrder(w, r, in)
	return nil
}

// takeOrder stores the order and sends the customer on: to the provider
// when there is only one choice, else to the pay page.
func (s *Site) takeOrder(w http.ResponseWriter, r *http.Request, in order.Intake) {
	o, _, err := s.Receive(r.Context(), in, s.soleProvider(in.Provider, in.Amount.Currency()))
	if err != nil {
		if errors.Is(err, order.ErrInvalid) || errors.Is(err, order.ErrAmountFixed) {
			s.log.Warn("shop's order refused", zap.String("site", s.cfg.Site), zap.String("order", in.ID), zap.Error(err))
			s.fail(w, r, http.StatusUnprocessableEntity, "error.order_refused")
			return
		}
		s.internalError(w, r, "storing order", err)
		return
	}
	if !o.Status.Open() {
		s.showEnded(w, r, o)
		return
	}
	if name := s.soleProvider(o.Provider, o.Amount.Currency()); name != "" {
		s.sendToProvider(w, r, o, name)
		return
	}
	http.Redirect(w, r, s.cfg.BasePath+"/pay/"+o.Current().Ref, http.StatusSeeOther)
}

// soleProvider is the provider to use without asking: the one the shop
// fixed for the order, or the only one configured that takes its
// currency.
func (s *Site) soleProvider(fixed, currency string) string {
	if fixed != "" {
		return fixed
	}
	sole := ""
	for _, p := range s.cfg.Providers {
		if accepts(p, currency) {
			if sole != "" {
				return ""
			}
			sole = p.Name()
		}
	}
	return sole
}

// accepts reports whether a provider takes payments in a currency: one
// that says which (provider.Currencies) only those, the others any.
func accepts(p provider.Provider, currency string) bool {
	c, ok := p.(provider.Currencies)
	return !ok || c.Accepts(currency)
}

// --- signed links ---

func (s *Site) serveStart(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.Intake.SignedLink {
		s.fail(w, r, http.StatusNotFound, "error.not_found")
		return
	}
	q := r.URL.Query()
	switch err := s.cfg.Secret.VerifyLink(q, s.now()); {
	case errors.Is(err, sign.ErrExpired):
		s.fail(w, r, http.StatusGone, "error.link_expired")
		return
	case err != nil:
		s.fail(w, r, http.StatusForbidden, "error.link_invalid")
		return
	}
	f := orderFields{ID: q.Get("order"), Amount: q.Get("amount"), Currency: q.Get("currency"),
		Description: q.Get("description"), Provider: q.Get("provider"), Email: q.Get("email"), Expires: q.Get("expires")}
	in, err := f.intake(s.cfg.Site, s.currencies)
	if err != nil {
		s.log.Info("signed link with a field that cannot be an order", zap.String("site", s.cfg.Site), zap.Error(err))
		s.fail(w, r, http.StatusBadRequest, "error.link_invalid")
		return
	}
	s.takeOrder(w, r, in)
}

// --- server API ---

// apiOrder is the JSON the shop posts to create an order.
type apiOrder struct {
	OrderID     string            `json:"order_id"`
	Amount      json.Number       `json:"amount"`
	Currency    string            `json:"currency"`
	Description string            `json:"description"`
	Provider    string            `json:"provider"`
	Email       string            `json:"email"`
	Metadata    map[string]string `json:"metadata"`
	ExpiresIn   json.RawMessage   `json:"expires_in"` // seconds, or a duration string such as "30m"
}

// apiResult is the API's answer about an order.
type apiResult struct {
	PayURL string       `json:"pay_url,omitempty"`
	Order  *order.Order `json:"order"`
}

const maxAPIBody = 64 << 10

// authorizeAPI checks api_allow and the bearer secret; it writes the error.
func (s *Site) authorizeAPI(w http.ResponseWriter, r *http.Request) bool {
	if !s.cfg.Intake.API {
		writeAPIError(w, http.StatusNotFound, "the server API is not enabled for this site (intake api)")
		return false
	}
	if !s.apiAllowed(r) {
		writeAPIError(w, http.StatusForbidden, "caller address is not in api_allow")
		return false
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !s.cfg.Secret.Equal(strings.TrimSpace(tok), s.now()) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="checkout"`)
		writeAPIError(w, http.StatusUnauthorized, "missing or wrong bearer token: send Authorization: Bearer <the site secret>")
		return false
	}
	return true
}

// apiAllowed reports whether the caller's address is in api_allow.
func (s *Site) apiAllowed(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && allowed(s.cfg.APIAllow, ap.Addr().Unmap())
}

// DefaultAPIAllow is who may call the server API unless api_allow says.
var DefaultAPIAllow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

func allowed(list []netip.Prefix, a netip.Addr) bool {
	if len(list) == 0 {
		list = DefaultAPIAllow
	}
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (s *Site) serveAPICreate(w http.ResponseWriter, r *http.Request) {
	if !s.authorizeAPI(w, r) {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAPIBody))
	if err != nil {
		writeAPIError(w, http.StatusRequestEntityTooLarge, "request body too large (limit 64 KiB)")
		return
	}
	idem := r.Header.Get("Idempotency-Key")
	if idem == "" {
		s.createOrder(w, r, body, "")
		return
	}
	key, ok := ParseIdempotencyKey(idem)
	if !ok {
		writeAPIError(w, http.StatusBadRequest, "Idempotency-Key must be a quoted string of 1-255 printable characters")
		return
	}
	sum := sha256.Sum256(body)
	rec := store.Idempotent{Fingerprint: hex.EncodeToString(sum[:]), CreatedAt: s.now()}
	scoped := store.IdempotencyKey(s.cfg.Site, key)
	prev, err := s.cfg.Store.BeginIdempotent(r.Context(), scoped, rec, time.Minute)
	if err != nil {
		s.apiInternal(w, "recording idempotency key", err)
		return
	}
	switch {
	case prev == nil:
	case prev.Fingerprint != rec.Fingerprint:
		writeAPIError(w, http.StatusUnprocessableEntity, "this Idempotency-Key was used with a different request body")
		return
	case !prev.Done:
		writeAPIError(w, http.StatusConflict, "a request with this Idempotency-Key is still in progress")
		return
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(prev.Status)
		_, _ = w.Write(prev.Body)
		return
	}
	rw := &recorder{header: http.Header{}}
	s.createOrder(rw, r, body, key)
	if rw.status >= 500 {
		_ = s.cfg.Store.ForgetIdempotent(r.Context(), scoped)
	} else {
		rec.Done, rec.Status, rec.Body = true, rw.status, rw.body.Bytes()
		if err := s.cfg.Store.FinishIdempotent(r.Context(), scoped, rec); err != nil {
			s.log.Error("storing idempotent response", zap.Error(err))
		}
	}
	for k, v := range rw.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rw.status)
	_, _ = w.Write(rw.body.Bytes())
}

// ParseIdempotencyKey reads an Idempotency-Key header (the server API's
// and the admin refund route's): 1-255 printable characters, as the
// draft's structured-field string ("...") or, for lenient clients, a bare
// token.
func ParseIdempotencyKey(v string) (string, bool) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if v == "" || len(v) > 255 {
		return "", false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e || v[i] == '"' || v[i] == '\\' {
			return "", false
		}
	}
	return v, true
}

// createOrder takes the order of a server API call; idem is the call's
// Idempotency-Key, if any, noted on the order (Intake.IdempotencyKey).
func (s *Site) createOrder(w http.ResponseWriter, r *http.Request, body []byte, idem string) {
	var req apiOrder
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeAPIError(w, http.StatusBadRequest, "request body is not the expected JSON: "+err.Error())
		return
	}
	exp := ""
	if len(req.ExpiresIn) > 0 && string(req.ExpiresIn) != "null" {
		var n int64
		var str string
		if json.Unmarshal(req.ExpiresIn, &n) == nil {
			exp = strconv.FormatInt(n, 10)
		} else if json.Unmarshal(req.ExpiresIn, &str) == nil {
			exp = str
		} else {
			writeAPIError(w, http.StatusBadRequest, "expires_in: want seconds or a duration string such as \"30m\"")
			return
		}
	}
	f := orderFields{ID: req.OrderID, Amount: req.Amount.String(), Currency: req.Currency, Description: req.Description,
		Provider: req.Provider, Email: req.Email, Metadata: req.Metadata, Expires: exp}
	in, err := f.intake(s.cfg.Site, s.currencies)
	if err != nil {
		writeAPIError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	in.IdempotencyKey = idem
	o, res, err := s.Receive(r.Context(), in, "")
	if err != nil {
		if errors.Is(err, order.ErrInvalid) || errors.Is(err, order.ErrAmountFixed) {
			writeAPIError(w, http.StatusUnprocessableEntity, err.Error())
			return
		}
		s.apiInternal(w, "storing order", err)
		return
	}
	status := http.StatusOK
	if res == order.Created {
		status = http.StatusCreated
	}
	out := apiResult{Order: o}
	if o.Status.Open() {
		out.PayURL = s.url(r, "/pay/"+o.Current().Ref)
	}
	writeJSON(w, status, out)
}

func (s *Site) serveAPIGet(w http.ResponseWriter, r *http.Request) {
	if !s.authorizeAPI(w, r) {
		return
	}
	o, err := s.cfg.Store.Get(r.Context(), order.Key{Site: s.cfg.Site, ID: r.PathValue("id")})
	if errors.Is(err, store.ErrNotFound) {
		writeAPIError(w, http.StatusNotFound, "no such order")
		return
	}
	if err != nil {
		s.apiInternal(w, "reading order", err)
		return
	}
	out := apiResult{Order: o}
	if o.Status.Open() {
		out.PayURL = s.url(r, "/pay/"+o.Current().Ref)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Site) apiInternal(w http.ResponseWriter, what string, err error) {
	s.log.Error(what, zap.String("site", s.cfg.Site), zap.Error(err))
	if store.Unavailable(err) {
		w.Header().Set("Retry-After", "5")
		writeAPIError(w, http.StatusServiceUnavailable, "the order store is unavailable; nothing was changed, try again shortly")
		return
	}
	writeAPIError(w, http.StatusInternalServerError, "internal error; nothing was changed, try again")
}

// recorder keeps a response to store it for Idempotency-Key replays.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
