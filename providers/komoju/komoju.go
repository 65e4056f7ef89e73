// Package komoju takes payments through KOMOJU's hosted page: one session
// per attempt, the customer redirected to KOMOJU, where they pay by card
// (captured at once) or take a konbini slip and pay cash at a store days
// later (authorized until the slip's payment deadline, then captured or
// expired). The outcome is learnt from signed webhooks and always confirmed
// with KOMOJU's API on the customer's return and by the reconciler.
package komoju

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/provider"
)

// Name is the provider's name in routes and config.
const Name = "komoju"

// DefaultAPIURL is KOMOJU's API host, the same for test and live keys.
const DefaultAPIURL = "https://komoju.com"

// maxSessionLife is KOMOJU's default and largest expires_in_seconds.
const maxSessionLife = 24 * time.Hour

// Metadata keys on every session: they name the site, the shop's order and
// our attempt, so that two sites sharing one KOMOJU account ignore each
// other's payments.
const (
	metaSite  = "checkout_site"
	metaOrder = "checkout_order"
	metaRef   = "checkout_ref"
)

// What the provider records on an attempt (provider.Finding.Data): the
// payment's id and, for a konbini slip, what the customer needs to pay it.
const (
	dataPayment      = "komoju_payment"
	dataType         = "komoju_type"
	dataStore        = "komoju_store"
	dataConfirmation = "komoju_confirmation_code"
	dataReceipt      = "komoju_receipt"
	dataInstructions = "komoju_instructions_url"
	dataDeadline     = "komoju_payment_deadline"
)

// currencies are those KOMOJU's payments API takes (komoju-node-sdk
// PaymentsApi.md); amounts are sent in ISO 4217 minor units.
var currencies = map[string]bool{
	"JPY": true, "USD": true, "EUR": true, "TWD": true, "KRW": true, "PLN": true, "GBP": true,
	"HKD": true, "SGD": true, "NZD": true, "AUD": true, "IDR": true, "MYR": true, "PHP": true,
	"THB": true, "CNY": true, "BRL": true, "CHF": true, "CAD": true, "VND": true,
}

// Komoju is the KOMOJU provider for one site. Its exported fields are its
// configuration (the JSON twin of the Caddyfile's komoju block).
type Komoju struct {
	// SecretKey is the account's secret API key (sk_test_... for test
	// mode, sk_live_... for live; KOMOJU selects the mode by the key).
	// Use a placeholder such as {env.KOMOJU_SECRET_KEY}.
	SecretKey string `json:"secret_key,omitempty"`

	// WebhookSecret is the secret token of the webhook registered in
	// KOMOJU's dashboard for {public_url}{base_path}/webhook/komoju; it
	// signs every event (X-Komoju-Signature).
	WebhookSecret string `json:"webhook_secret,omitempty"`

	// PaymentTypes limits what the hosted page offers (credit_card,
	// konbini, paypay, ...). Default: every method the account has.
	PaymentTypes []string `json:"payment_types,omitempty"`

	// Locale is the hosted page's language: ja, en or ko. Default: the
	// language of the customer's pay page.
	Locale string `json:"locale,omitempty"`

	// APIURL sends API requests to another address than
	// https://komoju.com (tests point it at a fake).
	APIURL string `json:"api_url,omitempty"`

	secretKey     string // SecretKey with placeholders resolved
	webhookSecret string
	env           provider.Env
	api           *client
	origin        string
	httpClient    *http.Client
}

var (
	_ provider.Provider   = (*Komoju)(nil)
	_ provider.Setuper    = (*Komoju)(nil)
	_ provider.Webhooker  = (*Komoju)(nil)
	_ provider.Returner   = (*Komoju)(nil)
	_ provider.Checker    = (*Komoju)(nil)
	_ provider.Refunder   = (*Komoju)(nil)
	_ provider.Closer     = (*Komoju)(nil)
	_ provider.Labeler    = (*Komoju)(nil)
	_ provider.Currencies = (*Komoju)(nil)
	_ provider.Instructor = (*Komoju)(nil)
	_ provider.Origins    = (*Komoju)(nil)
	_ provider.Personal   = (*Komoju)(nil)
)

// Personal implements provider.Personal: a konbini slip's confirmation
// code, receipt number and instructions page identify the customer's
// payment at the store.
func (*Komoju) Personal(key string) (string, bool) {
	return "", key == dataConfirmation || key == dataReceipt || key == dataInstructions
}

// Name implements provider.Provider.
func (*Komoju) Name() string { return Name }

// Label implements provider.Labeler.
func (k *Komoju) Label(locale string) string {
	konbini := len(k.PaymentTypes) == 0
	for _, t := range k.PaymentTypes {
		konbini = konbini || t == "konbini"
	}
	switch {
	case locale == "ja" && konbini:
		return "カード・コンビニ払い（KOMOJU）"
	case locale == "ja":
		return "KOMOJU"
	case konbini:
		return "Card or konbini (KOMOJU)"
	}
	return "KOMOJU"
}

// Accepts implements provider.Currencies.
func (*Komoju) Accepts(currency string) bool { return currencies[currency] }

// PageOrigins implements provider.Origins: KOMOJU's hosted page is served
// from the API host.
func (k *Komoju) PageOrigins() []string { return []string{k.origin} }

// Setup checks the configuration and makes the API client.
func (k *Komoju) Setup(env provider.Env) error {
	if k.secretKey == "" {
		k.secretKey = k.SecretKey
	}
	if k.webhookSecret == "" {
		k.webhookSecret = k.WebhookSecret
	}
	if err := checkKey(k.secretKey); err != nil {
		return err
	}
	if len(k.webhookSecret) < 8 {
		return errors.New("webhook_secret: want the webhook's secret token from KOMOJU's dashboard (Settings → Webhooks), at least 8 characters")
	}
	for _, t := range k.PaymentTypes {
		if !validType(t) {
			return fmt.Errorf("payment_types: %q is not a KOMOJU payment type (credit_card, konbini, paypay, ...)", t)
		}
	}
	switch k.Locale {
	case "", "ja", "en", "ko":
	default:
		return fmt.Errorf("locale %q: want ja, en or ko", k.Locale)
	}
	base := k.APIURL
	if base == "" {
		base = DefaultAPIURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		shown := base
		if err == nil && u.User != nil {
			shown = u.Redacted() // never show a password given in the URL
		}
		return fmt.Errorf("api_url %q: want scheme and host only, such as https://komoju.com", shown)
	}
	if env.Now == nil || env.Lookup == nil {
		return errors.New("incomplete site environment")
	}
	k.env = env
	k.origin = u.Scheme + "://" + u.Host
	hc := k.httpClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	k.api = &client{base: k.origin, key: k.secretKey, http: hc}
	return nil
}

// checkKey checks the form of a secret key without ever showing it.
func checkKey(key string) error {
	rest, ok := strings.CutPrefix(key, "sk_")
	if !ok || !(strings.HasPrefix(rest, "test_") || strings.HasPrefix(rest, "live_") || len(rest) >= 16) || strings.ContainsAny(key, " \t\r\n:") {
		return errors.New("secret_key: want the account's secret key, sk_test_... or sk_live_... (KOMOJU dashboard → Settings → API keys)")
	}
	return nil
}

func validType(t string) bool {
	if t == "" || len(t) > 40 {
		return false
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c == '_' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Start sends the customer to a KOMOJU session for the attempt: the
// attempt's session while it is still open, else a new one made under an
// idempotency key of the attempt, the session it replaces and the body, so
// that a double click makes one session.
func (k *Komoju) Start(ctx context.Context, p provider.Payment) (provider.Start, error) {
	key, prev := "checkout-"+p.Ref, ""
	if p.ProviderRef != "" {
		s, err := k.api.session(ctx, p.ProviderRef)
		switch {
		case err != nil && !errors.Is(err, errMissing):
			return provider.Start{}, err
		case err == nil && k.belongs(s, p) && s.Status == "pending" && !s.Expired && s.SessionURL != "":
			return provider.Start{Redirect: s.SessionURL, ProviderRef: s.ID}, nil
		case err == nil && k.belongs(s, p) && s.Status == "completed":
			// Paid, or a konbini slip taken: the return route confirms it.
			return provider.Start{Redirect: p.ReturnURL + "?session_id=" + s.ID, ProviderRef: s.ID}, nil
		}
		// Expired, cancelled or not ours: a new session.
		prev = p.ProviderRef
		key += "-after-" + prev
	}
	body, err := k.sessionRequest(p, prev)
	if err != nil {
		return provider.Start{}, err
	}
	s, err := k.api.createSession(ctx, key+"-"+digest(body), body)
	if err != nil {
		return provider.Start{}, err
	}
	if s.ID == "" || s.SessionURL == "" {
		return provider.Start{}, fmt.Errorf("%w: KOMOJU returned a session without id or session_url", provider.ErrUnavailable)
	}
	if !k.fromAPI(s.SessionURL) {
		return provider.Start{}, fmt.Errorf("%w: KOMOJU's session_url is not on its own host", provider.ErrUnavailable)
	}
	return provider.Start{Redirect: s.SessionURL, ProviderRef: s.ID}, nil
}

// fromAPI reports whether u is a page of KOMOJU's host.
func (k *Komoju) fromAPI(u string) bool {
	return u == k.origin || strings.HasPrefix(u, k.origin+"/")
}

// sessionRequest builds the session of an attempt. Everything in it comes
// from the stored attempt, so a double click sends the same body.
func (k *Komoju) sessionRequest(p provider.Payment, prev string) (sessionRequest, error) {
	units, err := toKomoju(p.Amount)
	if err != nil {
		return sessionRequest{}, err
	}
	locale := k.Locale
	if locale == "" {
		locale = "en"
		if p.Locale == "ja" || p.Locale == "ko" {
			locale = p.Locale
		}
	}
	ext := p.Ref
	if prev != "" {
		// A later session of the same attempt: KOMOJU keeps
		// external_order_num unique per session.
		ext += "-" + prev[:min(8, len(prev))]
	}
	r := sessionRequest{
		Mode:             "payment",
		Amount:           units,
		Currency:         p.Amount.Currency(),
		ReturnURL:        p.ReturnURL,
		DefaultLocale:    locale,
		PaymentTypes:     k.PaymentTypes,
		ExpiresInSeconds: sessionLife(p),
		PaymentData:      paymentData{ExternalOrderNum: ext},
		Metadata: map[string]string{
			metaSite:  p.Site,
			metaOrder: truncate(p.OrderID, 1900),
			metaRef:   p.Ref,
		},
	}
	if p.Email != "" {
		if a, err := mail.ParseAddress(p.Email); err == nil && a.Address == p.Email {
			r.Email = p.Email
		}
	}
	return r, nil
}

// sessionLife is the order's time left when the attempt was made, capped
// at KOMOJU's 24 hours; it is counted from the attempt's stored creation,
// not from now, so that every click sends the same value. A payment made
// after the order's own deadline is recorded as late.
func sessionLife(p provider.Payment) int64 {
	left := p.ExpiresAt.Sub(p.CreatedAt)
	if p.CreatedAt.IsZero() || left > maxSessionLife {
		left = maxSessionLife
	}
	return max(int64(left/time.Second), 60)
}

func digest(v any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// toKomoju is an amount in KOMOJU's integer units: the currency's ISO 4217
// minor units (JPY 1200 → 1200, USD 12.50 → 1250).
func toKomoju(a money.Amount) (int64, error) {
	cur := a.Currency()
	if !currencies[cur] {
		return 0, fmt.Errorf("KOMOJU does not take payments in %s", cur)
	}
	iso, _ := money.Exponent(cur)
	minor := a.Minor()
	for e := a.Exp(); e > iso; e-- {
		var rem big.Int
		minor.QuoRem(minor, big.NewInt(10), &rem)
		if rem.Sign() != 0 {
			return 0, fmt.Errorf("amount %s has more decimals than %s allows", a, cur)
		}
	}
	for e := a.Exp(); e < iso; e++ {
		minor.Mul(minor, big.NewInt(10))
	}
	if !minor.IsInt64() || minor.Sign() <= 0 {
		return 0, fmt.Errorf("amount %s %s is out of KOMOJU's range", a, cur)
	}
	return minor.Int64(), nil
}

// fromKomoju reads an amount KOMOJU reports back into an exact amount.
func fromKomoju(units *int64, currency string) (money.Amount, error) {
	if units == nil || *units < 0 || !currencies[currency] {
		return money.Amount{}, fmt.Errorf("%w: payment without a valid amount, or with currency %q", provider.ErrMalformed, truncate(currency, 8))
	}
	return money.FromMinor(big.NewInt(*units), currency)
}

// belongs reports whether a session was made for the attempt: its
// metadata names the attempt and the site, and it asks for the attempt's
// amount.
func (k *Komoju) belongs(s *session, p provider.Payment) bool {
	if s.Metadata[metaRef] != p.Ref || s.Metadata[metaSite] != p.Site {
		return false
	}
	units, err := toKomoju(p.Amount)
	return err == nil && s.Amount == units && s.Currency == p.Amount.Currency()
}
