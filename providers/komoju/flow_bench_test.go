package komoju_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/handlers/handlerstest"
	"github.com/caddy-checkout/checkout/internal/komojutest"
	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/komoju"
)

// BenchmarkKomojuWebhookIngest measures verified KOMOJU webhooks applied
// durably, as BenchmarkStripeWebhookIngest does for Stripe: one op is one
// payment.captured event for its own pending order (its session recorded
// on the attempt), posted to {base}/webhook/komoju. Each is verified
// (X-Komoju-Signature HMAC-SHA256 of the raw body), decoded, matched to its
// attempt through the store, applied (pending → paid, amount checked) and
// written with its shop callback row in one fsynced bbolt transaction
// before the 200. Events are made and signed, and the orders stored,
// before the timer starts. Metric: events/s, with g requests in flight.
//
//	go test ./providers/komoju -run '^$' -bench KomojuWebhookIngest -benchtime 20000x
func BenchmarkKomojuWebhookIngest(b *testing.B) {
	for _, g := range []int{1, 16, 64} {
		b.Run("g="+strconv.Itoa(g), func(b *testing.B) { benchIngest(b, g) })
	}
}

func benchIngest(b *testing.B, goroutines int) {
	now := time.Now()
	site, st := handlerstest.BenchSite(b, func(c *handlers.Config) {
		c.Callback = "http://127.0.0.1:9/payments/webhook" // queued, never sent here
		c.Providers = []provider.Provider{&komoju.Komoju{SecretKey: komojutest.SecretKey, WebhookSecret: webhookSecret, APIURL: "http://127.0.0.1:9"}}
		c.Now = func() time.Time { return now }
		c.Wake = func() {}
	})
	prefix := strconv.FormatInt(time.Now().UnixNano(), 36) + "x"
	handlerstest.WebhookIngest(b, site, "/_checkout/webhook/komoju", goroutines, func(i int) ([]byte, http.Header) {
		id := prefix + strconv.Itoa(i)
		o, _, err := site.Receive(context.Background(), order.Intake{
			Key: order.Key{ID: id}, Amount: money.MustParse("1800", "JPY"), Provider: "komoju",
		}, "komoju")
		if err != nil {
			b.Error(err)
			return nil, nil
		}
		ref, session := o.Current().Ref, "s"+id
		if _, _, err := site.Apply(context.Background(), order.ByReturn, provider.Finding{Ref: ref, ProviderRef: session}); err != nil {
			b.Error(err)
			return nil, nil
		}
		body, _ := json.Marshal(map[string]any{
			"id": "ev" + id, "type": "payment.captured", "resource": "event",
			"data": map[string]any{
				"id": "p" + id, "resource": "payment", "status": "captured", "amount": 1800, "currency": "JPY",
				"external_order_num": ref, "session": session, "payment_details": map[string]any{"type": "credit_card"},
			},
		})
		return body, http.Header{"X-Komoju-Signature": {komojutest.Sign(webhookSecret, body)}}
	})
	// Every event paid its order, and queued its callback.
	o, err := st.Get(context.Background(), order.Key{Site: "bench", ID: prefix + strconv.Itoa(b.N-1)})
	if err != nil || o.Status != order.Paid {
		b.Fatalf("last order: %v %v", o, err)
	}
}
