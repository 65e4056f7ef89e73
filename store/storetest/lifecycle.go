// Tests of what a store keeps across a restart, and of calls made with a
// context that is already cancelled.
package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
)

func testReopenKeepsOrdersOutboxAndIndexes(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)

	a := NewOrder(t, "shop", "A", t0, time.Hour)
	b := NewOrder(t, "shop", "B", t0.Add(time.Minute), 2*time.Hour)
	Put(t, s, a, NewDelivery("a1", 1, t0), NewDelivery("a2", 2, t0))
	Put(t, s, b, NewDelivery("b1", 1, t0.Add(time.Second)))
	if _, err := s.BeginIdempotent(ctx, "idem-1", store.Idempotent{Fingerprint: "f", CreatedAt: t0}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishIdempotent(ctx, "idem-1", store.Idempotent{Status: 201, Body: []byte("ok")}); err != nil {
		t.Fatal(err)
	}
	s = f.Reopen(t, s)
	got, err := s.Get(ctx, a.Key)
	if err != nil {
		t.Fatal(err)
	}
	if jsonOf(t, got) != jsonOf(t, a) {
		t.Errorf("order after reopen\n got %s\nwant %s", jsonOf(t, got), jsonOf(t, a))
	}
	if o, err := s.ByRef(ctx, b.Current().Ref); err != nil || o.ID != "B" {
		t.Errorf("ByRef after reopen = %v, %v", o, err)
	}
	if got, err := s.Open(ctx, "shop", t0.Add(3*time.Hour), 10); err != nil || orderIDs(got) != "A,B" {
		t.Errorf("Open after reopen = %s, %v", orderIDs(got), err)
	}
	if got, err := s.List(ctx, store.ListFilter{}); err != nil || orderIDs(got) != "B,A" {
		t.Errorf("List after reopen = %s, %v", orderIDs(got), err)
	}
	if ds, err := s.Due(ctx, t0.Add(time.Hour), 10); err != nil || ids(ds) != "a1,b1" {
		t.Errorf("Due after reopen = %s, %v", ids(ds), err)
	}
	if next, ok, err := s.NextDue(ctx); err != nil || !ok || !next.Equal(t0) {
		t.Errorf("NextDue after reopen = %v, %v, %v", next, ok, err)
	}
	if ds, err := s.Deliveries(ctx, store.DeliveryFilter{}); err != nil || len(ds) != 3 {
		t.Errorf("Deliveries after reopen = %s, %v", ids(ds), err)
	}
	rec, err := s.BeginIdempotent(ctx, "idem-1", store.Idempotent{Fingerprint: "f", CreatedAt: t0}, time.Minute)
	if err != nil || rec == nil || !rec.Done || rec.Status != 201 || string(rec.Body) != "ok" {
		t.Errorf("idempotency record after reopen = %+v, %v", rec, err)
	}
}

// testCancelledContext: every method called with a cancelled context (a
// customer who went away, Caddy shutting down) returns an error that is
// context.Canceled, and writes nothing, not even a claim on a delivery.
func testCancelledContext(t *testing.T, f Factory) {
	bg := context.Background()
	s := f.New(t)
	a := NewOrder(t, "shop", "A", t0, time.Hour)
	a.Current().ProviderRef = "cs_a"
	Put(t, s, a, NewDelivery("a1", 1, t0))
	if _, err := s.BeginIdempotent(bg, "idem-running", store.Idempotent{Fingerprint: "f", CreatedAt: t0}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.PutData(bg, "data/kept", []byte("v")); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(bg)
	cancel()
	b := NewOrder(t, "shop", "B", t0, time.Hour)
	called := false
	write := func(o *order.Order) store.UpdateFunc {
		return func(*order.Order) (*order.Order, []store.Delivery, error) {
			called = true
			return o, []store.Delivery{NewDelivery("x1", 0, t0)}, nil
		}
	}
	paid := func() *order.Order {
		c := *a
		c.Status = order.Paid
		return &c
	}()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Update/new", func() error { _, err := s.Update(ctx, b.Key, write(b)); return err }},
		{"Update/existing", func() error { _, err := s.Update(ctx, a.Key, write(paid)); return err }},
		{"Get", func() error { _, err := s.Get(ctx, a.Key); return err }},
		{"ByRef", func() error { _, err := s.ByRef(ctx, a.Current().Ref); return err }},
		{"ByProviderRef", func() error { _, err := s.ByProviderRef(ctx, "cs_a"); return err }},
		{"List", func() error { _, err := s.List(ctx, store.ListFilter{}); return err }},
		{"Open", func() error { _, err := s.Open(ctx, "shop", t0.Add(2*time.Hour), 0); return err }},
		{"Due", func() error { _, err := s.Due(ctx, t0.Add(time.Hour), 0); return err }},
		{"NextDue", func() error { _, _, err := s.NextDue(ctx); return err }},
		{"SaveDelivery", func() error {
			d := NewDelivery("a1", 1, t0)
			d.Site, d.OrderID, d.State, d.Tries = "shop", "A", store.DeliveryDelivered, 1
			return s.SaveDelivery(ctx, &d)
		}},
		{"Delivery", func() error { _, err := s.Delivery(ctx, "a1"); return err }},
		{"Deliveries", func() error { _, err := s.Deliveries(ctx, store.DeliveryFilter{}); return err }},
		{"BeginIdempotent", func() error {
			_, err := s.BeginIdempotent(ctx, "idem-new", store.Idempotent{Fingerprint: "f", CreatedAt: t0}, time.Minute)
			return err
		}},
		{"FinishIdempotent", func() error {
			return s.FinishIdempotent(ctx, "idem-running", store.Idempotent{Status: 201, Body: []byte("ok")})
		}},
		{"ForgetIdempotent", func() error { return s.ForgetIdempotent(ctx, "idem-running") }},
		{"SpendToken", func() error {
			fresh, err := s.SpendToken(ctx, "shop\x00tok", t0.Add(time.Hour), t0)
			if fresh {
				t.Error("SpendToken with a cancelled context reported a first use")
			}
			return err
		}},
		{"GetData", func() error { _, err := s.GetData(ctx, "data/kept"); return err }},
		{"PutData", func() error { return s.PutData(ctx, "data/kept", []byte("changed")) }},
		{"PutDataIfAbsent", func() error { _, err := s.PutDataIfAbsent(ctx, "data/new", []byte("v")); return err }},
		{"ScanData", func() error {
			return s.ScanData(ctx, "data/", func(string, []byte) error {
				t.Error("ScanData with a cancelled context called fn")
				return nil
			})
		}},
		{"NextSeq", func() error { _, err := s.NextSeq(ctx, "seq"); return err }},
	} {
		if err := tc.call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v, want context.Canceled", tc.name, err)
		}
	}
	if called {
		t.Error("Update with a cancelled context called fn")
	}

	// Nothing was written.
	if _, err := s.Get(bg, b.Key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("order written despite the cancelled context: %v", err)
	}
	if got, err := s.Get(bg, a.Key); err != nil || jsonOf(t, got) != jsonOf(t, a) {
		t.Errorf("order changed despite the cancelled context: %v\n %s\nwant\n %s", err, jsonOf(t, got), jsonOf(t, a))
	}
	if ds, err := s.Deliveries(bg, store.DeliveryFilter{}); err != nil || ids(ds) != "a1" || ds[0].State != store.DeliveryPending || ds[0].Tries != 0 {
		t.Errorf("outbox after calls with a cancelled context = %s, %v; want a1 untouched", ids(ds), err)
	}
	// Due claimed nothing: a1 is still due for this process (and any other).
	if ds, err := s.Due(bg, t0.Add(time.Hour), 0); err != nil || ids(ds) != "a1" {
		t.Errorf("Due after a cancelled Due = %s, %v; want a1", ids(ds), err)
	}
	if rec, err := s.BeginIdempotent(bg, "idem-running", store.Idempotent{Fingerprint: "g", CreatedAt: t0}, time.Minute); err != nil || rec == nil || rec.Done || rec.Fingerprint != "f" {
		t.Errorf("idempotency record after a cancelled Finish and Forget = %+v, %v; want the running call's", rec, err)
	}
	if rec, err := s.BeginIdempotent(bg, "idem-new", store.Idempotent{Fingerprint: "f", CreatedAt: t0}, time.Minute); err != nil || rec != nil {
		t.Errorf("idempotency key begun by a cancelled call: %+v, %v", rec, err)
	}
	if fresh, err := s.SpendToken(bg, "shop\x00tok", t0.Add(time.Hour), t0); err != nil || !fresh {
		t.Errorf("token spent by a cancelled call: first use = %v, %v", fresh, err)
	}
	if v, err := s.GetData(bg, "data/kept"); err != nil || string(v) != "v" {
		t.Errorf("data after a cancelled PutData = %q, %v; want v", v, err)
	}
	if _, err := s.GetData(bg, "data/new"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("data written by a cancelled PutDataIfAbsent: %v", err)
	}
	if n, err := s.NextSeq(bg, "seq"); err != nil || n != 0 {
		t.Errorf("NextSeq after a cancelled one = %d, %v; want 0 (no number used up)", n, err)
	}
}
