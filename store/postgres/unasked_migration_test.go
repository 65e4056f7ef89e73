package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/internal/pgtest"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/payments"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/store/postgres"
	"github.com/caddy-checkout/checkout/store/storetest"
)

type countingChecker struct {
	mu      sync.Mutex
	checked map[string]int
}

func (*countingChecker) Name() string { return "chk" }
func (*countingChecker) Start(context.Context, provider.Payment) (provider.Start, error) {
	return provider.Start{Redirect: "https://chk.example/"}, nil
}
func (c *countingChecker) Check(_ context.Context, p provider.Payment) (provider.Finding, error) {
	c.mu.Lock()
	c.checked[p.OrderID]++
	c.mu.Unlock()
	return provider.Finding{}, nil
}

// TestMigratedQueueDoesNotStarveTheReconciler: migration 2 queues every
// open order at once, also those with nothing waiting (never started:
// abandoned carts). The first passes take those, and each leaves the queue
// when it is written back, so a started order behind them is still asked;
// an order that an instance of the previous build ended after the
// migration (its UPDATE does not know the column) leaves it too.
func TestMigratedQueueDoesNotStarveTheReconciler(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	ctx := context.Background()
	s := open(t, dsn, postgres.Options{})
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, id := range []string{"B1", "B2", "B3"} { // never started
		storetest.Put(t, s, storetest.NewOrder(t, "shop", id, t0, 72*time.Hour))
	}
	z := storetest.NewOrder(t, "shop", "Z", t0, 72*time.Hour)
	z.Current().Provider, z.Current().StartedAt = "chk", t0
	storetest.Put(t, s, z)
	s.Close()
	exec(t, dsn, `ALTER TABLE checkout_orders DROP COLUMN unasked, DROP COLUMN personal_since`)
	exec(t, dsn, `UPDATE checkout_schema SET version = 1`)
	s = open(t, dsn, postgres.Options{})

	now := t0.Add(time.Hour)
	chk := &countingChecker{checked: map[string]int{}}
	ps, err := payments.New(payments.Config{Site: "shop", Expire: 72 * time.Hour, Providers: []provider.Provider{chk},
		Store: s, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	queued := func() []string {
		t.Helper()
		due, err := s.Unasked(ctx, "shop", now.Add(1000*time.Hour), 10)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, o := range due {
			ids = append(ids, o.ID)
		}
		return ids
	}
	for pass := range 3 {
		if _, err := ps.Reconcile(ctx, 10*time.Minute, 3); err != nil {
			t.Fatalf("pass %d: %v", pass, err)
		}
		now = now.Add(time.Hour)
	}
	if chk.checked["Z"] == 0 {
		t.Fatalf("after 3 hourly passes of 3, order Z (started at %s) was never asked", t0)
	}
	if got := queued(); len(got) != 1 || got[0] != "Z" {
		t.Fatalf("queued after the passes: %v, want only Z (nothing of the B orders waits)", got)
	}

	// A paid order left queued by the previous build's UPDATE.
	b1, err := s.Get(ctx, order.Key{Site: "shop", ID: "B1"})
	if err != nil {
		t.Fatal(err)
	}
	b1.Status = order.Paid
	storetest.Put(t, s, b1)
	exec(t, dsn, `UPDATE checkout_orders SET unasked = 0 WHERE id = 'B1'`)
	if _, err := ps.Reconcile(ctx, 10*time.Minute, 3); err != nil {
		t.Fatal(err)
	}
	if got := queued(); len(got) != 1 || got[0] != "Z" {
		t.Fatalf("queued after a pass over a paid order left at 0: %v, want only Z", got)
	}
}
