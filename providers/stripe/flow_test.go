// The Stripe provider driven through the site as customers, Stripe and
// operators drive it: the stateful fake Stripe (internal/stripetest) holds
// the sessions, and every request the provider sends is also validated by
// stripe-mock against Stripe's OpenAPI spec.
package stripe_test

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
	"github.com/caddy-checkout/checkout/handlers/handlerstest"
	"github.com/caddy-checkout/checkout/internal/stripetest"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/sandbox"
	"github.com/caddy-checkout/checkout/providers/stripe"
)

const stripeWebhookSecret = "whsec_stripe_test_0123456789abcdef"

type stripeEnv struct {
	*handlerstest.Env
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
	se.Env = handlerstest.New(t, func(c *handlers.Config) {
		now := c.Now
		se.fake = stripetest.New(t, stripetest.WithMock(mock), stripetest.WithClock(func() time.Time { return now() }))
		se.prov.APIURL = se.fake.URL
		c.Providers = []provider.Provider{se.prov}
		for _, o := range opts {
			o(c, se.prov)
		}
	})
	se.fake.SetWebhook(se.Srv.URL+"/_checkout/webhook/stripe", stripeWebhookSecret)
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
	se.T.Helper()
	r := se.Post(c, "/buy", url.Values{"product": {product}})
	prefix := se.fake.URL + "/pay/"
	if r.Code != http.StatusSeeOther || !strings.HasPrefix(r.Location, prefix) {
		se.T.Fatalf("buy: %d %q, want 303 to the Stripe session page:\n%s", r.Code, r.Location, r.Body)
	}
	return strings.TrimPrefix(r.Location, prefix)
}

// payOnStripe presses a button on the fake's hosted page and returns
// where Stripe sends the customer.
func (se *stripeEnv) payOnStripe(c *http.Client, sessionID, action string) handlerstest.Resp {
	se.T.Helper()
	r := se.Post(c, se.fake.URL+"/pay/"+sessionID, url.Values{"action": {action}})
	if r.Code != http.StatusSeeOther {
		se.T.Fatalf("Stripe page %s: %d\n%s", action, r.Code, r.Body)
	}
	return r
}

func (se *stripeEnv) refOfSession(id string) string {
	se.T.Helper()
	for _, rq := range se.fake.Requests() {
		if rq.Method == http.MethodPost && rq.Path == "/v1/checkout/sessions" {
			if ref := rq.Form.Get("client_reference_id"); ref != "" {
				o, err := se.Store.ByRef(context.Background(), ref)
				if err == nil && o.Attempt(ref).ProviderRef == id {
					return ref
				}
			}
		}
	}
	se.T.Fatalf("no attempt recorded session %s", id)
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
	c := se.Client()
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
		"success_url":                                   se.Srv.URL + "/_checkout/return/stripe/" + ref + "?session_id={CHECKOUT_SESSION_ID}",
		"cancel_url":                                    se.Srv.URL + "/_checkout/pay/" + ref,
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
	if life := time.Unix(exp, 0).Sub(se.Clock.Now()); life < 30*time.Minute || life > 24*time.Hour {
		t.Errorf("expires_at is %s from now, outside Stripe's 30m-24h", life)
	}

	back := se.payOnStripe(c, id, "pay")
	if back.Location != se.Srv.URL+"/_checkout/return/stripe/"+ref+"?session_id="+id {
		t.Fatalf("Stripe sent the customer to %q", back.Location)
	}
	ret := se.Get(c, back.Location)
	if ret.Code != http.StatusSeeOther || !strings.Contains(ret.Location, "checkout_token=") {
		t.Fatalf("return: %d %q\n%s", ret.Code, ret.Location, ret.Body)
	}
	thanks := se.Get(c, ret.Location)
	if !strings.Contains(thanks.Body, "<strong>paid</strong>: 12.50 USD") {
		t.Fatalf("shop did not see verified paid headers:\n%s", thanks.Body)
	}
	o := se.OrderByRef(ref)
	if o.Status != order.Paid || o.PaidWith != "stripe" || !strings.HasPrefix(o.Transaction, "pi_") {
		t.Fatalf("order %s via %q txn %q", o.Status, o.PaidWith, o.Transaction)
	}
	if types := se.CallbackTypes(); len(types) != 1 || types[0] != "order.paid" {
		t.Fatalf("callbacks %v, want one order.paid", types)
	}
}

func TestStripeZeroDecimalCurrency(t *testing.T) {
	se := newStripeEnv(t)
	c := se.Client()
	id := se.buyStripe(c, "tea")
	f := se.sessionCreates()[0].Form
	if f.Get("line_items[0][price_data][currency]") != "jpy" || f.Get("line_items[0][price_data][unit_amount]") != "1800" {
		t.Fatalf("JPY 1800 sent as %s %s", f.Get("line_items[0][price_data][unit_amount]"), f.Get("line_items[0][price_data][currency]"))
	}
	se.payOnStripe(c, id, "pay")
	if o := se.OrderByRef(se.refOfSession(id)); o.Status != order.Paid || o.Amount.String() != "1800" {
		t.Fatalf("order %s %s", o.Status, o.Amount)
	}
}

func TestStripeDoubleClickMakesOneSession(t *testing.T) {
	se := newStripeEnv(t, withSandboxToo)
	c := se.Client()
	r := se.Post(c, "/buy", url.Values{"product": {"mug"}})
	if r.Code != http.StatusSeeOther || !strings.Contains(r.Location, "/_checkout/pay/") {
		t.Fatalf("buy with two providers: %d %q, want the pay page", r.Code, r.Location)
	}
	ref := handlerstest.RefOf(r.Location)
	csrf := handlerstest.CSRFOf(t, se.Get(c, r.Location).Body)
	var wg sync.WaitGroup
	locs := make([]string, 10)
	for i := range locs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			locs[i] = se.Post(c, "/_checkout/pay/"+ref, url.Values{"csrf": {csrf}, "provider": {"stripe"}}, "Origin", se.Srv.URL).Location
		}()
	}
	wg.Wait()
	if n := len(se.fake.Sessions()); n != 1 {
		t.Fatalf("%d sessions at Stripe after 10 clicks, want 1", n)
	}
	id := se.OrderByRef(ref).Current().ProviderRef
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
			c := se.Client()
			id := se.buyStripe(c, "tee")
			ref := se.refOfSession(id)
			back := se.payOnStripe(c, id, "pay_later")
			voucher := se.Clock.Now().Add(stripetest.VoucherLife).UTC()
			if o := se.OrderByRef(ref); o.Status != order.OnHold || !o.HoldUntil.Equal(voucher) {
				t.Fatalf("after pay-later: %s held until %s, want on_hold until the konbini voucher's expiry %s", o.Status, o.HoldUntil, voucher)
			}
			// The voucher outlives the order's 30 minutes: it is not expired.
			se.Clock.Add(2 * time.Hour)
			if n, err := se.Site().Expire(context.Background(), 10); err != nil || n != 0 {
				t.Fatalf("Expire two hours into a 3-day voucher = %d, %v", n, err)
			}
			se.Clock.Add(-2 * time.Hour) // the shop checks callback timestamps against its own clock
			page := se.Get(c, back.Location)
			if page.Code != http.StatusOK || !strings.Contains(page.Body, "/_checkout/status/") {
				t.Fatalf("return while unpaid: %d, want the live processing page\n%s", page.Code, page.Body)
			}
			if _, err := se.fake.Settle(id, ok); err != nil {
				t.Fatal(err)
			}
			// A failed delayed payment fails the attempt: the order stays
			// where it was and the shop is told nothing more.
			want := map[bool]order.State{true: order.Paid, false: order.OnHold}[ok]
			o := se.OrderByRef(ref)
			if o.Status != want || o.Current().Failed == ok {
				t.Fatalf("after settling: %s, attempt failed=%v; want %s", o.Status, o.Current().Failed, want)
			}
			types := se.CallbackTypes()
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
	id := se.buyStripe(se.Client(), "mug")
	ref := se.refOfSession(id)
	if _, err := se.fake.Expire(id); err != nil {
		t.Fatal(err)
	}
	if o := se.OrderByRef(ref); o.Status != order.Expired {
		t.Fatalf("after the session expired: %s", o.Status)
	}
	if types := se.CallbackTypes(); len(types) != 1 || types[0] != "order.expired" {
		t.Fatalf("callbacks %v", types)
	}
}

func TestStripeRefundedInDashboard(t *testing.T) {
	se := newStripeEnv(t)
	c := se.Client()
	id := se.buyStripe(c, "mug")
	se.payOnStripe(c, id, "pay")
	if _, err := se.fake.RefundInDashboard(id); err != nil {
		t.Fatal(err)
	}
	if o := se.OrderByRef(se.refOfSession(id)); o.Status != order.Refunded {
		t.Fatalf("after a dashboard refund: %s", o.Status)
	}
	if types := se.CallbackTypes(); strings.Join(types, ",") != "order.paid,order.refunded" {
		t.Fatalf("callbacks %v", types)
	}
}

func TestStripeRefundThroughSite(t *testing.T) {
	se := newStripeEnv(t)
	c := se.Client()
	id := se.buyStripe(c, "tee")
	ref := se.refOfSession(id)
	se.payOnStripe(c, id, "pay")
	oid := se.OrderByRef(ref).ID
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = se.Site().Refund(context.Background(), oid, handlers.RefundRequest{})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("refund: %v", err)
		}
	}
	if o := se.OrderByRef(ref); o.Status != order.Refunded {
		t.Fatalf("after refund: %s", o.Status)
	}
	refunds := 0
	keys := map[string]bool{}
	for _, rq := range se.fake.Requests() {
		if rq.Method == http.MethodPost && rq.Path == "/v1/refunds" {
			keys[rq.IdempotencyKey] = true
			refunds++
		}
	}
	for k := range keys {
		if len(keys) != 1 || !strings.HasPrefix(k, "checkout-refund-") {
			t.Errorf("the five requests went under the Idempotency-Keys %v, want one", keys)
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
	if types := se.CallbackTypes(); strings.Join(types, ",") != "order.paid,order.refunded" {
		t.Fatalf("callbacks %v, want order.paid then one order.refunded", types)
	}
	// A pending order cannot be refunded.
	other := se.buyStripe(se.Client(), "mug")
	if _, _, err := se.Site().Refund(context.Background(), se.OrderByRef(se.refOfSession(other)).ID, handlers.RefundRequest{}); err == nil {
		t.Fatal("refunding an unpaid order succeeded")
	}
}

// TestSwitchingProviderClosesTheEarlierAttempt: a customer who went to
// Stripe, came back and chose the sandbox pays through a new attempt of
// the same generation, and the Stripe session is expired so it can no
// longer take money.
func TestSwitchingProviderClosesTheEarlierAttempt(t *testing.T) {
	se := newStripeEnv(t, withSandboxToo)
	c := se.Client()
	r := se.Post(c, "/buy", url.Values{"product": {"mug"}})
	ref := handlerstest.RefOf(r.Location)
	page := se.Get(c, r.Location)
	toStripe := se.Post(c, "/_checkout/pay/"+ref, url.Values{"csrf": {handlerstest.CSRFOf(t, page.Body)}, "provider": {"stripe"}}, "Origin", se.Srv.URL)
	if !strings.HasPrefix(toStripe.Location, se.fake.URL+"/pay/") {
		t.Fatalf("choosing stripe: %d %q", toStripe.Code, toStripe.Location)
	}
	id := se.OrderByRef(ref).Current().ProviderRef
	// Back on the pay page (the browser's back button), the sandbox instead.
	page = se.Get(c, "/_checkout/pay/"+ref)
	toSandbox := se.Post(c, "/_checkout/pay/"+ref, url.Values{"csrf": {handlerstest.CSRFOf(t, page.Body)}, "provider": {"sandbox"}}, "Origin", se.Srv.URL)
	if !strings.Contains(toSandbox.Location, "/_checkout/sandbox/") || handlerstest.RefOf(toSandbox.Location) == ref {
		t.Fatalf("choosing the sandbox after stripe: %d %q, want a new attempt's sandbox page", toSandbox.Code, toSandbox.Location)
	}
	if s, ok := se.fake.Session(id); !ok || s.Status != "expired" {
		t.Fatalf("the Stripe session of the earlier attempt is %q, want expired", s.Status)
	}
	o := se.OrderByRef(ref)
	if len(o.Attempts) != 2 || o.Attempts[0].Generation != o.Attempts[1].Generation || o.Current().Provider != "sandbox" {
		t.Fatalf("attempts %+v, want two of one generation, the current one with the sandbox", o.Attempts)
	}
	se.PaySandbox(c, toSandbox.Location, "paid")
	if o := se.OrderByRef(ref); o.Status != order.Paid || o.PaidWith != "sandbox" {
		t.Fatalf("order %s paid with %q", o.Status, o.PaidWith)
	}
}

// TestPayPageNamesProvidersInTheCustomersLanguage: the Japanese pay page
// labels each way to pay in Japanese (the providers translate their own
// labels).
func TestPayPageNamesProvidersInTheCustomersLanguage(t *testing.T) {
	se := newStripeEnv(t, withSandboxToo)
	c := se.Client()
	r := se.Post(c, "/buy", url.Values{"product": {"mug"}})
	ja := se.Get(c, r.Location, "Accept-Language", "ja")
	for _, want := range []string{"カード（Stripe）", "サンドボックス（テスト決済"} {
		if !strings.Contains(ja.Body, want) {
			t.Errorf("Japanese pay page lacks %q", want)
		}
	}
	if strings.Contains(ja.Body, "Card (Stripe)") || strings.Contains(ja.Body, "no real money") {
		t.Errorf("Japanese pay page shows English labels:\n%s", ja.Body)
	}
	if en := se.Get(c, r.Location, "Accept-Language", "en"); !strings.Contains(en.Body, "Card (Stripe)") {
		t.Errorf("English pay page lacks the English label")
	}
}
