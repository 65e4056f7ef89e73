// The Stripe provider driven through the site as customers, Stripe and
// operators drive it: the stateful fake Stripe (internal/stripetest) holds
// the sessions, and every request the provider sends is also validated by
// stripe-mock against Stripe's OpenAPI spec.
package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/internal/stripetest"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/sandbox"
	"github.com/caddy-checkout/checkout/providers/stripe"
)

const stripeWebhookSecret = "whsec_stripe_test_0123456789abcdef"

type stripeEnv struct {
	*testEnv
	fake *stripetest.Server
	prov *stripe.Stripe
}

// stripeOption adjusts the site or the provider of a Stripe test env.
type stripeOption func(*handlers.Config, *stripe.Stripe)

// withSandboxToo offers the sandbox as well, so customers choose.
func withSandboxToo(c *handlers.Config, _ *stripe.Stripe) {
	c.Providers = append(c.Providers, &sandbox.Sandbox{})
}

// newStripeEnv is the harness's site with Stripe as its provider, talking
// to a fake Stripe that delivers its webhooks to the site.
func newStripeEnv(t *testing.T, opts ...stripeOption) *stripeEnv {
	t.Helper()
	mock := stripetest.StartMock(t)
	se := &stripeEnv{}
	se.prov = &stripe.Stripe{SecretKey: "sk_test_4eC39HqLyjWDarjtT1zdp7dc", WebhookSecret: stripeWebhookSecret}
	se.testEnv = newEnv(t, func(c *handlers.Config) {
		now := c.Now
		se.fake = stripetest.New(t, stripetest.WithMock(mock), stripetest.WithClock(func() time.Time { return now() }))
		se.prov.APIURL = se.fake.URL
		c.Providers = []provider.Provider{se.prov}
		for _, o := range opts {
			o(c, se.prov)
		}
	})
	se.fake.SetWebhook(se.srv.URL+"/_checkout/webhook/stripe", stripeWebhookSecret)
	t.Cleanup(func() {
		if rej := se.fake.MockRejections(); len(rej) > 0 {
			t.Errorf("stripe-mock rejected requests the provider sent:\n%s", strings.Join(rej, "\n"))
		}
	})
	return se
}

// buyStripe has the demo shop announce an order and returns the session
// id the customer is sent to.
func (se *stripeEnv) buyStripe(c *http.Client, product string) string {
	se.t.Helper()
	r := se.post(c, "/buy", url.Values{"product": {product}})
	prefix := se.fake.URL + "/pay/"
	if r.code != http.StatusSeeOther || !strings.HasPrefix(r.location, prefix) {
		se.t.Fatalf("buy: %d %q, want 303 to the Stripe session page:\n%s", r.code, r.location, r.body)
	}
	return strings.TrimPrefix(r.location, prefix)
}

// payOnStripe presses a button on the fake's hosted page and returns
// where Stripe sends the customer.
func (se *stripeEnv) payOnStripe(c *http.Client, sessionID, action string) resp {
	se.t.Helper()
	r := se.post(c, se.fake.URL+"/pay/"+sessionID, url.Values{"action": {action}})
	if r.code != http.StatusSeeOther {
		se.t.Fatalf("Stripe page %s: %d\n%s", action, r.code, r.body)
	}
	return r
}

func (se *stripeEnv) refOfSession(id string) string {
	se.t.Helper()
	for _, rq := range se.fake.Requests() {
		if rq.Method == http.MethodPost && rq.Path == "/v1/checkout/sessions" {
			if ref := rq.Form.Get("client_reference_id"); ref != "" {
				o, err := se.store.ByRef(context.Background(), ref)
				if err == nil && o.Attempt(ref).ProviderRef == id {
					return ref
				}
			}
		}
	}
	se.t.Fatalf("no attempt recorded session %s", id)
	return ""
}

func (se *stripeEnv) sessionCreates() []stripetest.Request {
	var out []stripetest.Request
	for _, rq := range se.fake.Requests() {
		if rq.Method == http.MethodPost && rq.Path == "/v1/checkout/sessions" {
			out = append(out, rq)
		}
	}
	return out
}

func TestStripePaidEndToEnd(t *testing.T) {
	se := newStripeEnv(t)
	c := se.client()
	id := se.buyStripe(c, "mug")
	creates := se.sessionCreates()
	if len(creates) != 1 {
		t.Fatalf("%d session creates, want 1", len(creates))
	}
	f, rq := creates[0].Form, creates[0]
	ref := f.Get("client_reference_id")
	for k, want := range map[string]string{
		"mode":                                          "payment",
		"line_items[0][price_data][currency]":           "usd",
		"line_items[0][price_data][unit_amount]":        "1250",
		"line_items[0][price_data][product_data][name]": "Caddy mug",
		"line_items[0][quantity]":                       "1",
		"metadata[checkout_site]":                       "shop",
		"metadata[checkout_ref]":                        ref,
		"metadata[checkout_attempt]":                    "1",
		"payment_intent_data[metadata][checkout_ref]":   ref,
		"success_url":                                   se.srv.URL + "/_checkout/return/stripe/" + ref + "?session_id={CHECKOUT_SESSION_ID}",
		"cancel_url":                                    se.srv.URL + "/_checkout/pay/" + ref,
	} {
		if got := f.Get(k); got != want {
			t.Errorf("session param %s = %q, want %q", k, got, want)
		}
	}
	// The default 30 min order ends before Stripe's shortest session, so
	// the key also names the click's window (see stripe.expiresAt).
	if !strings.HasPrefix(rq.IdempotencyKey, "checkout-"+ref) {
		t.Errorf("Idempotency-Key = %q, want one of the attempt, checkout-%s...", rq.IdempotencyKey, ref)
	}
	if rq.StripeVersion == "" || rq.Account != "" {
		t.Errorf("Stripe-Version %q, Stripe-Account %q", rq.StripeVersion, rq.Account)
	}
	exp, _ := strconv.ParseInt(f.Get("expires_at"), 10, 64)
	if life := time.Unix(exp, 0).Sub(se.clock.Now()); life < 30*time.Minute || life > 24*time.Hour {
		t.Errorf("expires_at is %s from now, outside Stripe's 30m-24h", life)
	}

	back := se.payOnStripe(c, id, "pay")
	if back.location != se.srv.URL+"/_checkout/return/stripe/"+ref+"?session_id="+id {
		t.Fatalf("Stripe sent the customer to %q", back.location)
	}
	ret := se.get(c, back.location)
	if ret.code != http.StatusSeeOther || !strings.Contains(ret.location, "checkout_token=") {
		t.Fatalf("return: %d %q\n%s", ret.code, ret.location, ret.body)
	}
	thanks := se.get(c, ret.location)
	if !strings.Contains(thanks.body, "<strong>paid</strong>: 12.50 USD") {
		t.Fatalf("shop did not see verified paid headers:\n%s", thanks.body)
	}
	o := se.orderByRef(ref)
	if o.Status != order.Paid || o.PaidWith != "stripe" || !strings.HasPrefix(o.Transaction, "pi_") {
		t.Fatalf("order %s via %q txn %q", o.Status, o.PaidWith, o.Transaction)
	}
	if types := se.callbackTypes(); len(types) != 1 || types[0] != "order.paid" {
		t.Fatalf("callbacks %v, want one order.paid", types)
	}
}

func TestStripeZeroDecimalCurrency(t *testing.T) {
	se := newStripeEnv(t)
	c := se.client()
	id := se.buyStripe(c, "tea")
	f := se.sessionCreates()[0].Form
	if f.Get("line_items[0][price_data][currency]") != "jpy" || f.Get("line_items[0][price_data][unit_amount]") != "1800" {
		t.Fatalf("JPY 1800 sent as %s %s", f.Get("line_items[0][price_data][unit_amount]"), f.Get("line_items[0][price_data][currency]"))
	}
	se.payOnStripe(c, id, "pay")
	if o := se.orderByRef(se.refOfSession(id)); o.Status != order.Paid || o.Amount.String() != "1800" {
		t.Fatalf("order %s %s", o.Status, o.Amount)
	}
}

func TestStripeDoubleClickMakesOneSession(t *testing.T) {
	se := newStripeEnv(t, withSandboxToo)
	c := se.client()
	r := se.post(c, "/buy", url.Values{"product": {"mug"}})
	if r.code != http.StatusSeeOther || !strings.Contains(r.location, "/_checkout/pay/") {
		t.Fatalf("buy with two providers: %d %q, want the pay page", r.code, r.location)
	}
	ref := refOf(r.location)
	csrf := csrfOf(t, se.get(c, r.location).body)
	var wg sync.WaitGroup
	locs := make([]string, 10)
	for i := range locs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			locs[i] = se.post(c, "/_checkout/pay/"+ref, url.Values{"csrf": {csrf}, "provider": {"stripe"}}, "Origin", se.srv.URL).location
		}()
	}
	wg.Wait()
	if n := len(se.fake.Sessions()); n != 1 {
		t.Fatalf("%d sessions at Stripe after 10 clicks, want 1", n)
	}
	id := se.orderByRef(ref).Current().ProviderRef
	for _, l := range locs {
		if l != se.fake.URL+"/pay/"+id {
			t.Fatalf("a click went to %q, want the attempt's session %s", l, id)
		}
	}
}

func TestStripeDelayedPaymentThenPaidOrFailed(t *testing.T) {
	for _, ok := range []bool{true, false} {
		t.Run(map[bool]string{true: "succeeded", false: "failed"}[ok], func(t *testing.T) {
			se := newStripeEnv(t)
			c := se.client()
			id := se.buyStripe(c, "tee")
			ref := se.refOfSession(id)
			back := se.payOnStripe(c, id, "pay_later")
			if o := se.orderByRef(ref); o.Status != order.OnHold {
				t.Fatalf("after pay-later: %s, want on_hold", o.Status)
			}
			page := se.get(c, back.location)
			if page.code != http.StatusOK || !strings.Contains(page.body, "/_checkout/status/") {
				t.Fatalf("return while unpaid: %d, want the live processing page\n%s", page.code, page.body)
			}
			if _, err := se.fake.Settle(id, ok); err != nil {
				t.Fatal(err)
			}
			// A failed delayed payment fails the attempt: the order stays
			// where it was and the shop is told nothing more.
			want := map[bool]order.State{true: order.Paid, false: order.OnHold}[ok]
			o := se.orderByRef(ref)
			if o.Status != want || o.Current().Failed == ok {
				t.Fatalf("after settling: %s, attempt failed=%v; want %s", o.Status, o.Current().Failed, want)
			}
			types := se.callbackTypes()
			wantTypes := []string{"order.pending"}
			if ok {
				wantTypes = append(wantTypes, "order.paid")
			}
			if strings.Join(types, ",") != strings.Join(wantTypes, ",") {
				t.Fatalf("callbacks %v, want %v", types, wantTypes)
			}
		})
	}
}

func TestStripeSessionExpired(t *testing.T) {
	se := newStripeEnv(t)
	id := se.buyStripe(se.client(), "mug")
	ref := se.refOfSession(id)
	if _, err := se.fake.Expire(id); err != nil {
		t.Fatal(err)
	}
	if o := se.orderByRef(ref); o.Status != order.Expired {
		t.Fatalf("after the session expired: %s", o.Status)
	}
	if types := se.callbackTypes(); len(types) != 1 || types[0] != "order.expired" {
		t.Fatalf("callbacks %v", types)
	}
}

func TestStripeRefundedInDashboard(t *testing.T) {
	se := newStripeEnv(t)
	c := se.client()
	id := se.buyStripe(c, "mug")
	se.payOnStripe(c, id, "pay")
	if _, err := se.fake.RefundInDashboard(id); err != nil {
		t.Fatal(err)
	}
	if o := se.orderByRef(se.refOfSession(id)); o.Status != order.Refunded {
		t.Fatalf("after a dashboard refund: %s", o.Status)
	}
	if types := se.callbackTypes(); strings.Join(types, ",") != "order.paid,order.refunded" {
		t.Fatalf("callbacks %v", types)
	}
}

func TestStripeRefundThroughSite(t *testing.T) {
	se := newStripeEnv(t)
	c := se.client()
	id := se.buyStripe(c, "tee")
	ref := se.refOfSession(id)
	se.payOnStripe(c, id, "pay")
	oid := se.orderByRef(ref).ID
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); _, errs[i] = se.site.Refund(context.Background(), oid) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("refund: %v", err)
		}
	}
	if o := se.orderByRef(ref); o.Status != order.Refunded {
		t.Fatalf("after refund: %s", o.Status)
	}
	refunds := 0
	for _, rq := range se.fake.Requests() {
		if rq.Method == http.MethodPost && rq.Path == "/v1/refunds" {
			if rq.IdempotencyKey != "checkout-refund-"+ref {
				t.Errorf("refund Idempotency-Key %q", rq.IdempotencyKey)
			}
			refunds++
		}
	}
	se.fake.WaitDeliveries()
	made := 0
	for _, ev := range se.fake.Events() {
		if ev.Type == "refund.created" {
			made++
		}
	}
	if sess, _ := se.fake.Session(id); refunds == 0 || made != 1 || sess.AmountRefunded != sess.AmountTotal {
		t.Fatalf("%d refund requests made %d refunds at Stripe (refunded %d of %d), want 1 full refund", refunds, made, sess.AmountRefunded, sess.AmountTotal)
	}
	if types := se.callbackTypes(); strings.Join(types, ",") != "order.paid,order.refunded" {
		t.Fatalf("callbacks %v, want order.paid then one order.refunded", types)
	}
	// A pending order cannot be refunded.
	other := se.buyStripe(se.client(), "mug")
	if _, err := se.site.Refund(context.Background(), se.orderByRef(se.refOfSession(other)).ID); err == nil {
		t.Fatal("refunding an unpaid order succeeded")
	}
}

// TestSwitchingProviderClosesTheEarlierAttempt: a customer who went to
// Stripe, came back and chose the sandbox pays through a new attempt of
// the same generation, and the Stripe session is expired so it can no
// longer take money.
func TestSwitchingProviderClosesTheEarlierAttempt(t *testing.T) {
	se := newStripeEnv(t, withSandboxToo)
	c := se.client()
	r := se.post(c, "/buy", url.Values{"product": {"mug"}})
	ref := refOf(r.location)
	page := se.get(c, r.location)
	toStripe := se.post(c, "/_checkout/pay/"+ref, url.Values{"csrf": {csrfOf(t, page.body)}, "provider": {"stripe"}}, "Origin", se.srv.URL)
	if !strings.HasPrefix(toStripe.location, se.fake.URL+"/pay/") {
		t.Fatalf("choosing stripe: %d %q", toStripe.code, toStripe.location)
	}
	id := se.orderByRef(ref).Current().ProviderRef
	// Back on the pay page (the browser's back button), the sandbox instead.
	page = se.get(c, "/_checkout/pay/"+ref)
	toSandbox := se.post(c, "/_checkout/pay/"+ref, url.Values{"csrf": {csrfOf(t, page.body)}, "provider": {"sandbox"}}, "Origin", se.srv.URL)
	if !strings.Contains(toSandbox.location, "/_checkout/sandbox/") || refOf(toSandbox.location) == ref {
		t.Fatalf("choosing the sandbox after stripe: %d %q, want a new attempt's sandbox page", toSandbox.code, toSandbox.location)
	}
	if s, ok := se.fake.Session(id); !ok || s.Status != "expired" {
		t.Fatalf("the Stripe session of the earlier attempt is %q, want expired", s.Status)
	}
	o := se.orderByRef(ref)
	if len(o.Attempts) != 2 || o.Attempts[0].Generation != o.Attempts[1].Generation || o.Current().Provider != "sandbox" {
		t.Fatalf("attempts %+v, want two of one generation, the current one with the sandbox", o.Attempts)
	}
	se.paySandbox(c, toSandbox.location, "paid")
	if o := se.orderByRef(ref); o.Status != order.Paid || o.PaidWith != "sandbox" {
		t.Fatalf("order %s paid with %q", o.Status, o.PaidWith)
	}
}

// TestPayPageNamesProvidersInTheCustomersLanguage: the Japanese pay page
// labels each way to pay in Japanese (the providers translate their own
// labels).
func TestPayPageNamesProvidersInTheCustomersLanguage(t *testing.T) {
	se := newStripeEnv(t, withSandboxToo)
	c := se.client()
	r := se.post(c, "/buy", url.Values{"product": {"mug"}})
	ja := se.get(c, r.location, "Accept-Language", "ja")
	for _, want := range []string{"カード（Stripe）", "サンドボックス（テスト決済"} {
		if !strings.Contains(ja.body, want) {
			t.Errorf("Japanese pay page lacks %q", want)
		}
	}
	if strings.Contains(ja.body, "Card (Stripe)") || strings.Contains(ja.body, "no real money") {
		t.Errorf("Japanese pay page shows English labels:\n%s", ja.body)
	}
	if en := se.get(c, r.location, "Accept-Language", "en"); !strings.Contains(en.body, "Card (Stripe)") {
		t.Errorf("English pay page lacks the English label")
	}
}
