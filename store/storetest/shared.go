// Conformance tests of a store that several processes share: two handles
// on the same data (Factory.Second), used at once, behave as one store.
package storetest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
)

// both runs fn n times on each of a and b at once.
func both(a, b store.Store, n int, fn func(s store.Store, i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { fn(a, i) })
		wg.Go(func() { fn(b, i) })
	}
	wg.Wait()
}

// wins runs try n times on each of a and b at once and counts the calls
// that report they were the first; errors fail t.
func wins(t *testing.T, a, b store.Store, n int, try func(s store.Store) (bool, error)) int {
	var mu sync.Mutex
	won := 0
	both(a, b, n, func(s store.Store, _ int) {
		first, err := try(s)
		if err != nil {
			t.Error(err)
			return
		}
		if first {
			mu.Lock()
			won++
			mu.Unlock()
		}
	})
	return won
}

func testSharedConcurrentUpdatesLoseNothing(t *testing.T, f Factory) {
	a := f.New(t)
	b := f.Second(t, a)
	o := NewOrder(t, "shop", "counter", t0, time.Hour)
	o.Metadata = map[string]string{"n": "0"}
	Put(t, a, o)
	both(a, b, 50, func(s store.Store, _ int) {
		_, err := s.Update(context.Background(), o.Key, func(cur *order.Order) (*order.Order, []store.Delivery, error) {
			n, _ := strconv.Atoi(cur.Metadata["n"])
			cur.Metadata["n"] = strconv.Itoa(n + 1)
			return cur, nil, nil
		})
		if err != nil {
			t.Error(err)
		}
	})
	got, err := b.Get(context.Background(), o.Key)
	if err != nil {
		t.Fatal(err)
	}
	if got.Metadata["n"] != "100" {
		t.Fatalf("after 2×50 increments through two handles: %s, want 100", got.Metadata["n"])
	}
}

func testSharedChangesAreSeenByTheOther(t *testing.T, f Factory) {
	ctx := context.Background()
	a := f.New(t)
	b := f.Second(t, a)
	o := NewOrder(t, "shop", "seen", t0, time.Hour)
	o.Attempts[0].ProviderRef = "cs_seen"
	Put(t, a, o, NewDelivery("seen-1", 1, t0))
	if got, err := b.Get(ctx, o.Key); err != nil || got.ID != "seen" {
		t.Fatalf("Get on the other handle: %v %v", got, err)
	}
	if got, err := b.ByRef(ctx, o.Attempts[0].Ref); err != nil || got.ID != "seen" {
		t.Fatalf("ByRef on the other handle: %v %v", got, err)
	}
	if got, err := b.ByProviderRef(ctx, "cs_seen"); err != nil || got.ID != "seen" {
		t.Fatalf("ByProviderRef on the other handle: %v %v", got, err)
	}
	if list, err := b.List(ctx, store.ListFilter{Site: "shop"}); err != nil || orderIDs(list) != "seen" {
		t.Fatalf("List on the other handle: %q %v", orderIDs(list), err)
	}
	if list, err := b.Open(ctx, "shop", t0.Add(2*time.Hour), 0); err != nil || orderIDs(list) != "seen" {
		t.Fatalf("Open on the other handle: %q %v", orderIDs(list), err)
	}
	if ds, err := b.Due(ctx, t0, 0); err != nil || ids(ds) != "seen-1" {
		t.Fatalf("Due on the other handle: %q %v", ids(ds), err)
	}
	if next, ok, err := b.NextDue(ctx); err != nil || !ok || !next.Equal(t0) {
		t.Errorf("NextDue on the other handle = %v, %v, %v; want %v", next, ok, err, t0)
	}

	// And back: the other handle pays the order and delivers its callback.
	_, err := b.Update(ctx, o.Key, func(cur *order.Order) (*order.Order, []store.Delivery, error) {
		out := cur.Apply(order.Transition{To: order.Paid, Ref: cur.Current().Ref,
			Cause: order.Cause{Kind: order.ByWebhook, Ref: "evt_seen"}, Paid: cur.Amount, Provider: "stripe"}, t0.Add(time.Minute))
		if !out.Changed {
			return nil, nil, fmt.Errorf("order.Apply changed nothing: %+v", out)
		}
		return cur, nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	save(t, b, "seen-1", func(d *store.Delivery) { d.State, d.Tries, d.LastAt = store.DeliveryDelivered, 1, t0 })
	if got, err := a.Get(ctx, o.Key); err != nil || got.Status != order.Paid {
		t.Errorf("Get of an order the other handle paid = %v, %v", got, err)
	}
	if list, err := a.List(ctx, store.ListFilter{Status: order.Paid}); err != nil || orderIDs(list) != "seen" {
		t.Errorf("List of paid orders after the other handle paid one = %q, %v", orderIDs(list), err)
	}
	if list, err := a.Open(ctx, "shop", t0.Add(2*time.Hour), 0); err != nil || len(list) != 0 {
		t.Errorf("Open after the other handle paid the order = %q, %v; want none", orderIDs(list), err)
	}
	if d, err := a.Delivery(ctx, "seen-1"); err != nil || d.State != store.DeliveryDelivered || d.Tries != 1 {
		t.Errorf("Delivery the other handle delivered = %+v, %v", d, err)
	}
	if _, ok, err := a.NextDue(ctx); err != nil || ok {
		t.Errorf("NextDue after the other handle delivered the only callback = %v, %v; want none", ok, err)
	}

	// Provider data written by one is read by the other.
	if err := a.PutData(ctx, "erc20/shop/checkpoint", []byte("100")); err != nil {
		t.Fatal(err)
	}
	if v, err := b.GetData(ctx, "erc20/shop/checkpoint"); err != nil || string(v) != "100" {
		t.Errorf("GetData on the other handle = %q, %v", v, err)
	}
}

// testSharedOneEventAppliedOnce: the same provider event arriving at both
// instances at once is applied once, with one callback, because each
// update sees the one before (as order.Apply's event-id dedup needs).
func testSharedOneEventAppliedOnce(t *testing.T, f Factory) {
	ctx := context.Background()
	a := f.New(t)
	b := f.Second(t, a)
	o := NewOrder(t, "shop", "paid-once", t0, time.Hour)
	o.Metadata = map[string]string{"cart": "c-1"}
	Put(t, a, o)
	both(a, b, 20, func(s store.Store, i int) {
		_, err := s.Update(ctx, o.Key, func(cur *order.Order) (*order.Order, []store.Delivery, error) {
			if cur.Metadata["evt_1"] != "" {
				return nil, nil, nil // seen: nothing to write
			}
			cur.Metadata["evt_1"] = "applied"
			return cur, []store.Delivery{NewDelivery("paid-"+strconv.Itoa(i)+"-"+strconv.FormatInt(time.Now().UnixNano(), 36), 0, t0)}, nil
		})
		if err != nil {
			t.Error(err)
		}
	})
	ds, err := a.Deliveries(ctx, store.DeliveryFilter{Site: "shop", OrderID: "paid-once"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 {
		t.Fatalf("%d callbacks for one event applied at both instances, want 1: %s", len(ds), ids(ds))
	}
}

func testSharedTokenSpentOnce(t *testing.T, f Factory) {
	a := f.New(t)
	b := f.Second(t, a)
	fresh := wins(t, a, b, 10, func(s store.Store) (bool, error) {
		return s.SpendToken(context.Background(), "shop\x00return\x00nonce", t0.Add(time.Hour), t0)
	})
	if fresh != 1 {
		t.Fatalf("one token spent %d times across two handles, want once", fresh)
	}
}

func testSharedNextSeqUnique(t *testing.T, f Factory) {
	a := f.New(t)
	b := f.Second(t, a)
	var mu sync.Mutex
	seen := map[uint64]bool{}
	both(a, b, 20, func(s store.Store, _ int) {
		n, err := s.NextSeq(context.Background(), "erc20/xpub/next")
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if seen[n] {
			t.Errorf("number %d given twice", n)
		}
		seen[n] = true
	})
	for i := range uint64(40) {
		if !seen[i] {
			t.Fatalf("numbers given: %v; want 0…39 each once", seen)
		}
	}
}

func testSharedIdempotencyBegunOnce(t *testing.T, f Factory) {
	a := f.New(t)
	b := f.Second(t, a)
	first := wins(t, a, b, 10, func(s store.Store) (bool, error) {
		rec, err := s.BeginIdempotent(context.Background(), "shop\x00idem", store.Idempotent{Fingerprint: "f", CreatedAt: t0}, time.Minute)
		return rec == nil, err
	})
	if first != 1 {
		t.Fatalf("%d calls began one Idempotency-Key across two handles, want 1", first)
	}
}

func testSharedPutDataIfAbsentAgrees(t *testing.T, f Factory) {
	a := f.New(t)
	b := f.Second(t, a)
	var mu sync.Mutex
	got := map[string]bool{}
	both(a, b, 10, func(s store.Store, i int) {
		v, err := s.PutDataIfAbsent(context.Background(), "erc20/used/0xabc", []byte("owner-"+strconv.Itoa(i)+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)))
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		got[string(v)] = true
		mu.Unlock()
	})
	if len(got) != 1 {
		t.Fatalf("put-if-absent of one key across two handles returned %d values, want 1: %v", len(got), got)
	}
}

// testSharedCreatedOnceByTwo: two instances creating the same new order at
// once (a shop's double click landing on both): one creates it, the
// other's update sees it.
func testSharedCreatedOnceByTwo(t *testing.T, f Factory) {
	ctx := context.Background()
	a := f.New(t)
	b := f.Second(t, a)
	both(a, b, 10, func(s store.Store, i int) {
		_, err := s.Update(ctx, order.Key{Site: "shop", ID: "twice"}, func(cur *order.Order) (*order.Order, []store.Delivery, error) {
			if cur != nil {
				return nil, nil, nil
			}
			o, err := makeOrder("shop", "twice", t0, time.Hour)
			if err != nil {
				return nil, nil, err
			}
			return o, []store.Delivery{NewDelivery("created-"+strconv.Itoa(i)+"-"+strconv.FormatInt(time.Now().UnixNano(), 36), 0, t0)}, nil
		})
		if err != nil {
			t.Error(err)
			return
		}
	})
	ds, err := b.Deliveries(ctx, store.DeliveryFilter{Site: "shop", OrderID: "twice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 {
		t.Fatalf("%d order.created callbacks for one order created at both instances, want 1: %s", len(ds), ids(ds))
	}
}
