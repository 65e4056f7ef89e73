package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
)

var t0 = time.Date(2026, 11, 21, 7, 0, 0, 0, time.UTC)

func newOrder(t testing.TB, site, id string, now time.Time, expires time.Duration) *order.Order {
	t.Helper()
	o, err := order.New(order.Intake{
		Key:     order.Key{Site: site, ID: id},
		Amount:  money.MustParse("75.00", "USD"),
		Email:   "a@example.com",
		Expires: expires,
	}, now, time.Hour)
	if err != nil {
		t.Fatalf("order.New: %v", err)
	}
	return o
}

func delivery(id string, seq uint64, nextAt time.Time) store.Delivery {
	return store.Delivery{
		ID: id, Seq: seq, Type: "order.pending", URL: "https://shop.example/cb",
		Body: []byte(`{"type":"order.pending"}`), State: store.DeliveryPending,
		CreatedAt: nextAt, RetryFrom: nextAt, NextAt: nextAt,
	}
}

// put stores o with the given deliveries, replacing what is there.
func put(t testing.TB, s store.Store, o *order.Order, ds ...store.Delivery) *order.Order {
	t.Helper()
	got, err := s.Update(context.Background(), o.Key, func(*order.Order) (*order.Order, []store.Delivery, error) {
		return o, ds, nil
	})
	if err != nil {
		t.Fatalf("Update %s: %v", o.Key, err)
	}
	return got
}

func jsonOf(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ids(ds []*store.Delivery) string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return strings.Join(out, ",")
}

func orderIDs(list []*order.Order) string {
	var out []string
	for _, o := range list {
		out = append(out, o.ID)
	}
	return strings.Join(out, ",")
}

func testReopenKeepsOrdersOutboxAndIndexes(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)

	a := newOrder(t, "shop", "A", t0, time.Hour)
	b := newOrder(t, "shop", "B", t0.Add(time.Minute), 2*time.Hour)
	put(t, s, a, delivery("a1", 1, t0), delivery("a2", 2, t0))
	put(t, s, b, delivery("b1", 1, t0.Add(time.Second)))
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

// damage closes s, overwrites one row of bucket with bytes that are not
// JSON, and reopens the store.

func testCancelledContext(t *testing.T, f Factory) {
	s := f.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o := newOrder(t, "shop", "A", t0, time.Hour)
	called := false
	_, err := s.Update(ctx, o.Key, func(*order.Order) (*order.Order, []store.Delivery, error) {
		called = true
		return o, nil, nil
	})
	if !errors.Is(err, context.Canceled) || called {
		t.Errorf("Update with a cancelled context = %v (fn called: %v)", err, called)
	}
	if _, err := s.Get(context.Background(), o.Key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("order written despite the cancelled context: %v", err)
	}
	if _, err := s.Get(ctx, o.Key); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled context = %v", err)
	}
}
