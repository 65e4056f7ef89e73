// Helpers shared by the conformance tests.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
)

// t0 is the suite's clock. Times derived from it are whole seconds, so
// that they survive a store that keeps microseconds (PostgreSQL).
var t0 = time.Date(2026, 11, 21, 7, 0, 0, 0, time.UTC)

// NewOrder makes a pending order of 75.00 USD, for the tests of a store.
// It calls t.Fatal, so it must not be called inside an UpdateFunc (bbolt
// runs those on its committer goroutine) or another goroutine: use
// makeOrder there.
func NewOrder(t testing.TB, site, id string, now time.Time, expires time.Duration) *order.Order {
	t.Helper()
	o, err := makeOrder(site, id, now, expires)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func makeOrder(site, id string, now time.Time, expires time.Duration) (*order.Order, error) {
	o, err := order.New(order.Intake{
		Key:     order.Key{Site: site, ID: id},
		Amount:  money.MustParse("75.00", "USD"),
		Email:   "a@example.com",
		Expires: expires,
	}, now, time.Hour)
	if err != nil {
		return nil, fmt.Errorf("order.New: %w", err)
	}
	return o, nil
}

// NewDelivery is a pending order.pending callback due at nextAt, for the
// tests of a store.
func NewDelivery(id string, seq uint64, nextAt time.Time) store.Delivery {
	return store.Delivery{
		ID: id, Seq: seq, Type: "order.pending", URL: "https://shop.example/cb",
		Body: []byte(`{"type":"order.pending"}`), State: store.DeliveryPending,
		CreatedAt: nextAt, RetryFrom: nextAt, NextAt: nextAt,
	}
}

// Put stores o with the given deliveries, replacing what is there.
func Put(t testing.TB, s store.Store, o *order.Order, ds ...store.Delivery) *order.Order {
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
