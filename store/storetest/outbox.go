// Tests of the outbox: queue heads, retries, NextDue and listing.
package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
)

func due(t *testing.T, s store.Store, now time.Time, limit int) string {
	t.Helper()
	ds, err := s.Due(context.Background(), now, limit)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.State != store.DeliveryPending || d.NextAt.After(now) {
			t.Errorf("Due returned %s in state %s, next at %v", d.ID, d.State, d.NextAt)
		}
	}
	return ids(ds)
}

func save(t *testing.T, s store.Store, id string, change func(*store.Delivery)) {
	t.Helper()
	ctx := context.Background()
	d, err := s.Delivery(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	change(d)
	if err := s.SaveDelivery(ctx, d); err != nil {
		t.Fatalf("SaveDelivery %s: %v", id, err)
	}
}

// outbox stores order A with three deliveries (a1 due at t0+3s, a2 at t0+1s,
// a3 at t0+2s: later ones may have earlier times), B with one due at
// t0+4s, and C with one due only at t0+1h.
func outbox(t *testing.T, f Factory) store.Store {
	s := f.New(t)
	Put(t, s, NewOrder(t, "shop", "A", t0, time.Hour),
		NewDelivery("a1", 1, t0.Add(3*time.Second)), NewDelivery("a2", 2, t0.Add(time.Second)), NewDelivery("a3", 3, t0.Add(2*time.Second)))
	Put(t, s, NewOrder(t, "shop", "B", t0, time.Hour), NewDelivery("b1", 1, t0.Add(4*time.Second)))
	Put(t, s, NewOrder(t, "other", "C", t0, time.Hour), NewDelivery("c1", 1, t0.Add(time.Hour)))
	return s
}

func testDueReturnsOnlyDueQueueHeads(t *testing.T, f Factory) {
	s := outbox(t, f)
	for _, tc := range []struct {
		name  string
		now   time.Time
		limit int
		want  string
	}{
		{"before-anything", t0, 0, ""},
		{"only-non-heads-due", t0.Add(2 * time.Second), 0, ""},
		{"head-due-at-exactly-now", t0.Add(3 * time.Second), 0, "a1"},
		{"two-heads", t0.Add(5 * time.Second), 0, "a1,b1"},
		{"limit", t0.Add(5 * time.Second), 1, "a1"},
		{"all-heads", t0.Add(2 * time.Hour), 0, "a1,b1,c1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := due(t, s, tc.now, tc.limit); got != tc.want {
				t.Errorf("Due(%v) = %s, want %s", tc.now.Sub(t0), got, tc.want)
			}
		})
	}
}

func testDeliveringTheHeadMakesTheNextOneHead(t *testing.T, f Factory) {
	s := outbox(t, f)
	later := t0.Add(time.Minute)

	// A failed try moves the head's NextAt; it stays head, the others wait.
	save(t, s, "a1", func(d *store.Delivery) { d.Tries++; d.NextAt = t0.Add(10 * time.Minute); d.LastStatus = 500 })
	if got := due(t, s, later, 0); got != "b1" {
		t.Errorf("Due after a1 failed = %s, want b1", got)
	}

	for _, tc := range []struct {
		id    string
		state store.DeliveryState
		want  string
	}{
		{"a1", store.DeliveryDelivered, "a2,b1"},
		{"a2", store.DeliveryGone, "a3,b1"},
		{"a3", store.DeliveryDead, "b1"},
	} {
		save(t, s, tc.id, func(d *store.Delivery) { d.State = tc.state; d.LastAt = later })
		if got := due(t, s, later, 0); got != tc.want {
			t.Errorf("Due after %s became %s = %s, want %s", tc.id, tc.state, got, tc.want)
		}
	}
	got, err := s.Delivery(context.Background(), "a1")
	if err != nil || got.State != store.DeliveryDelivered || got.Tries != 1 || got.LastStatus != 500 {
		t.Errorf("a1 as saved = %+v, %v", got, err)
	}
}

func testManualRetryRequeues(t *testing.T, f Factory) {
	s := outbox(t, f)
	later := t0.Add(time.Minute)
	save(t, s, "a1", func(d *store.Delivery) { d.State = store.DeliveryDead })
	if got := due(t, s, later, 0); got != "a2,b1" {
		t.Fatalf("Due after a1 died = %s, want a2,b1", got)
	}
	// The operator retries a1: it is head of A again, ahead of a2.
	save(t, s, "a1", func(d *store.Delivery) {
		d.State, d.Tries, d.RetryFrom, d.NextAt = store.DeliveryPending, 0, later, later
	})
	if got := due(t, s, later, 0); got != "b1,a1" {
		t.Errorf("Due after retrying a1 = %s, want b1,a1", got)
	}
	if ds, _ := s.Deliveries(context.Background(), store.DeliveryFilter{State: store.DeliveryDead}); len(ds) != 0 {
		t.Errorf("dead deliveries after the retry: %s", ids(ds))
	}
}

func testNextDueIsTheEarliestPending(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)
	if _, ok, err := s.NextDue(ctx); ok || err != nil {
		t.Errorf("NextDue of an empty outbox = %v, %v; want not ok", ok, err)
	}
	s = outbox(t, f)
	check := func(want time.Time) {
		t.Helper()
		next, ok, err := s.NextDue(ctx)
		if err != nil || !ok || !next.Equal(want) {
			t.Errorf("NextDue = %v, %v, %v; want %v", next, ok, err, want)
		}
	}
	// a2 is not a head, but it is the earliest pending: NextDue documents
	// that it answers the earliest overall.
	check(t0.Add(time.Second))
	save(t, s, "a2", func(d *store.Delivery) { d.State = store.DeliveryDelivered })
	check(t0.Add(2 * time.Second))
	for _, id := range []string{"a1", "a3", "b1", "c1"} {
		save(t, s, id, func(d *store.Delivery) { d.State = store.DeliveryDelivered })
	}
	if _, ok, err := s.NextDue(ctx); ok || err != nil {
		t.Errorf("NextDue with nothing pending = %v, %v; want not ok", ok, err)
	}
}

func testSaveDeliveryRefusals(t *testing.T, f Factory) {
	ctx := context.Background()
	s := outbox(t, f)
	err := s.SaveDelivery(ctx, &store.Delivery{ID: "nope", Site: "shop", OrderID: "A", State: store.DeliveryDelivered})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SaveDelivery of an unknown id = %v, want ErrNotFound", err)
	}
	if _, err := s.Delivery(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Delivery of an unknown id = %v, want ErrNotFound", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*store.Delivery)
	}{
		{"fail/seq", func(d *store.Delivery) { d.Seq = 9 }},
		{"fail/order", func(d *store.Delivery) { d.OrderID = "B" }},
		{"fail/state", func(d *store.Delivery) { d.State = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := s.Delivery(ctx, "a2")
			tc.change(d)
			if err := s.SaveDelivery(ctx, d); err == nil {
				t.Error("SaveDelivery succeeded")
			}
		})
	}
	if got := due(t, s, t0.Add(time.Hour), 0); got != "a1,b1,c1" {
		t.Errorf("Due after refused saves = %s", got)
	}
}

func testDeliveriesGetSeqAndDefaults(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)
	o := NewOrder(t, "shop", "A", t0, time.Hour)
	d1, d2 := NewDelivery("d1", 0, t0), NewDelivery("d2", 0, t0.Add(time.Second))
	d1.State = ""
	Put(t, s, o, d1, d2)
	Put(t, s, o, NewDelivery("d3", 7, t0.Add(2*time.Second)))
	Put(t, s, o, NewDelivery("d4", 0, t0.Add(3*time.Second)))
	for id, want := range map[string]uint64{"d1": 1, "d2": 2, "d3": 7, "d4": 8} {
		d, err := s.Delivery(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if d.Seq != want || d.Site != "shop" || d.OrderID != "A" || d.State != store.DeliveryPending {
			t.Errorf("%s stored as seq %d, %s/%s, %s; want seq %d, shop/A, pending", id, d.Seq, d.Site, d.OrderID, d.State, want)
		}
		if string(d.Body) != `{"type":"order.pending"}` {
			t.Errorf("%s body = %q", id, d.Body)
		}
	}
	// Appending a delivery whose id exists is refused: the id is the
	// webhook-id the shop deduplicates on.
	_, err := s.Update(ctx, o.Key, func(cur *order.Order) (*order.Order, []store.Delivery, error) {
		return cur, []store.Delivery{NewDelivery("d2", 0, t0)}, nil
	})
	if err == nil {
		t.Error("a second delivery with id d2 was accepted")
	}
}

func testDeliveriesFiltersNewestFirst(t *testing.T, f Factory) {
	ctx := context.Background()
	s := outbox(t, f)
	// Created: a1 t0+3s, a2 t0+1s, a3 t0+2s, b1 t0+4s, c1 t0+1h.
	save(t, s, "a2", func(d *store.Delivery) { d.State = store.DeliveryDelivered })
	save(t, s, "b1", func(d *store.Delivery) { d.State = store.DeliveryDead })
	for _, tc := range []struct {
		name string
		f    store.DeliveryFilter
		want string
	}{
		{"all", store.DeliveryFilter{}, "c1,b1,a1,a3,a2"},
		{"state", store.DeliveryFilter{State: store.DeliveryPending}, "c1,a1,a3"},
		{"dead", store.DeliveryFilter{State: store.DeliveryDead}, "b1"},
		{"site", store.DeliveryFilter{Site: "shop"}, "b1,a1,a3,a2"},
		{"order", store.DeliveryFilter{Site: "shop", OrderID: "A"}, "a1,a3,a2"},
		{"order-without-site", store.DeliveryFilter{OrderID: "A"}, "a1,a3,a2"},
		{"order-and-state", store.DeliveryFilter{Site: "shop", OrderID: "A", State: store.DeliveryDelivered}, "a2"},
		{"order-limit", store.DeliveryFilter{Site: "shop", OrderID: "A", Limit: 2}, "a1,a3"},
		{"last-order", store.DeliveryFilter{Site: "shop", OrderID: "B"}, "b1"},
		{"no-such-order", store.DeliveryFilter{Site: "shop", OrderID: "Z"}, ""},
		{"limit", store.DeliveryFilter{Limit: 2}, "c1,b1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds, err := s.Deliveries(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(ds); got != tc.want {
				t.Errorf("Deliveries(%+v) = %s, want %s", tc.f, got, tc.want)
			}
		})
	}
}

// testLinesOfOneOrderDoNotWaitForEachOther: a provider's own message (a
// 0xBTCpay postback) that keeps failing holds up only its own line, never
// the shop's callbacks of the same order.
func testLinesOfOneOrderDoNotWaitForEachOther(t *testing.T, f Factory) {
	s := f.New(t)
	o := NewOrder(t, "shop", "L", t0, time.Hour)
	postback := NewDelivery("p1", 0, t0)
	postback.Queue = "erc20.postback"
	paid := NewDelivery("c1", 0, t0)
	later := NewDelivery("c2", 0, t0)
	Put(t, s, o, postback, paid, later)
	if got := due(t, s, t0.Add(time.Second), 0); got != "c1,p1" {
		t.Fatalf("Due = %s, want the heads of both lines: c1,p1", got)
	}
	save(t, s, "p1", func(d *store.Delivery) { d.Tries++; d.NextAt = t0.Add(time.Hour) })
	save(t, s, "c1", func(d *store.Delivery) { d.State = store.DeliveryDelivered })
	if got := due(t, s, t0.Add(time.Second), 0); got != "c2" {
		t.Fatalf("Due while the postback fails = %s, want the shop's next callback c2", got)
	}
	got, err := s.Delivery(context.Background(), "p1")
	if err != nil || got.Queue != "erc20.postback" || got.Seq != 1 {
		t.Fatalf("postback as stored: %+v, %v", got, err)
	}
	// A line's name cannot be changed by a save (it would jump the queue).
	got.Queue = ""
	if err := s.SaveDelivery(context.Background(), got); err == nil {
		t.Fatal("SaveDelivery moved a delivery to another line")
	}
}
