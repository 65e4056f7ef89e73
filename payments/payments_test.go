package payments_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/payments"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/store/bolt"
)

// slipProvider is a provider of held payments (a konbini slip) that
// announces a message of its own when paid, and records what it was asked.
type slipProvider struct{ started []string }

func (*slipProvider) Name() string { return "slip" }
func (p *slipProvider) Start(_ context.Context, pay provider.Payment) (provider.Start, error) {
	p.started = append(p.started, pay.Ref)
	return provider.Start{Redirect: pay.ReturnURL, ProviderRef: "slip-" + pay.Ref}, nil
}
func (*slipProvider) Announce(o *order.Order, ev order.Event) []provider.Message {
	if ev.To != order.Paid {
		return nil
	}
	return []provider.Message{{Queue: "slip.receipt", Type: "slip.paid", URL: "http://127.0.0.1:1/receipt", Body: []byte(o.ID)}}
}

// TestPaymentsWithoutHTTP: the payment logic alone, over a real store: an
// order is received and started, its attempt declined, tried again as a
// new attempt of the same generation, held until the provider's deadline
// (not expired at the order's own), and paid; the shop's callback and the
// provider's message are written with the change, each in its own line.
func TestPaymentsWithoutHTTP(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "checkout.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	prov := &slipProvider{}
	var changes int
	ps, err := payments.New(payments.Config{Site: "shop", BasePath: "/_checkout", PublicURL: "https://shop.example",
		Callback: "https://shop.example/hook", Expire: 30 * time.Minute, Providers: []provider.Provider{prov},
		Store: st, Now: clock, OnChange: func(*order.Order) { changes++ }})
	if err != nil {
		t.Fatal(err)
	}
	o, _, err := ps.Receive(ctx, order.Intake{Key: order.Key{ID: "A-1"}, Amount: money.MustParse("1200", "JPY")}, "")
	if err != nil {
		t.Fatal(err)
	}
	st1, o, err := ps.Start(ctx, payments.Origin{Locale: "ja"}, o, "slip")
	if err != nil || !strings.HasPrefix(st1.Redirect, "https://shop.example/_checkout/return/slip/") {
		t.Fatalf("Start = %+v, %v", st1, err)
	}
	first := o.Current().Ref
	if _, out, err := ps.Apply(ctx, order.ByWebhook, provider.Finding{ProviderRef: "slip-" + first, EventID: "e1", Status: order.Failed}); err != nil || !out.AttemptFailed {
		t.Fatalf("decline: %+v, %v", out, err)
	}
	o, _ = st.Get(ctx, order.Key{Site: "shop", ID: "A-1"})
	_, o, err = ps.Start(ctx, payments.Origin{}, o, "slip")
	if err != nil || o.Current().Ref == first || o.Current().Generation != 1 || len(prov.started) != 2 {
		t.Fatalf("retry: %v, attempts %+v, started %v", err, o.Attempts, prov.started)
	}
	second := o.Current().Ref
	hold := now.Add(72 * time.Hour)
	if _, out, err := ps.Apply(ctx, order.ByWebhook, provider.Finding{Ref: second, EventID: "e2", Status: order.OnHold, HoldUntil: hold}); err != nil || !out.Changed {
		t.Fatalf("hold: %+v, %v", out, err)
	}
	now = now.Add(time.Hour)
	if n, err := ps.Expire(ctx, 10); err != nil || n != 0 {
		t.Fatalf("Expire an hour into a 3-day hold = %d, %v", n, err)
	}
	o, out, err := ps.Apply(ctx, order.ByWebhook, provider.Finding{Ref: second, EventID: "e3", Status: order.Paid, Paid: money.MustParse("1200", "JPY"), Transaction: "t"})
	if err != nil || !out.Changed || o.Status != order.Paid || o.Late {
		t.Fatalf("paid: %+v %s late=%v, %v", out, o.Status, o.Late, err)
	}
	ds, _ := st.Deliveries(ctx, store.DeliveryFilter{Site: "shop", OrderID: "A-1"})
	lines := map[string][]string{}
	for _, d := range ds {
		lines[d.Queue] = append(lines[d.Queue], d.Type)
	}
	if strings.Join(lines[""], ",") != "order.paid,order.pending" || strings.Join(lines["slip.receipt"], ",") != "slip.paid" {
		t.Fatalf("outbox lines %v, want the shop's pending and paid, and the provider's receipt", lines)
	}
	if changes != 3 {
		t.Fatalf("told of %d changes, want 3 (decline, hold, paid)", changes)
	}
}
