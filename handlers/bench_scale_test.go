package handlers_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/handlers/handlerstest"
	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/sandbox"
	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/store/bolt"
)

// BenchmarkStoreScale compares the work that must not grow with the
// number of stored orders on an empty store, a small one and a large one
// (BENCHMARKS.md §11): header intake, an expiry pass, a reconcile pass and a page of the
// admin list. The large store holds CHECKOUT_SCALE_ORDERS orders (default
// 1,000,000), a tenth of them open with an attempt waiting at the sandbox
// and deadlines spread over the next week, the rest paid over the past
// month; the small one holds 10,000 the same way. Building the large one
// takes a minute or two and about 2 GB in the temporary directory.
//
//	go test ./handlers -run '^$' -bench StoreScale -benchtime 2s
func BenchmarkStoreScale(b *testing.B) {
	large := 1_000_000
	if v := os.Getenv("CHECKOUT_SCALE_ORDERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 20_000 {
			b.Fatalf("CHECKOUT_SCALE_ORDERS=%q: want a number of at least 20000", v)
		}
		large = n
	}
	b.Run("orders=0/intake", func(b *testing.B) { newScaleStore(b, 0).intake(b) })
	for _, n := range []int{10_000, large} {
		sc := newScaleStore(b, n)
		name := "orders=" + strconv.Itoa(n)
		// Intake last: its orders are due an hour on.
		b.Run(name+"/expire-100-due", func(b *testing.B) { sc.expire(b) })
		b.Run(name+"/reconcile-100-due", func(b *testing.B) { sc.reconcile(b) })
		b.Run(name+"/reconcile-none-due", func(b *testing.B) { sc.reconcileNone(b) })
		b.Run(name+"/list-page", func(b *testing.B) { sc.listPage(b) })
		b.Run(name+"/intake", func(b *testing.B) { sc.intake(b) })
	}
}

// scaleStore is a filled store, with the clock its site runs on.
type scaleStore struct {
	st        *bolt.Store
	n, open   int
	now       time.Time   // when the store was filled
	deadlines []time.Time // of the open orders, soonest first
	clock     *handlerstest.Clock
	site      *handlers.Site
}

func newScaleStore(b *testing.B, n int) *scaleStore {
	b.Helper()
	st, err := bolt.Open(filepath.Join(b.TempDir(), "checkout.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	now := time.Now().Truncate(time.Second)
	sc := &scaleStore{st: st, n: n, open: n / 10, now: now, clock: &handlerstest.Clock{}}
	sc.clock.Set(now)
	week := 7 * 24 * time.Hour
	for i := range sc.open {
		sc.deadlines = append(sc.deadlines, now.Add(time.Hour+week/time.Duration(sc.open)*time.Duration(i)))
	}

	// Filled through the store's own writes, many at once so that they
	// share commits.
	start := time.Now()
	ids := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 1000 {
		wg.Go(func() {
			for i := range ids {
				if err := sc.put(i); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := range n {
		ids <- i
	}
	close(ids)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	b.Logf("filled a store with %d orders (%d open) in %s", n, sc.open, time.Since(start).Round(time.Second))
	// What the fill left for the kernel to write back would otherwise
	// compete with the measured fsyncs: a store that has grown to this
	// size over months has no such backlog.
	syscall.Sync()

	sc.site = handlerstest.BenchSiteOn(b, st, func(c *handlers.Config) {
		c.Site = "bench"
		c.Intake = handlers.Intakes{Headers: true}
		c.Providers = []provider.Provider{&sandbox.Sandbox{}}
		c.Now = sc.clock.Now
	})
	return sc
}

// put stores order i: open orders 0..open-1, their deadlines in order;
// the rest paid, created over the past month.
func (sc *scaleStore) put(i int) error {
	k := order.Key{Site: "bench", ID: fmt.Sprintf("scale-%08d", i)}
	created := sc.now.Add(-30 * 24 * time.Hour / time.Duration(sc.n) * time.Duration(sc.n-i))
	var expires time.Duration
	if i < sc.open {
		created = sc.now.Add(-time.Hour)
		expires = sc.deadlines[i].Sub(created)
	}
	o, err := order.New(order.Intake{
		Key:         k,
		Amount:      money.MustParse("75.00", "USD"),
		Email:       "customer@example.com",
		Description: "Order " + k.ID,
		Expires:     expires,
	}, created, time.Hour)
	if err != nil {
		return err
	}
	a := o.Current()
	a.Provider, a.ProviderRef, a.StartedAt = "sandbox", "sb-"+k.ID, created
	if i >= sc.open {
		out := o.Apply(order.Transition{To: order.Paid, Ref: a.Ref, Cause: order.Cause{Kind: order.ByReturn},
			Paid: o.Amount, Provider: "sandbox", Transaction: "tx-" + k.ID}, created.Add(time.Minute))
		if !out.Changed {
			return fmt.Errorf("order %s: not paid", k.ID)
		}
	}
	_, err = sc.st.Update(context.Background(), k, func(*order.Order) (*order.Order, []store.Delivery, error) {
		return o, nil, nil
	})
	return err
}

// intake is BenchmarkHeaderIntake's closed loop (64 requests in flight)
// on this store.
func (sc *scaleStore) intake(b *testing.B) {
	before := sc.st.Stats().TxStats
	benchHeaderIntakeOn(b, sc.site, 64)
	reportTxStats(b, before, sc.st.Stats().TxStats)
}

// reportTxStats reports what bbolt did per op between two readings: pages
// written, nodes read into memory, and the time spent writing pages
// (fdatasync included) and splitting nodes.
func reportTxStats(b *testing.B, before, after bbolt.TxStats) {
	n := float64(b.N)
	b.ReportMetric(float64(after.GetWrite()-before.GetWrite())/n, "pages/op")
	b.ReportMetric(float64(after.GetNodeCount()-before.GetNodeCount())/n, "nodes/op")
	b.ReportMetric(float64((after.GetWriteTime()-before.GetWriteTime()).Microseconds())/n, "write-µs/op")
	b.ReportMetric(float64((after.GetSpillTime()-before.GetSpillTime()).Microseconds())/n, "spill-µs/op")
}

// expire runs expiry passes that each find 100 open orders due, out of
// the many open: between passes (off the clock) the 100 are stored open
// again.
func (sc *scaleStore) expire(b *testing.B) {
	sc.clock.Set(sc.deadlines[99].Add(time.Nanosecond))
	for range b.N {
		n, err := sc.site.Expire(context.Background(), 200)
		if err != nil || n != 100 {
			b.Fatalf("expiry pass: %d ended, %v; want the 100 due", n, err)
		}
		b.StopTimer()
		sc.refill(b, 100)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/100, "µs/order-due")
}

// refill stores the first n open orders anew, as the fill made them.
func (sc *scaleStore) refill(b *testing.B, n int) {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() { errs <- sc.put(i) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
}

// reconcile runs passes that each ask about the 100 orders longest
// unasked, out of the many open and all due: each pass moves the clock
// on, so that every open order is due again once all were asked.
func (sc *scaleStore) reconcile(b *testing.B) {
	const age = 30 * time.Minute
	rounds := sc.open / 100 // passes until every open order was asked
	due := func() int {
		got, err := sc.st.Unasked(context.Background(), "bench", sc.clock.Now().Add(-age+time.Nanosecond), sc.open)
		if err != nil {
			b.Fatal(err)
		}
		return len(got)
	}
	sc.clock.Set(sc.now.Add(time.Hour))
	before := due()
	stats := sc.st.Stats().TxStats
	b.ResetTimer()
	for i := range b.N {
		sc.clock.Set(sc.now.Add(time.Hour + time.Duration(i/rounds)*(age+time.Second) + time.Duration(i%rounds)))
		if _, err := sc.site.Reconcile(context.Background(), age, 100); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportTxStats(b, stats, sc.st.Stats().TxStats)
	if after := due(); b.N < rounds && before-after != 100*b.N {
		b.Fatalf("%d passes asked about %d orders, want 100 each", b.N, before-after)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/100, "µs/order-due")
}

// reconcileNone runs passes that find nothing due: every open order was
// asked about within the age.
func (sc *scaleStore) reconcileNone(b *testing.B) {
	sc.clock.Set(sc.now.Add(time.Hour))
	for range b.N {
		if n, err := sc.site.Reconcile(context.Background(), 365*24*time.Hour, 100); err != nil || n != 0 {
			b.Fatalf("reconcile pass with nothing due: %d changed, %v", n, err)
		}
	}
}

// listPage reads one page of 100 of the admin list, newest first, from a
// cursor half way down the store.
func (sc *scaleStore) listPage(b *testing.B) {
	mid := order.Key{Site: "bench", ID: fmt.Sprintf("scale-%08d", sc.open+(sc.n-sc.open)/2)}
	after, err := sc.st.Get(context.Background(), mid)
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		page, err := sc.st.List(context.Background(), store.ListFilter{Site: "bench", Limit: 100, After: after})
		if err != nil || len(page) != 100 {
			b.Fatalf("list page: %d orders, %v; want 100", len(page), err)
		}
	}
}
