package stripe_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/handlers/handlerstest"
	"github.com/caddy-checkout/checkout/internal/stripetest"
	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/stripe"
)

// BenchmarkStripeWebhookIngest measures verified Stripe webhooks applied
// durably: one op is one checkout.session.completed (paid) event for its
// own pending order, posted to {base}/webhook/stripe. Each is verified
// (Stripe-Signature HMAC on the raw body, tolerance), decoded, matched to
// its attempt, applied (pending → paid, amount checked) and written with
// its shop callback row in one fsynced bbolt transaction before the 200.
// Events are made and signed before the timer starts; the orders are
// stored then too. Metric: events/s, with g requests in flight.
//
//	go test ./handlers -run '^$' -bench StripeWebhookIngest -benchtime 20000x
func BenchmarkStripeWebhookIngest(b *testing.B) {
	for _, g := range []int{1, 16, 64} {
		b.Run("g="+strconv.Itoa(g), func(b *testing.B) { benchStripeIngest(b, g) })
	}
}

func benchStripeIngest(b *testing.B, goroutines int) {
	const whsec = "whsec_bench_0123456789abcdef"
	now := time.Now()
	site, st := handlerstest.BenchSite(b, func(c *handlers.Config) {
		c.Callback = "http://127.0.0.1:9/payments/webhook" // queued, never sent here
		c.Providers = []provider.Provider{&stripe.Stripe{SecretKey: "sk_test_bench", WebhookSecret: whsec, APIURL: "http://127.0.0.1:9"}}
		c.Now = func() time.Time { return now }
		c.Wake = func() {}
	})

	prefix := strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	handlerstest.WebhookIngest(b, site, "/_checkout/webhook/stripe", goroutines, func(i int) ([]byte, http.Header) {
		id := prefix + strconv.Itoa(i)
		o, _, err := site.Receive(context.Background(), order.Intake{
			Key: order.Key{ID: id}, Amount: money.MustParse("75.00", "USD"), Provider: "stripe",
		}, "stripe")
		if err != nil {
			b.Error(err)
			return nil, nil
		}
		ref := o.Current().Ref
		ev := map[string]any{
			"id": "evt_" + id, "object": "event", "type": "checkout.session.completed",
			"api_version": "2023-10-16", "created": now.Unix(), "livemode": false,
			"data": map[string]any{"object": map[string]any{
				"id": "cs_test_" + strings.ReplaceAll(id, "-", "_"), "object": "checkout.session",
				"client_reference_id": ref, "amount_total": 7500, "currency": "usd",
				"status": "complete", "payment_status": "paid", "payment_intent": "pi_" + strings.ReplaceAll(id, "-", "_"),
				"metadata": map[string]string{"checkout_site": "bench", "checkout_ref": ref, "checkout_order": id, "checkout_attempt": "1"},
			}},
		}
		body, _ := json.Marshal(ev)
		return body, http.Header{"Stripe-Signature": {stripetest.Sign(body, now, whsec)}}
	})
	// Every event paid its order, and queued its callback.
	o, err := st.Get(context.Background(), order.Key{Site: "bench", ID: prefix + strconv.Itoa(b.N-1)})
	if err != nil || o.Status != order.Paid {
		b.Fatalf("last order: %v %v", o, err)
	}
}
