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
	"github.com/caddy-checkout/checkout/sign"
)

// BenchmarkStripeWebhookIngestPostgres is BenchmarkStripeWebhookIngest on
// the PostgreSQL store (pgtest's server, default synchronous_commit): each
// paid event is verified, applied and committed with its shop callback
// row before the 200. With instances=2, two sites, each with its own store
// and connection pool on one database, take the events in turn, as behind
// a load balancer. Besides events/s it reports per event the statements
// and transactions, the server's WAL flushes and the CPU time of this
// process and of the server (see BenchmarkHeaderIntakeRatePostgres).
// Skipped without PostgreSQL, unless CI=true.
//
//	go test ./providers/stripe -run '^$' -bench StripeWebhookIngestPostgres -benchtime 20000x
func BenchmarkStripeWebhookIngestPostgres(b *testing.B) {
	for _, n := range []int{1, 2} {
		for _, g := range []int{1, 16, 64} {
			b.Run("instances="+strconv.Itoa(n)+"/g="+strconv.Itoa(g), func(b *testing.B) {
				benchStripeIngestPostgres(b, n, g)
			})
		}
	}
}

func benchStripeIngestPostgres(b *testing.B, instances, goroutines int) {
	const whsec = "whsec_bench_0123456789abcdef"
	now := time.Now()
	pg := handlerstest.NewPostgresBench(b, instances)
	secret, err := sign.ParseSecret(sign.NewSecret())
	if err != nil {
		b.Fatal(err)
	}
	var sites []*handlers.Site
	for _, st := range pg.Stores {
		sites = append(sites, handlerstest.BenchSiteOn(b, st, func(c *handlers.Config) {
			c.Secret = secret
			c.Callback = "http://127.0.0.1:9/payments/webhook" // queued, never sent here
			c.Providers = []provider.Provider{&stripe.Stripe{SecretKey: "sk_test_bench", WebhookSecret: whsec, APIURL: "http://127.0.0.1:9"}}
			c.Now = func() time.Time { return now }
			c.Wake = func() {}
		}))
	}

	prefix := strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	handlerstest.WebhookIngestAcross(b, sites, "/_checkout/webhook/stripe", goroutines, func(i int) ([]byte, http.Header) {
		id := prefix + strconv.Itoa(i)
		// Made by the instance the event does not go to, when there are two.
		o, _, err := sites[(i+1)%len(sites)].Receive(context.Background(), order.Intake{
			Key: order.Key{ID: id}, Amount: money.MustParse("75.00", "USD"), Provider: "stripe",
		}, "stripe")
		if err != nil {
			b.Error(err)
			return nil, nil
		}
		body, _ := json.Marshal(paidSession(id, o.Current().Ref, now))
		return body, http.Header{"Stripe-Signature": {stripetest.Sign(body, now, whsec)}}
	}, func() { pg.Start(b) })
	pg.Stop(b, b.N, "event")
	// Every event paid its order, and queued its callback.
	o, err := pg.Stores[0].Get(context.Background(), order.Key{Site: "bench", ID: prefix + strconv.Itoa(b.N-1)})
	if err != nil || o.Status != order.Paid {
		b.Fatalf("last order: %v %v", o, err)
	}
}

// paidSession is the checkout.session.completed event, paid, of order id's
// attempt ref, as BenchmarkStripeWebhookIngest sends it.
func paidSession(id, ref string, now time.Time) map[string]any {
	return map[string]any{
		"id": "evt_" + id, "object": "event", "type": "checkout.session.completed",
		"api_version": "2023-10-16", "created": now.Unix(), "livemode": false,
		"data": map[string]any{"object": map[string]any{
			"id": "cs_test_" + strings.ReplaceAll(id, "-", "_"), "object": "checkout.session",
			"client_reference_id": ref, "amount_total": 7500, "currency": "usd",
			"status": "complete", "payment_status": "paid", "payment_intent": "pi_" + strings.ReplaceAll(id, "-", "_"),
			"metadata": map[string]string{"checkout_site": "bench", "checkout_ref": ref, "checkout_order": id, "checkout_attempt": "1"},
		}},
	}
}
