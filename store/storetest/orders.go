// Tests of Update and the order reads (Get, ByRef, List, Open).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
)

func testUpdateCreatesAndReturnsStoredOrder(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)
	o := NewOrder(t, "shop", "1234567", t0, time.Hour)

	var seen []*order.Order
	got, err := s.Update(ctx, o.Key, func(cur *order.Order) (*order.Order, []store.Delivery, error) {
		seen = append(seen, cur)
		return o, nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen[len(seen)-1] != nil {
		t.Errorf("fn got %v for a new key, want nil", seen[len(seen)-1])
	}
	if jsonOf(t, got) != jsonOf(t, o) {
		t.Errorf("Update returned\n %s\nwant\n %s", jsonOf(t, got), jsonOf(t, o))
	}
	stored, err := s.Get(ctx, o.Key)
	if err != nil {
		t.Fatal(err)
	}
	if jsonOf(t, stored) != jsonOf(t, o) {
		t.Errorf("Get returned\n %s\nwant\n %s", jsonOf(t, stored), jsonOf(t, o))
	}

	// The next Update sees the stored order.
	_, err = s.Update(ctx, o.Key, func(cur *order.Order) (*order.Order, []store.Delivery, error) {
		if cur == nil || cur.ID != "1234567" || !cur.Amount.Equal(money.MustParse("75.00", "USD")) {
			t.Errorf("fn got %+v, want the stored order", cur)
		}
		return nil, nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testGetUnknownIsNotFound(t *testing.T, f Factory) {
	s := f.New(t)
	_, err := s.Get(context.Background(), order.Key{Site: "shop", ID: "nope"})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of an unknown order = %v, want ErrNotFound", err)
	}
	_, err = s.Get(context.Background(), order.Key{Site: "shop\x00x", ID: "nope"})
	if err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of a key with NUL = %v, want an invalid-key error", err)
	}
}

func testUpdateErrorWritesNothing(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)
	o := NewOrder(t, "shop", "A", t0, time.Hour)
	Put(t, s, o, NewDelivery("a1", 1, t0))
	before := jsonOf(t, o)

	errBoom := errors.New("boom")
	for _, tc := range []struct {
		name string
		key  order.Key
	}{
		{"existing", o.Key},
		{"new", order.Key{Site: "shop", ID: "B"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Update(ctx, tc.key, func(cur *order.Order) (*order.Order, []store.Delivery, error) {
				// Change everything in place, as a real fn would before it
				// finds a reason to refuse.
				if cur == nil {
					var err error
					if cur, err = makeOrder(tc.key.Site, tc.key.ID, t0, time.Hour); err != nil {
						return nil, nil, err
					}
				}
				cur.Status = order.Paid
				cur.ExpiresAt = t0.Add(time.Minute)
				cur.UpdatedAt = t0.Add(time.Hour)
				cur.Attempts = append(cur.Attempts, order.Attempt{Generation: 9, Ref: "new-ref"})
				return cur, []store.Delivery{NewDelivery("x1", 0, t0)}, errBoom
			})
			if err != errBoom {
				t.Errorf("Update returned %v, want the fn's error unchanged", err)
			}
			if got != nil {
				t.Errorf("Update returned order %v with an error", got)
			}
		})
	}

	stored, err := s.Get(ctx, o.Key)
	if err != nil || jsonOf(t, stored) != before {
		t.Errorf("order changed by a failed Update: %v\n %s\nwant\n %s", err, jsonOf(t, stored), before)
	}
	if _, err := s.Get(ctx, order.Key{Site: "shop", ID: "B"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("new order written by a failed Update: %v", err)
	}
	if _, err := s.ByRef(ctx, "new-ref"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ref indexed by a failed Update: %v", err)
	}
	if ds, _ := s.Deliveries(ctx, store.DeliveryFilter{}); ids(ds) != "a1" {
		t.Errorf("outbox after failed Updates = %s, want a1", ids(ds))
	}
	if ds, _ := s.Due(ctx, t0.Add(time.Hour), 0); ids(ds) != "a1" {
		t.Errorf("due after failed Updates = %s, want a1", ids(ds))
	}
	if got, _ := s.Open(ctx, "shop", t0.Add(30*time.Minute), 0); len(got) != 0 {
		t.Errorf("open index changed by a failed Update: %s", orderIDs(got))
	}
	if got, _ := s.List(ctx, store.ListFilter{Status: order.Paid}); len(got) != 0 {
		t.Errorf("updated index changed by a failed Update: %s", orderIDs(got))
	}
}

// A failing Update must not take down others made at the same time (of
// bbolt's group commit, of PostgreSQL's connection pool): an UpdateFunc's
// error writes nothing and is returned unchanged, to its caller only.
func testUpdateErrorDoesNotFailOthersInTheBatch(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)
	errBoom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		o := NewOrder(t, "shop", "o"+strconv.Itoa(i), t0, time.Hour)
		wg.Go(func() {
			_, errs[i] = s.Update(ctx, o.Key, func(*order.Order) (*order.Order, []store.Delivery, error) {
				if i%2 == 1 {
					return nil, nil, errBoom
				}
				return o, []store.Delivery{NewDelivery("d"+strconv.Itoa(i), 0, t0)}, nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if want := map[bool]error{false: nil, true: errBoom}[i%2 == 1]; err != want {
			t.Errorf("Update %d = %v, want %v", i, err, want)
		}
	}
	if got, _ := s.List(ctx, store.ListFilter{}); len(got) != 10 {
		t.Errorf("%d orders stored, want 10", len(got))
	}
	if ds, _ := s.Deliveries(ctx, store.DeliveryFilter{}); len(ds) != 10 {
		t.Errorf("%d deliveries stored, want 10", len(ds))
	}
}

func testUpdateNilOrderWritesNothing(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)
	o := NewOrder(t, "shop", "A", t0, time.Hour)
	Put(t, s, o)

	got, err := s.Update(ctx, o.Key, func(cur *order.Order) (*order.Order, []store.Delivery, error) {
		cur.Status = order.Cancelled // changed in place, but not returned
		return nil, nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Status != order.Pending {
		t.Errorf("Update returned %+v, want the unchanged stored order", got)
	}
	if stored, _ := s.Get(ctx, o.Key); stored.Status != order.Pending {
		t.Errorf("stored status %s after a nil write", stored.Status)
	}

	got, err = s.Update(ctx, order.Key{Site: "shop", ID: "none"}, func(*order.Order) (*order.Order, []store.Delivery, error) {
		return nil, nil, nil
	})
	if err != nil || got != nil {
		t.Errorf("nil write of a missing order = %v, %v; want nil, nil", got, err)
	}
}

func testUpdateRefusesInconsistentResults(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)
	o := NewOrder(t, "shop", "A", t0, time.Hour)
	other := NewOrder(t, "shop", "B", t0, time.Hour)
	c := NewOrder(t, "shop", "C", t0, time.Hour)
	Put(t, s, other)

	for _, tc := range []struct {
		name string
		fn   store.UpdateFunc
	}{
		{"fail/deliveries-without-order", func(*order.Order) (*order.Order, []store.Delivery, error) {
			return nil, []store.Delivery{NewDelivery("x", 1, t0)}, nil
		}},
		{"fail/other-key", func(*order.Order) (*order.Order, []store.Delivery, error) {
			return c, nil, nil
		}},
		{"fail/delivery-of-other-order", func(*order.Order) (*order.Order, []store.Delivery, error) {
			d := NewDelivery("x", 1, t0)
			d.OrderID = "B"
			return o, []store.Delivery{d}, nil
		}},
		{"fail/delivery-without-id", func(*order.Order) (*order.Order, []store.Delivery, error) {
			return o, []store.Delivery{NewDelivery("", 1, t0)}, nil
		}},
		{"fail/delivery-bad-state", func(*order.Order) (*order.Order, []store.Delivery, error) {
			d := NewDelivery("x", 1, t0)
			d.State = "sent"
			return o, []store.Delivery{d}, nil
		}},
		{"fail/duplicate-delivery-id", func(*order.Order) (*order.Order, []store.Delivery, error) {
			return o, []store.Delivery{NewDelivery("x", 1, t0), NewDelivery("x", 2, t0)}, nil
		}},
		{"fail/duplicate-pending-seq", func(*order.Order) (*order.Order, []store.Delivery, error) {
			return o, []store.Delivery{NewDelivery("x", 1, t0), NewDelivery("y", 1, t0)}, nil
		}},
		{"fail/ref-of-another-order", func(*order.Order) (*order.Order, []store.Delivery, error) {
			c := *o
			c.Attempts = append([]order.Attempt(nil), o.Attempts...)
			c.Attempts[0].Ref = other.Current().Ref
			return &c, nil, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Update(ctx, o.Key, tc.fn); err == nil {
				t.Error("Update succeeded")
			}
			if _, err := s.Get(ctx, o.Key); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("order written: %v", err)
			}
			if ds, _ := s.Deliveries(ctx, store.DeliveryFilter{}); len(ds) != 0 {
				t.Errorf("deliveries written: %s", ids(ds))
			}
		})
	}
	if got, err := s.ByRef(ctx, other.Current().Ref); err != nil || got.ID != "B" {
		t.Errorf("ByRef of B after refused writes = %v, %v", got, err)
	}
}

func testByRefFindsEveryAttempt(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)
	o := NewOrder(t, "shop", "A", t0, time.Hour)
	Put(t, s, o)
	first := o.Current().Ref

	_, err := s.Update(ctx, o.Key, func(cur *order.Order) (*order.Order, []store.Delivery, error) {
		in := order.Intake{Key: cur.Key, Amount: money.MustParse("80.00", "USD")}
		if res, err := cur.Receive(in, t0.Add(time.Minute), time.Hour); err != nil || res != order.NewAttempt {
			return nil, nil, fmt.Errorf("order.Receive = %v, %v", res, err)
		}
		return cur, nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := s.Get(ctx, o.Key)
	second := stored.Current().Ref
	if second == first {
		t.Fatal("no new attempt")
	}
	for _, ref := range []string{first, second} {
		got, err := s.ByRef(ctx, ref)
		if err != nil || got.Key != o.Key || len(got.Attempts) != 2 {
			t.Errorf("ByRef(%s) = %+v, %v", ref, got, err)
		}
	}
	for _, ref := range []string{"", "unknown"} {
		if _, err := s.ByRef(ctx, ref); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ByRef(%q) = %v, want ErrNotFound", ref, err)
		}
	}
}

func testOpenFollowsStatusAndExpiry(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)
	// Expiries: A t0+1h, B t0+2h, C t0+3h, D t0+30m (on hold).
	a := NewOrder(t, "shop", "A", t0, time.Hour)
	b := NewOrder(t, "shop", "B", t0, 2*time.Hour)
	c := NewOrder(t, "other", "C", t0, 3*time.Hour)
	d := NewOrder(t, "shop", "D", t0, 30*time.Minute)
	d.Status = order.OnHold
	for _, o := range []*order.Order{a, b, c, d} {
		Put(t, s, o)
	}
	openOf := func(site string, before time.Time, limit int) string {
		t.Helper()
		got, err := s.Open(ctx, site, before, limit)
		if err != nil {
			t.Fatal(err)
		}
		return orderIDs(got)
	}
	open := func(before time.Time, limit int) string {
		t.Helper()
		return openOf("shop", before, limit)
	}

	if got := open(t0.Add(4*time.Hour), 0); got != "D,A,B" {
		t.Errorf("Open(all) = %s, want D,A,B (soonest expiry first, this site only)", got)
	}
	if got := openOf("other", t0.Add(4*time.Hour), 0); got != "C" {
		t.Errorf("Open(other site) = %s, want C", got)
	}
	if got := openOf("sho", t0.Add(4*time.Hour), 0); got != "" {
		t.Errorf("Open(a site whose name is a prefix of another's) = %s, want none", got)
	}
	if got := open(t0.Add(2*time.Hour), 0); got != "D,A" {
		t.Errorf("Open(before B's expiry) = %s, want D,A (before is exclusive)", got)
	}
	if got := open(t0.Add(4*time.Hour), 2); got != "D,A" {
		t.Errorf("Open(limit 2) = %s, want D,A", got)
	}
	if got := open(t0, 0); got != "" {
		t.Errorf("Open(t0) = %s, want none", got)
	}

	// A is paid: it leaves the index.
	_, err := s.Update(ctx, a.Key, func(cur *order.Order) (*order.Order, []store.Delivery, error) {
		out := cur.Apply(order.Transition{To: order.Paid, Ref: cur.Current().Ref,
			Cause: order.Cause{Kind: order.ByWebhook, Ref: "evt_1"}, Paid: cur.Amount, Provider: "stripe"}, t0.Add(time.Minute))
		if !out.Changed {
			return nil, nil, fmt.Errorf("order.Apply changed nothing: %+v", out)
		}
		return cur, nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// B gets a new attempt, which moves its expiry to t0+10m+1h.
	_, err = s.Update(ctx, b.Key, func(cur *order.Order) (*order.Order, []store.Delivery, error) {
		_, err := cur.Receive(order.Intake{Key: cur.Key, Amount: money.MustParse("5.00", "USD")}, t0.Add(10*time.Minute), time.Hour)
		return cur, nil, err
	})
	if err != nil {
		t.Fatal(err)
	}
	// D expires.
	_, err = s.Update(ctx, d.Key, func(cur *order.Order) (*order.Order, []store.Delivery, error) {
		cur.Apply(order.Transition{To: order.Expired, Ref: cur.Current().Ref, Cause: order.Cause{Kind: order.ByExpiry}}, t0.Add(time.Hour))
		return cur, nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}

	if got := open(t0.Add(4*time.Hour), 0); got != "B" {
		t.Errorf("Open(all) after changes = %s, want B", got)
	}
	if got := open(t0.Add(70*time.Minute), 0); got != "" {
		t.Errorf("Open(before B's new expiry) = %s, want none", got)
	}
	if got := open(t0.Add(71*time.Minute), 0); got != "B" {
		t.Errorf("Open(just after B's new expiry) = %s, want B", got)
	}
}

func testListOrderAndFilters(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)
	for i, k := range []order.Key{{Site: "shop", ID: "A"}, {Site: "shop", ID: "B"}, {Site: "other", ID: "C"}, {Site: "shopx", ID: "D"}} {
		Put(t, s, NewOrder(t, k.Site, k.ID, t0.Add(time.Duration(i)*time.Minute), time.Hour))
	}
	list := func(f store.ListFilter) string {
		t.Helper()
		got, err := s.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return orderIDs(got)
	}
	if got := list(store.ListFilter{}); got != "D,C,B,A" {
		t.Errorf("List() = %s, want D,C,B,A", got)
	}
	// A is updated last: it comes first, and its status is filtered anew.
	_, err := s.Update(ctx, order.Key{Site: "shop", ID: "A"}, func(cur *order.Order) (*order.Order, []store.Delivery, error) {
		cur.Apply(order.Transition{To: order.Cancelled, Ref: cur.Current().Ref, Cause: order.Cause{Kind: order.ByCustomer}}, t0.Add(time.Hour))
		return cur, nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    store.ListFilter
		want string
	}{
		{"all", store.ListFilter{}, "A,D,C,B"},
		{"site", store.ListFilter{Site: "shop"}, "A,B"},
		{"site-is-not-a-prefix", store.ListFilter{Site: "shopx"}, "D"},
		{"status", store.ListFilter{Status: order.Pending}, "D,C,B"},
		{"status-cancelled", store.ListFilter{Status: order.Cancelled}, "A"},
		{"site-and-status", store.ListFilter{Site: "shop", Status: order.Pending}, "B"},
		{"limit", store.ListFilter{Limit: 2}, "A,D"},
		{"none", store.ListFilter{Site: "nope"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := list(tc.f); got != tc.want {
				t.Errorf("List(%+v) = %s, want %s", tc.f, got, tc.want)
			}
		})
	}
}

// testListPages: listing page by page, each page After the last order of
// the one before, gives every order once and in the order of one List,
// with ties in UpdatedAt, filters, and an After order no longer there.
func testListPages(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)
	for i := range 23 {
		site := []string{"shop", "other"}[i%2]
		// Three orders share each minute: ties in UpdatedAt.
		Put(t, s, NewOrder(t, site, fmt.Sprintf("o%02d", i), t0.Add(time.Duration(i/3)*time.Minute), time.Hour))
	}
	for _, tc := range []struct {
		name  string
		f     store.ListFilter
		limit int
	}{
		{"all-by-4", store.ListFilter{}, 4},
		{"all-by-1", store.ListFilter{}, 1},
		{"all-by-5", store.ListFilter{}, 5},
		{"site-by-3", store.ListFilter{Site: "shop"}, 3},
		{"status-by-7", store.ListFilter{Status: order.Pending}, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			whole, err := s.List(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var paged []*order.Order
			page := tc.f
			page.Limit = tc.limit
			for range 100 {
				got, err := s.List(ctx, page)
				if err != nil {
					t.Fatal(err)
				}
				paged = append(paged, got...)
				if len(got) < tc.limit {
					break
				}
				page.After = got[len(got)-1]
			}
			if orderIDs(paged) != orderIDs(whole) || len(whole) == 0 {
				t.Fatalf("pages of %d: %s\nwhole list:  %s", tc.limit, orderIDs(paged), orderIDs(whole))
			}
		})
	}
	// An order that is no longer where it was still marks the place.
	all, _ := s.List(ctx, store.ListFilter{})
	gone := *all[4]
	gone.ID = "o99" // never stored; sorts after every oNN of its site and time
	got, err := s.List(ctx, store.ListFilter{After: &gone, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || len(got) >= len(all) || got[len(got)-1].ID != all[len(all)-1].ID {
		t.Fatalf("After an order not stored: %s (all: %s)", orderIDs(got), orderIDs(all))
	}
}

// Concurrent read-modify-write of one key through Update must never lose
// an increment, even though a store may run fn more than once.
func testConcurrentUpdatesOfOneKeyLoseNothing(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)
	o := NewOrder(t, "shop", "counter", t0, time.Hour)
	o.Metadata = map[string]string{"n": "0"}
	Put(t, s, o)

	const n = 100
	var calls atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := s.Update(ctx, o.Key, func(cur *order.Order) (*order.Order, []store.Delivery, error) {
				calls.Add(1)
				v, err := strconv.Atoi(cur.Metadata["n"])
				if err != nil {
					return nil, nil, err
				}
				cur.Metadata["n"] = strconv.Itoa(v + 1)
				return cur, nil, nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := s.Get(ctx, o.Key)
	if err != nil {
		t.Fatal(err)
	}
	if got.Metadata["n"] != strconv.Itoa(n) {
		t.Errorf("counter = %s after %d concurrent increments (fn called %d times)", got.Metadata["n"], n, calls.Load())
	}
}

// testOpenFollowsTheHoldDeadline: an order on hold is due at its
// provider's hold deadline, days after its pending expiry.
func testOpenFollowsTheHoldDeadline(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)
	o := NewOrder(t, "shop", "K", t0, 30*time.Minute)
	Put(t, s, o)
	hold := t0.Add(72 * time.Hour)
	_, err := s.Update(ctx, o.Key, func(cur *order.Order) (*order.Order, []store.Delivery, error) {
		cur.Apply(order.Transition{To: order.OnHold, Ref: cur.Current().Ref, HoldUntil: hold,
			Cause: order.Cause{Kind: order.ByWebhook, Ref: "evt_hold"}}, t0.Add(time.Minute))
		return cur, nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Open(ctx, "shop", t0.Add(time.Hour), 0); len(got) != 0 {
		t.Errorf("on-hold order due at its pending expiry: %s", orderIDs(got))
	}
	if got, _ := s.Open(ctx, "shop", hold.Add(time.Second), 0); orderIDs(got) != "K" {
		t.Errorf("Open after the hold deadline = %s, want K", orderIDs(got))
	}
}

// testByProviderRef: an attempt is found by the provider's own reference
// once recorded, follows the attempt's changes, and a provider ref never
// opens the attempt's pages through ByRef.
func testByProviderRef(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)
	o := NewOrder(t, "shop", "P", t0, time.Hour)
	o.Current().ProviderRef = "cs_test_1"
	Put(t, s, o)
	got, err := s.ByProviderRef(ctx, "cs_test_1")
	if err != nil || got.ID != "P" {
		t.Fatalf("ByProviderRef = %v, %v; want order P", got, err)
	}
	if _, err := s.ByRef(ctx, "\x00cs_test_1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ByRef with a provider ref's index key = %v, want ErrNotFound", err)
	}
	// Another order claiming the same provider ref is stored, and the
	// first keeps it.
	other := NewOrder(t, "shop", "Q", t0, time.Hour)
	other.Current().ProviderRef = "cs_test_1"
	Put(t, s, other)
	if got, _ := s.ByProviderRef(ctx, "cs_test_1"); got == nil || got.ID != "P" {
		t.Fatalf("after a second claim, ByProviderRef = %v, want P", got)
	}
	// The attempt's ref changes: the old one is gone, the new one found.
	_, err = s.Update(ctx, o.Key, func(cur *order.Order) (*order.Order, []store.Delivery, error) {
		cur.Current().ProviderRef = "cs_test_2"
		return cur, nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ByProviderRef(ctx, "cs_test_1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("old provider ref still found: %v", err)
	}
	if got, err := s.ByProviderRef(ctx, "cs_test_2"); err != nil || got.ID != "P" {
		t.Errorf("new provider ref: %v, %v", got, err)
	}
}

// The reconciler's queue: open orders with an attempt waiting at a
// provider, longest unasked first; asking moves an order to the back, and
// an order that is paid, or has nothing waiting, is not in it.
func testUnaskedFollowsAttemptsAndChecks(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)
	started := func(o *order.Order, at time.Time) *order.Order {
		o.Current().Provider, o.Current().ProviderRef, o.Current().StartedAt = "stripe", "cs_"+o.ID, at
		return o
	}
	// A started at t0+1m, B at t0+2m, C never started, D on hold since
	// t0+3m, E on another site.
	a := started(NewOrder(t, "shop", "A", t0, 4*time.Hour), t0.Add(time.Minute))
	b := started(NewOrder(t, "shop", "B", t0, 4*time.Hour), t0.Add(2*time.Minute))
	c := NewOrder(t, "shop", "C", t0, 4*time.Hour)
	d := started(NewOrder(t, "shop", "D", t0, 4*time.Hour), t0.Add(3*time.Minute))
	d.Status = order.OnHold
	e := started(NewOrder(t, "other", "E", t0, 4*time.Hour), t0)
	for _, o := range []*order.Order{a, b, c, d, e} {
		Put(t, s, o)
	}
	unasked := func(site string, before time.Time, limit int) string {
		t.Helper()
		got, err := s.Unasked(ctx, site, before, limit)
		if err != nil {
			t.Fatal(err)
		}
		return orderIDs(got)
	}
	if got := unasked("shop", t0.Add(time.Hour), 0); got != "A,B,D" {
		t.Errorf("Unasked = %s, want A,B,D (started ones of this site, longest unasked first)", got)
	}
	if got := unasked("shop", t0.Add(2*time.Minute), 0); got != "A" {
		t.Errorf("Unasked(before B started) = %s, want A (before is exclusive)", got)
	}
	if got := unasked("shop", t0.Add(time.Hour), 2); got != "A,B" {
		t.Errorf("Unasked(limit 2) = %s, want A,B", got)
	}
	if got := unasked("other", t0.Add(time.Hour), 0); got != "E" {
		t.Errorf("Unasked(other site) = %s, want E", got)
	}
	if got := unasked("sho", t0.Add(time.Hour), 0); got != "" {
		t.Errorf("Unasked(a site whose name is a prefix of another's) = %s, want none", got)
	}

	update := func(k order.Key, fn func(*order.Order)) {
		t.Helper()
		_, err := s.Update(ctx, k, func(cur *order.Order) (*order.Order, []store.Delivery, error) {
			fn(cur)
			return cur, nil, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// A is asked at t0+10m: it goes to the back. B is paid. C is started
	// at t0+5m.
	update(a.Key, func(o *order.Order) { o.CheckedAt = t0.Add(10 * time.Minute) })
	update(b.Key, func(o *order.Order) {
		o.Apply(order.Transition{To: order.Paid, Ref: o.Current().Ref,
			Cause: order.Cause{Kind: order.ByWebhook, Ref: "evt_b"}, Paid: o.Amount, Provider: "stripe"}, t0.Add(4*time.Minute))
	})
	update(c.Key, func(o *order.Order) { started(o, t0.Add(5*time.Minute)) })
	if got := unasked("shop", t0.Add(time.Hour), 0); got != "D,C,A" {
		t.Errorf("Unasked after changes = %s, want D,C,A (A asked last, B paid)", got)
	}
	if got := unasked("shop", t0.Add(10*time.Minute), 0); got != "D,C" {
		t.Errorf("Unasked(before A was asked) = %s, want D,C", got)
	}
	// D's attempt fails: nothing of it waits any more, though it is open.
	update(d.Key, func(o *order.Order) { o.Current().Failed = true })
	if got := unasked("shop", t0.Add(time.Hour), 0); got != "C,A" {
		t.Errorf("Unasked after D's attempt failed = %s, want C,A", got)
	}
}

// testPersonalFollowsFinalityAndErasure: Personal lists a site's final
// orders that still hold their customer's data, by the time of their last
// change, oldest first; an open order is not in it, and an order leaves it
// once its data is erased.
func testPersonalFollowsFinalityAndErasure(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)
	final := func(o *order.Order, to order.State, at time.Time) *order.Order {
		t.Helper()
		tr := order.Transition{To: to, Ref: o.Current().Ref, Cause: order.Cause{Kind: order.ByWebhook, Ref: "evt_" + o.ID}, Provider: "sandbox"}
		if to == order.Paid {
			tr.Paid = o.Amount
		}
		if out := o.Apply(tr, at); !out.Changed {
			t.Fatalf("%s → %s: %+v", o.ID, to, out)
		}
		return o
	}
	// A paid at t0+2m, B expired at t0+1m, C open, D paid at t0 on
	// another site.
	a := final(NewOrder(t, "shop", "A", t0, time.Hour), order.Paid, t0.Add(2*time.Minute))
	b := final(NewOrder(t, "shop", "B", t0, time.Hour), order.Expired, t0.Add(time.Minute))
	c := NewOrder(t, "shop", "C", t0, time.Hour)
	d := final(NewOrder(t, "other", "D", t0, time.Hour), order.Paid, t0)
	for _, o := range []*order.Order{a, b, c, d} {
		Put(t, s, o)
	}
	personal := func(site string, before time.Time, limit int) string {
		t.Helper()
		got, err := s.Personal(ctx, site, before, limit)
		if err != nil {
			t.Fatal(err)
		}
		return orderIDs(got)
	}
	if got := personal("shop", t0.Add(time.Hour), 0); got != "B,A" {
		t.Errorf("Personal = %s, want B,A (final orders of this site, oldest first)", got)
	}
	if got := personal("shop", t0.Add(2*time.Minute), 0); got != "B" {
		t.Errorf("Personal(before A was paid) = %s, want B (before is exclusive)", got)
	}
	if got := personal("shop", t0.Add(time.Hour), 1); got != "B" {
		t.Errorf("Personal(limit 1) = %s, want B", got)
	}
	if got := personal("other", t0.Add(time.Hour), 0); got != "D" {
		t.Errorf("Personal(other site) = %s, want D", got)
	}
	// B's data is erased; A is refunded at t0+30m, which puts it later.
	_, err := s.Update(ctx, b.Key, func(o *order.Order) (*order.Order, []store.Delivery, error) {
		o.ErasePersonal(nil, nil, t0.Add(20*time.Minute))
		return o, nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Update(ctx, a.Key, func(o *order.Order) (*order.Order, []store.Delivery, error) {
		o.Apply(order.Transition{To: order.Refunded, Ref: o.Current().Ref, Cause: order.Cause{Kind: order.ByAdmin, Ref: "r1"}}, t0.Add(30*time.Minute))
		return o, nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := personal("shop", t0.Add(time.Hour), 0); got != "A" {
		t.Errorf("Personal after B was erased = %s, want A", got)
	}
	if got := personal("shop", t0.Add(29*time.Minute), 0); got != "" {
		t.Errorf("Personal(before A's refund) = %s, want none", got)
	}
	got, err := s.Get(ctx, b.Key)
	if err != nil || got.Email != "" || got.ErasedAt.IsZero() || got.Status != order.Expired {
		t.Errorf("B after erasure: %v %+v", err, got)
	}
}
