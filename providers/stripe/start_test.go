package stripe_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/internal/stripetest"
	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/stripe"
)

var t0 = time.Date(2026, 11, 21, 10, 2, 30, 0, time.UTC)

// clockNow is the provider's and the fake's clock (tests of this package
// do not run in parallel); newProvider sets it to t0.
var clockNow time.Time

// newProvider is a Stripe provider set up against a fake Stripe whose
// requests stripe-mock validates, with a fixed clock.
func newProvider(t *testing.T, configure ...func(*stripe.Stripe)) (*stripe.Stripe, *stripetest.Server) {
	t.Helper()
	clockNow = t0
	now := func() time.Time { return clockNow }
	fake := stripetest.New(t, stripetest.WithMock(stripetest.StartMock(t)), stripetest.WithClock(now))
	p := &stripe.Stripe{SecretKey: "sk_test_unit", WebhookSecret: "whsec_unit_0123456789", APIURL: fake.URL}
	for _, f := range configure {
		f(p)
	}
	err := p.Setup(provider.Env{Site: "shop", Now: now,
		Lookup: func(context.Context, string) (*order.Order, provider.Payment, error) {
			return nil, provider.Payment{}, errors.New("not used")
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if rej := fake.MockRejections(); len(rej) > 0 {
			t.Errorf("stripe-mock rejected: %v", rej)
		}
	})
	return p, fake
}

func payment(amount, currency string, expires time.Duration) provider.Payment {
	return provider.Payment{
		Site: "shop", OrderID: "1001", Ref: "ref" + strconv.FormatInt(int64(expires), 36), Generation: 1,
		Amount: money.MustParse(amount, currency), Description: "Ticket: Gophercon", ExpiresAt: t0.Add(expires),
		ReturnURL: "https://shop.example/_checkout/return/stripe/r", CancelURL: "https://shop.example/_checkout/pay/r",
	}
}

func lastCreate(t *testing.T, fake *stripetest.Server) stripetest.Request {
	t.Helper()
	var last *stripetest.Request
	for _, rq := range fake.Requests() {
		if rq.Method == http.MethodPost && rq.Path == "/v1/checkout/sessions" {
			last = &rq
		}
	}
	if last == nil {
		t.Fatal("no session was created")
	}
	return *last
}

func TestSessionExpiryIsClampedToStripesRange(t *testing.T) {
	p, fake := newProvider(t)
	for _, c := range []struct {
		name    string
		expires time.Duration
		want    time.Time
		clamped bool
	}{
		{"order longer than 24h: 24h less a margin", 72 * time.Hour, t0.Truncate(5 * time.Minute).Add(24*time.Hour - 2*time.Minute), true},
		{"order of 2h: its own deadline", 2 * time.Hour, t0.Add(2 * time.Hour), false},
		{"order of 10m: Stripe's 30m plus a margin", 10 * time.Minute, t0.Truncate(5 * time.Minute).Add(37 * time.Minute), true},
	} {
		clockNow = t0
		pay := payment("12.50", "USD", c.expires)
		if _, err := p.Start(context.Background(), pay); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		rq := lastCreate(t, fake)
		got, _ := strconv.ParseInt(rq.Form.Get("expires_at"), 10, 64)
		if !time.Unix(got, 0).Equal(c.want) {
			t.Errorf("%s: expires_at %s, want %s", c.name, time.Unix(got, 0).UTC(), c.want)
		}
		if life := time.Unix(got, 0).Sub(t0); life < 30*time.Minute || life > 24*time.Hour {
			t.Errorf("%s: session life %s outside Stripe's 30m–24h", c.name, life)
		}
		if !strings.HasPrefix(rq.IdempotencyKey, "checkout-"+pay.Ref+"-") {
			t.Errorf("%s: idempotency key %q is not the attempt's", c.name, rq.IdempotencyKey)
		}
		// A click a minute later, in the same window, is the same request.
		clockNow = t0.Add(time.Minute)
		if _, err := p.Start(context.Background(), pay); err != nil {
			t.Fatal(err)
		}
		if again := lastCreate(t, fake); again.IdempotencyKey != rq.IdempotencyKey || again.Form.Encode() != rq.Form.Encode() {
			t.Errorf("%s: a second click in the window sent key %q, want %q", c.name, again.IdempotencyKey, rq.IdempotencyKey)
		}
		// In the next window a clamped expires_at moves, and so does the
		// key (Stripe would refuse the old key with new parameters).
		clockNow = t0.Add(5 * time.Minute)
		if _, err := p.Start(context.Background(), pay); err != nil {
			t.Fatalf("%s: click in the next window: %v", c.name, err)
		}
		if later := lastCreate(t, fake); (later.IdempotencyKey != rq.IdempotencyKey) != c.clamped {
			t.Errorf("%s: key in the next window %q (first %q), clamped %v", c.name, later.IdempotencyKey, rq.IdempotencyKey, c.clamped)
		}
	}
}

func TestChangedDescriptionMakesANewSessionNotAnError(t *testing.T) {
	p, fake := newProvider(t)
	pay := payment("12.50", "USD", time.Hour)
	if _, err := p.Start(context.Background(), pay); err != nil {
		t.Fatal(err)
	}
	// The first answer was lost (no session recorded), and the shop has
	// since refreshed the description of the pending order.
	pay.Description = "Ticket: Gophercon (2 days)"
	if _, err := p.Start(context.Background(), pay); err != nil {
		t.Fatalf("retry with a new description: %v", err)
	}
	if n := len(fake.Sessions()); n != 2 {
		t.Fatalf("%d sessions", n)
	}
}

func TestSessionCustomerDetails(t *testing.T) {
	p, fake := newProvider(t, func(s *stripe.Stripe) { s.PaymentMethodTypes = []string{"card", "konbini"} })
	pay := payment("1800", "JPY", time.Hour)
	pay.Email, pay.Locale = "hanako@example.jp", "ja"
	if _, err := p.Start(context.Background(), pay); err != nil {
		t.Fatal(err)
	}
	f := lastCreate(t, fake).Form
	for k, want := range map[string]string{
		"customer_email":                                "hanako@example.jp",
		"locale":                                        "ja",
		"payment_method_types[0]":                       "card",
		"payment_method_types[1]":                       "konbini",
		"line_items[0][price_data][unit_amount]":        "1800",
		"line_items[0][price_data][currency]":           "jpy",
		"line_items[0][price_data][product_data][name]": "Ticket: Gophercon",
		"metadata[checkout_order]":                      "1001",
	} {
		if got := f.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	// An address Stripe would refuse is left out rather than failing the payment.
	pay = payment("5.00", "USD", time.Hour)
	pay.Ref, pay.Email = "other", "not an address <x@>"
	if _, err := p.Start(context.Background(), pay); err != nil {
		t.Fatal(err)
	}
	if f := lastCreate(t, fake).Form; f.Has("customer_email") || f.Has("locale") {
		t.Errorf("customer_email %q, locale %q sent", f.Get("customer_email"), f.Get("locale"))
	}
}

func TestStartRefusesAmountsStripeCannotTake(t *testing.T) {
	p, fake := newProvider(t)
	if _, err := p.Start(context.Background(), payment("5.125", "KWD", time.Hour)); err == nil || !strings.Contains(err.Error(), "KWD") {
		t.Fatalf("KWD 5.125: %v", err)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Fatalf("%d requests sent for an amount Stripe cannot take", n)
	}
}

func TestStartReusesOpenSessionAndReplacesExpiredOne(t *testing.T) {
	p, fake := newProvider(t)
	pay := payment("12.50", "USD", 2*time.Hour)
	st, err := p.Start(context.Background(), pay)
	if err != nil {
		t.Fatal(err)
	}
	pay.ProviderRef = st.ProviderRef
	again, err := p.Start(context.Background(), pay)
	if err != nil || again.Redirect != st.Redirect || len(fake.Sessions()) != 1 {
		t.Fatalf("second start: %+v, %v, %d sessions", again, err, len(fake.Sessions()))
	}
	if _, err := fake.Expire(st.ProviderRef); err != nil {
		t.Fatal(err)
	}
	fresh, err := p.Start(context.Background(), pay)
	if err != nil || fresh.ProviderRef == st.ProviderRef || len(fake.Sessions()) != 2 {
		t.Fatalf("start after the session expired: %+v, %v", fresh, err)
	}
	if key := lastCreate(t, fake).IdempotencyKey; !strings.HasPrefix(key, "checkout-"+pay.Ref+"-after-"+st.ProviderRef+"-") {
		t.Fatalf("replacement session's idempotency key %q", key)
	}
	// Paid at Stripe already: the customer goes to the return route.
	if _, err := fake.Pay(fresh.ProviderRef); err != nil {
		t.Fatal(err)
	}
	pay.ProviderRef = fresh.ProviderRef
	done, err := p.Start(context.Background(), pay)
	if err != nil || done.Redirect != pay.ReturnURL+"?session_id="+fresh.ProviderRef {
		t.Fatalf("start of a paid session: %+v, %v", done, err)
	}
}

func TestConnectedAccountOnEveryRequest(t *testing.T) {
	p, fake := newProvider(t, func(s *stripe.Stripe) { s.Account = "acct_1Organiser" })
	pay := payment("20.00", "EUR", time.Hour)
	st, err := p.Start(context.Background(), pay)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fake.Pay(st.ProviderRef); err != nil {
		t.Fatal(err)
	}
	pay.ProviderRef = st.ProviderRef
	f, err := p.Check(context.Background(), pay)
	if err != nil || f.Status != order.Paid || !f.Paid.Equal(money.MustParse("20.00", "EUR")) {
		t.Fatalf("check: %+v, %v", f, err)
	}
	if _, err := p.Refund(context.Background(), pay, provider.Refund{Amount: money.MustParse("20.00", "EUR"), Key: "k1"}); err != nil {
		t.Fatal(err)
	}
	for _, rq := range fake.Requests() {
		if rq.Account != "acct_1Organiser" {
			t.Fatalf("%s %s without the connected account", rq.Method, rq.Path)
		}
	}
	// Without the account header the platform cannot see the session.
	plat, _ := newProvider(t)
	if _, err := plat.Check(context.Background(), pay); err == nil {
		t.Fatal("the platform found the connected account's session")
	}
}

func TestSetupRefusesBadSettingsWithoutShowingThem(t *testing.T) {
	env := provider.Env{Site: "shop", Now: time.Now, Lookup: func(context.Context, string) (*order.Order, provider.Payment, error) {
		return nil, provider.Payment{}, nil
	}}
	for _, c := range []struct {
		s    stripe.Stripe
		want string
	}{
		{stripe.Stripe{SecretKey: "pk_live_Secret123", WebhookSecret: "whsec_0123456789"}, "secret_key"},
		{stripe.Stripe{SecretKey: "sk_live_Secret123", WebhookSecret: "Secret0123456789"}, "webhook_secret"},
		{stripe.Stripe{SecretKey: "sk_live_Secret123", WebhookSecret: "whsec_0123456789", Account: "cus_1"}, "account"},
		{stripe.Stripe{SecretKey: "sk_live_Secret123", WebhookSecret: "whsec_0123456789", APIURL: "ftp://x"}, "api_url"},
		{stripe.Stripe{SecretKey: "sk_live_Secret123", WebhookSecret: "whsec_0123456789", PaymentMethodTypes: []string{"Card"}}, "payment_method_types"},
	} {
		err := c.s.Setup(env)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "Secret") {
			t.Errorf("%s: %v", c.want, err)
		}
	}
}
