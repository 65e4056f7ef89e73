// Package stripe takes payments through Stripe Checkout: one Checkout
// Session per attempt, the customer redirected to Stripe's hosted page,
// the outcome learnt from signed webhooks and confirmed by retrieving the
// session server-side. Connected accounts (Stripe Connect) are supported
// by sending every request on behalf of the configured account.
package stripe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	stripeapi "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
	"github.com/stripe/stripe-go/v76/form"

	"github.com/caddy-checkout/checkout/provider"
)

// Name is the provider's name in routes and config.
const Name = "stripe"

// Stripe's limits on a Checkout Session's expires_at, counted from the
// session's creation.
const (
	minSessionLife = 30 * time.Minute
	maxSessionLife = 24 * time.Hour
	// lifeMargin keeps expires_at clear of Stripe's bounds despite the
	// time a request takes and clock skew.
	lifeMargin = 2 * time.Minute
	// shortWindow groups the starts of an attempt whose order ends sooner
	// or later than Stripe allows, so that a double click in the same
	// window sends the same clamped expires_at (it depends on the time of
	// the click).
	shortWindow = 5 * time.Minute
)

// Metadata keys on every session and payment intent we create. They name
// the attempt so that events can be matched, and the site so that two
// sites sharing one Stripe account ignore each other's events.
const (
	metaSite    = "checkout_site"
	metaOrder   = "checkout_order"
	metaRef     = "checkout_ref"
	metaAttempt = "checkout_attempt"
)

// Stripe is the Stripe provider for one site. Its exported fields are its
// configuration (the JSON twin of the Caddyfile's stripe block).
type Stripe struct {
	// SecretKey is the account's secret API key (sk_live_..., sk_test_...)
	// or a restricted key (rk_...). Use a placeholder such as
	// {env.STRIPE_SECRET_KEY}.
	SecretKey string `json:"secret_key,omitempty"`

	// WebhookSecret is the signing secret (whsec_...) of the webhook
	// endpoint {public_url}{base_path}/webhook/stripe registered in the
	// Stripe dashboard. While Stripe rolls an endpoint's secret it signs
	// with both the old and the new one, so either verifies.
	WebhookSecret string `json:"webhook_secret,omitempty"`

	// Account makes every request on behalf of a connected account
	// (acct_...), as a Connect platform does for its sellers. Events are
	// then accepted only for that account.
	Account string `json:"account,omitempty"`

	// APIURL sends API requests to another address than
	// https://api.stripe.com, such as a local stripe-mock.
	APIURL string `json:"api_url,omitempty"`

	// PaymentMethodTypes limits what Checkout offers (card, konbini, ...).
	// Default: the methods enabled in the Stripe dashboard.
	PaymentMethodTypes []string `json:"payment_method_types,omitempty"`

	secretKey     string // SecretKey with placeholders resolved
	webhookSecret string
	env           provider.Env
	api           *client.API
	httpClient    *http.Client
}

var (
	_ provider.Provider  = (*Stripe)(nil)
	_ provider.Setuper   = (*Stripe)(nil)
	_ provider.Webhooker = (*Stripe)(nil)
	_ provider.Returner  = (*Stripe)(nil)
	_ provider.Checker   = (*Stripe)(nil)
	_ provider.Refunder  = (*Stripe)(nil)
	_ provider.Closer    = (*Stripe)(nil)
	_ provider.Labeler   = (*Stripe)(nil)
	_ provider.Origins   = (*Stripe)(nil)
)

// Name implements provider.Provider.
func (*Stripe) Name() string { return Name }

// Label implements provider.Labeler.
func (*Stripe) Label(locale string) string {
	if locale == "ja" {
		return "カード（Stripe）"
	}
	return "Card (Stripe)"
}

// checkoutOrigin is where Stripe serves Checkout's hosted pages.
const checkoutOrigin = "https://checkout.stripe.com"

// PageOrigins implements provider.Origins: Stripe Checkout's pages, and
// those of another API address (a fake serves its pages there).
func (s *Stripe) PageOrigins() []string {
	out := []string{checkoutOrigin}
	if u, err := url.Parse(s.APIURL); err == nil && u.Host != "" {
		out = append(out, u.Scheme+"://"+u.Host)
	}
	return out
}

// Setup checks the configuration and makes the API client.
func (s *Stripe) Setup(env provider.Env) error {
	if s.secretKey == "" {
		s.secretKey = s.SecretKey
	}
	if s.webhookSecret == "" {
		s.webhookSecret = s.WebhookSecret
	}
	if err := checkKey(s.secretKey); err != nil {
		return err
	}
	if !strings.HasPrefix(s.webhookSecret, "whsec_") || len(s.webhookSecret) < len("whsec_")+8 {
		return errors.New("webhook_secret: want the endpoint's signing secret, whsec_... (Dashboard → Developers → Webhooks)")
	}
	if s.Account != "" && !validID(s.Account, "acct_") {
		return fmt.Errorf("account %q: want a connected account id such as acct_1A2b3C", s.Account)
	}
	for _, t := range s.PaymentMethodTypes {
		if !validMethodType(t) {
			return fmt.Errorf("payment_method_types: %q is not a Stripe payment method type (card, konbini, ...)", t)
		}
	}
	if env.Now == nil || env.Lookup == nil {
		return errors.New("incomplete site environment")
	}
	s.env = env
	hc := s.httpClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	cfg := &stripeapi.BackendConfig{
		HTTPClient:        hc,
		LeveledLogger:     quietLogger{},
		MaxNetworkRetries: stripeapi.Int64(2),
	}
	if s.APIURL != "" {
		if !strings.HasPrefix(s.APIURL, "https://") && !strings.HasPrefix(s.APIURL, "http://") {
			return fmt.Errorf("api_url %q: want an http(s) URL", s.APIURL)
		}
		cfg.URL = stripeapi.String(s.APIURL)
	}
	s.api = client.New(s.secretKey, stripeapi.NewBackendsWithConfig(cfg))
	return nil
}

// checkKey checks the form of an API key without ever showing it.
func checkKey(k string) error {
	parts := strings.Split(k, "_")
	if len(parts) < 3 || (parts[0] != "sk" && parts[0] != "rk") || (parts[1] != "live" && parts[1] != "test") || parts[2] == "" {
		return errors.New("secret_key: want a secret key sk_live_..., sk_test_... or a restricted key rk_... (Dashboard → Developers → API keys)")
	}
	return nil
}

func validID(v, prefix string) bool {
	rest, ok := strings.CutPrefix(v, prefix)
	if !ok || rest == "" || len(v) > 255 {
		return false
	}
	for _, c := range rest {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func validMethodType(t string) bool {
	if t == "" || len(t) > 64 {
		return false
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c == '_' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Start sends the customer to a Checkout Session for the attempt: the
// attempt's open session when there is one, else a new session made
// under an idempotency key of the attempt and the session's parameters,
// so that a double click never makes two. (Stripe refuses a key reused
// with other parameters for 24 hours; with the parameters in the key, a
// retry after the shop changed the description, or in another window of
// a clamped expires_at, makes a new session instead of failing.)
func (s *Stripe) Start(ctx context.Context, p provider.Payment) (provider.Start, error) {
	key := "checkout-" + p.Ref
	if p.ProviderRef != "" {
		sess, err := s.session(ctx, p.ProviderRef, false)
		switch {
		case err != nil && !isMissing(err):
			return provider.Start{}, err
		case err == nil && belongs(sess, p) && sess.Status == stripeapi.CheckoutSessionStatusOpen:
			return provider.Start{Redirect: sess.URL, ProviderRef: sess.ID}, nil
		case err == nil && belongs(sess, p) && sess.Status == stripeapi.CheckoutSessionStatusComplete:
			// Already paid (or pay-later) at Stripe: the return route
			// confirms it server-side.
			return provider.Start{Redirect: p.ReturnURL + "?session_id=" + sess.ID, ProviderRef: sess.ID}, nil
		}
		// Expired or not ours: a new session, under a key that differs
		// from the one that made the old session.
		key += "-after-" + p.ProviderRef
	}
	params, err := s.sessionParams(p)
	if err != nil {
		return provider.Start{}, err
	}
	params.SetIdempotencyKey(key + "-" + paramsDigest(params))
	params.Context = ctx
	if s.Account != "" {
		params.SetStripeAccount(s.Account)
	}
	sess, err := s.api.CheckoutSessions.New(params)
	if err != nil {
		return provider.Start{}, apiError("creating checkout session", err)
	}
	if sess.URL == "" || sess.ID == "" {
		return provider.Start{}, fmt.Errorf("%w: Stripe returned a session without id or URL", provider.ErrUnavailable)
	}
	return provider.Start{Redirect: sess.URL, ProviderRef: sess.ID}, nil
}

// sessionParams builds the Checkout Session for an attempt. Everything in
// it derives from the attempt and the click's window of time, so that a
// double click sends the same parameters.
func (s *Stripe) sessionParams(p provider.Payment) (*stripeapi.CheckoutSessionParams, error) {
	units, cur, err := toStripe(p.Amount)
	if err != nil {
		return nil, err
	}
	name := p.Description
	if name == "" {
		name = "Order " + p.OrderID
	}
	name = truncate(name, 250)
	meta := map[string]string{
		metaSite:    p.Site,
		metaOrder:   truncate(p.OrderID, 500),
		metaRef:     p.Ref,
		metaAttempt: strconv.Itoa(p.Generation),
	}
	params := &stripeapi.CheckoutSessionParams{
		Mode: stripeapi.String(string(stripeapi.CheckoutSessionModePayment)),
		LineItems: []*stripeapi.CheckoutSessionLineItemParams{{
			PriceData: &stripeapi.CheckoutSessionLineItemPriceDataParams{
				Currency:    stripeapi.String(cur),
				UnitAmount:  stripeapi.Int64(units),
				ProductData: &stripeapi.CheckoutSessionLineItemPriceDataProductDataParams{Name: stripeapi.String(name)},
			},
			Quantity: stripeapi.Int64(1),
		}},
		SuccessURL:        stripeapi.String(p.ReturnURL + "?session_id={CHECKOUT_SESSION_ID}"),
		CancelURL:         stripeapi.String(p.CancelURL),
		ClientReferenceID: stripeapi.String(p.Ref),
		PaymentIntentData: &stripeapi.CheckoutSessionPaymentIntentDataParams{Metadata: meta},
		ExpiresAt:         stripeapi.Int64(s.expiresAt(p.ExpiresAt).Unix()),
	}
	for k, v := range meta {
		params.AddMetadata(k, v)
	}
	if p.Email != "" {
		if a, err := mail.ParseAddress(p.Email); err == nil && a.Address == p.Email {
			params.CustomerEmail = stripeapi.String(p.Email)
		}
	}
	if p.Locale == "en" || p.Locale == "ja" {
		params.Locale = stripeapi.String(p.Locale)
	}
	for _, t := range s.PaymentMethodTypes {
		params.PaymentMethodTypes = append(params.PaymentMethodTypes, stripeapi.String(t))
	}
	return params, nil
}

// expiresAt is the order's deadline clamped into what Stripe allows for a
// session created now. A clamped value is computed from the start of the
// click's window, so that it is the same for every click in the window.
// A payment made after a short order's own deadline is a late payment,
// which the core records as such; a long order's customer gets a new
// session from the pay page when the first one ends.
func (s *Stripe) expiresAt(orderEnds time.Time) time.Time {
	now := s.env.Now()
	window := now.Truncate(shortWindow)
	switch {
	case orderEnds.Before(now.Add(minSessionLife + lifeMargin)):
		return window.Add(shortWindow + minSessionLife + lifeMargin)
	case orderEnds.After(now.Add(maxSessionLife - lifeMargin)):
		return window.Add(maxSessionLife - lifeMargin)
	}
	return orderEnds.Truncate(time.Second)
}

// paramsDigest is a short digest of the form Stripe will receive.
func paramsDigest(params *stripeapi.CheckoutSessionParams) string {
	var v form.Values
	form.AppendTo(&v, params)
	sum := sha256.Sum256([]byte(v.Encode()))
	return hex.EncodeToString(sum[:8])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	for len(string(r)) > n {
		r = r[:len(r)-1]
	}
	return string(r)
}

// session retrieves a Checkout Session, with its payment intent expanded
// when asked.
func (s *Stripe) session(ctx context.Context, id string, withIntent bool) (*stripeapi.CheckoutSession, error) {
	if !validID(id, "cs_") {
		return nil, fmt.Errorf("%w: %q is not a Checkout Session id", provider.ErrMalformed, truncate(id, 80))
	}
	params := &stripeapi.CheckoutSessionParams{}
	params.Context = ctx
	if withIntent {
		params.AddExpand("payment_intent")
	}
	if s.Account != "" {
		params.SetStripeAccount(s.Account)
	}
	sess, err := s.api.CheckoutSessions.Get(id, params)
	if err != nil {
		return nil, apiError("retrieving checkout session", err)
	}
	return sess, nil
}

// belongs reports whether a session was made for the attempt.
func belongs(sess *stripeapi.CheckoutSession, p provider.Payment) bool {
	return sess.ClientReferenceID == p.Ref && sess.Metadata[metaRef] == p.Ref && sess.Metadata[metaSite] == p.Site
}

// apiError classifies a stripe-go error. Network trouble, rate limits
// and Stripe's own errors are ErrUnavailable (ask again later); a 404 is
// errMissing; anything else is a request Stripe refused, with Stripe's
// message (which never holds the key) for the operator.
func apiError(doing string, err error) error {
	var se *stripeapi.Error
	if !errors.As(err, &se) {
		return fmt.Errorf("%w: %s: %v", provider.ErrUnavailable, doing, err)
	}
	switch {
	case se.HTTPStatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: %s: %s", errMissing, doing, se.Msg)
	case se.HTTPStatusCode == http.StatusTooManyRequests || se.HTTPStatusCode >= 500 || se.HTTPStatusCode == http.StatusConflict:
		return fmt.Errorf("%w: %s: Stripe answered %d: %s", provider.ErrUnavailable, doing, se.HTTPStatusCode, se.Msg)
	case se.HTTPStatusCode == http.StatusUnauthorized || se.HTTPStatusCode == http.StatusForbidden:
		return fmt.Errorf("%s: Stripe refused the API key (%d): check secret_key and account", doing, se.HTTPStatusCode)
	}
	msg := se.Msg
	if se.Param != "" {
		msg += " (param " + se.Param + ")"
	}
	return fmt.Errorf("%s: Stripe refused the request (%d %s): %s", doing, se.HTTPStatusCode, se.Type, msg)
}

// errMissing is Stripe's 404: the object does not exist (for this account).
var errMissing = errors.New("no such Stripe object")

func isMissing(err error) bool { return errors.Is(err, errMissing) }

// quietLogger keeps stripe-go from writing to stderr; errors reach the
// site's log through the errors returned.
type quietLogger struct{}

func (quietLogger) Debugf(string, ...any) {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Warnf(string, ...any)  {}
