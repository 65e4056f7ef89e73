// Tests of what only a store shared by several processes has: migrations
// under a lock, claims of the outbox, leases, the change feed, and the
// bounds on every statement. The store contract itself is the
// conformance suite (conformance_test.go).
package postgres_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-checkout/checkout/internal/pgtest"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/store/postgres"
	"github.com/caddy-checkout/checkout/store/storetest"
)

func open(t *testing.T, dsn string, opts postgres.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func exec(t *testing.T, dsn, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatal(err)
	}
}

// TestInstancesStartingTogetherMigrateOnce: eight instances opening a new
// database at once all start, and the schema is applied once.
func TestInstancesStartingTogetherMigrateOnce(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
			if err != nil {
				errs <- err
				return
			}
			_ = s.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rows, version int
	if err := conn.QueryRow(context.Background(), `SELECT count(*), max(version) FROM checkout_schema`).Scan(&rows, &version); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || version != postgres.SchemaVersion() {
		t.Fatalf("checkout_schema has %d rows, version %d; want 1 row, version %d", rows, version, postgres.SchemaVersion())
	}
}

// TestNewerSchemaIsRefused: a database a newer release migrated is not
// misread by this one.
func TestNewerSchemaIsRefused(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	open(t, dsn, postgres.Options{}).Close()
	exec(t, dsn, `UPDATE checkout_schema SET version = 99`)
	_, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err == nil || !strings.Contains(err.Error(), "schema version 99, newer than this build knows") {
		t.Fatalf("Open of a newer schema: %v", err)
	}
}

// TestSchema1DatabaseIsMigrated: a database of schema 1 (no reconciler
// queue) gets one in which every open order is due at once; each is filed
// by its real time, or left out, as soon as it is written again.
func TestSchema1DatabaseIsMigrated(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	ctx := context.Background()
	s := open(t, dsn, postgres.Options{})
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	a := storetest.NewOrder(t, "shop", "A", t0, time.Hour)
	a.Current().Provider, a.Current().StartedAt = "stripe", t0.Add(time.Minute)
	b := storetest.NewOrder(t, "shop", "B", t0, time.Hour) // never started
	c := storetest.NewOrder(t, "shop", "C", t0, time.Hour)
	c.Status = order.Paid
	for _, o := range []*order.Order{a, b, c} {
		storetest.Put(t, s, o)
	}
	s.Close()
	exec(t, dsn, `ALTER TABLE checkout_orders DROP COLUMN unasked, DROP COLUMN personal_since`)
	exec(t, dsn, `UPDATE checkout_schema SET version = 1`)

	s = open(t, dsn, postgres.Options{})
	ids := func() string {
		t.Helper()
		got, err := s.Unasked(ctx, "shop", t0.Add(time.Hour), 0)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range got {
			out = append(out, o.ID)
		}
		return strings.Join(out, ",")
	}
	if got := ids(); got != "A,B" {
		t.Fatalf("Unasked after migrating = %s, want A,B (every open order, at once)", got)
	}
	storetest.Put(t, s, b)
	if got := ids(); got != "A" {
		t.Fatalf("Unasked after B was written again = %s, want A (nothing of B waits)", got)
	}
}

// TestDueClaimsForOneInstance: a due callback goes to one instance at a
// time: the other sees nothing while the claim runs, gets it once the
// claim runs out (its holder died), and a saved try ends the claim.
func TestDueClaimsForOneInstance(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	ctx := context.Background()
	a := open(t, dsn, postgres.Options{ClaimLease: time.Second})
	b := open(t, dsn, postgres.Options{ClaimLease: time.Second})
	now := time.Now().UTC()
	storetest.Put(t, a, storetest.NewOrder(t, "shop", "o1", now, 0), store.Delivery{ID: "d1", Type: "order.created", URL: "http://shop/", CreatedAt: now, NextAt: now},
		store.Delivery{ID: "d2", Type: "order.paid", URL: "http://shop/", CreatedAt: now, NextAt: now})

	ids := func(s *postgres.Store) string {
		t.Helper()
		ds, err := s.Due(ctx, now.Add(time.Minute), 10)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return strings.Join(out, " ")
	}
	if got := ids(a); got != "d1" {
		t.Fatalf("A's Due: %q, want d1 (the head of the order's line)", got)
	}
	if got := ids(b); got != "" {
		t.Fatalf("B's Due while A holds d1: %q, want nothing (not even d2, which waits behind d1)", got)
	}
	if got := ids(a); got != "d1" {
		t.Fatalf("A's Due again: %q, want d1 (its own claim, renewed)", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ids(b) != "d1" {
		if time.Now().After(deadline) {
			t.Fatal("B never got d1 after A's claim ran out")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// B delivers it: the next in line is free for anyone at once.
	d, err := b.Delivery(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	d.State = store.DeliveryDelivered
	if err := b.SaveDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	if got := ids(a); got != "d2" {
		t.Fatalf("A's Due after d1 was delivered: %q, want d2", got)
	}
}

// TestExclusiveAcrossInstances: work run through store.Exclusive on two
// instances never overlaps.
func TestExclusiveAcrossInstances(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	stores := []*postgres.Store{open(t, dsn, postgres.Options{}), open(t, dsn, postgres.Options{})}
	var inside, most, runs atomic.Int32
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			err := store.Exclusive(context.Background(), stores[i%2], "vouchersafe/pickup/safe", 10*time.Second, func() error {
				n := inside.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(20 * time.Millisecond)
				inside.Add(-1)
				runs.Add(1)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if runs.Load() != 10 || most.Load() != 1 {
		t.Fatalf("%d runs, at most %d at once; want 10 runs, one at a time", runs.Load(), most.Load())
	}
	// A waiter gives up with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	hold := make(chan struct{})
	go func() {
		_ = store.Exclusive(context.Background(), stores[0], "x", 10*time.Second, func() error { <-hold; return nil })
	}()
	time.Sleep(100 * time.Millisecond)
	err := store.Exclusive(ctx, stores[1], "x", 10*time.Second, func() error { t.Error("ran while held"); return nil })
	close(hold)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a waiter whose context ended: %v", err)
	}
}

// TestWatchReportsOtherInstancesChanges: an instance's Watch hears of a
// change another instance made, with the order's site and attempt refs.
func TestWatchReportsOtherInstancesChanges(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	a := open(t, dsn, postgres.Options{})
	b := open(t, dsn, postgres.Options{})
	o := storetest.NewOrder(t, "shop", "o1", time.Now(), 0)
	storetest.Put(t, a, o)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string, 10)
	go func() {
		_ = b.Watch(ctx, func(site string, refs []string) { got <- site + " " + strings.Join(refs, ",") })
	}()
	// Watch is listening once a change made now arrives; retry until then.
	want := "shop " + o.Attempts[0].Ref
	deadline := time.Now().Add(10 * time.Second)
	for {
		o.Description = time.Now().String()
		storetest.Put(t, a, o)
		select {
		case g := <-got:
			if g == " " {
				continue // "anything may have changed": it is listening now
			}
			if g != want {
				t.Fatalf("Watch reported %q, want %q", g, want)
			}
			return
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("Watch heard nothing of A's changes")
		}
	}
}

// TestStatementTimeoutBoundsAWait: an update waiting on a row another
// session holds gives up after the statement timeout, as an unavailable
// store, and writes nothing.
func TestStatementTimeoutBoundsAWait(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	s := open(t, dsn, postgres.Options{StatementTimeout: 300 * time.Millisecond})
	o := storetest.NewOrder(t, "shop", "o1", time.Now(), 0)
	storetest.Put(t, s, o)

	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(context.Background(), `SELECT 1 FROM checkout_orders WHERE id = 'o1' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Update(context.Background(), o.Key, func(cur *order.Order) (*order.Order, []store.Delivery, error) {
		cur.Description = "changed"
		return cur, nil, nil
	})
	if err == nil || !store.Unavailable(err) {
		t.Fatalf("update of a locked row: %v, want an unavailable-store error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the update waited %s", d)
	}
	_ = tx.Rollback(context.Background())
	got, err := s.Get(context.Background(), o.Key)
	if err != nil || got.Description == "changed" {
		t.Fatalf("after the timed-out update: %+v %v", got, err)
	}
}

// TestOutageAndRecovery: with the server stopped, calls fail at once as
// an unavailable store and write nothing; when it is back the same store
// works again with no reopening, Watch reconnects and says that changes
// may have been missed, and closing the store leaves no goroutine behind.
func TestOutageAndRecovery(t *testing.T) {
	pg := pgtest.Start(t)
	dsn := pg.NewDatabase(t)
	before := runtime.NumGoroutine() // the server's own (its process waiter) included
	ctx := context.Background()
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan string, 100)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		_ = s.Watch(wctx, func(site string, refs []string) { watched <- site })
	}()
	o := storetest.NewOrder(t, "shop", "o1", time.Now(), 0)
	storetest.Put(t, s, o)

	pg.Stop(t)
	start := time.Now()
	_, err = s.Update(ctx, o.Key, func(cur *order.Order) (*order.Order, []store.Delivery, error) {
		cur.Description = "during the outage"
		return cur, nil, nil
	})
	if !store.Unavailable(err) {
		t.Fatalf("update while the server is down: %v, want an unavailable-store error", err)
	}
	if _, err := s.Get(ctx, o.Key); !store.Unavailable(err) {
		t.Fatalf("get while the server is down: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("failing took %s", d)
	}

	pg.Restart(t)
	got, err := s.Get(ctx, o.Key)
	if err != nil {
		t.Fatalf("get after the restart: %v", err)
	}
	if got.Description == "during the outage" {
		t.Fatal("the update that failed was written")
	}
	deadline := time.After(15 * time.Second)
	for resynced := false; !resynced; {
		select {
		case site := <-watched:
			resynced = site == ""
		case <-deadline:
			t.Fatal("Watch did not reconnect and report possibly missed changes")
		}
	}
	stopWatch()
	<-watchDone
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for i := 0; runtime.NumGoroutine() > before; i++ {
		if i == 100 {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAStaleTryDoesNotOverwriteANewerOne: a try that outlived its claim,
// while another instance delivered the callback, cannot make it pending
// again (it would be sent after the callbacks that followed it).
func TestAStaleTryDoesNotOverwriteANewerOne(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	ctx := context.Background()
	a := open(t, dsn, postgres.Options{})
	b := open(t, dsn, postgres.Options{})
	now := time.Now().UTC()
	storetest.Put(t, a, storetest.NewOrder(t, "shop", "o1", now, 0), store.Delivery{ID: "d1", Type: "order.paid", URL: "http://shop/", CreatedAt: now, NextAt: now})

	was, err := a.Delivery(ctx, "d1") // A's try starts from this
	if err != nil {
		t.Fatal(err)
	}
	byB, err := b.Delivery(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	byB.State, byB.Tries, byB.LastStatus = store.DeliveryDelivered, 1, 204
	if err := b.SaveDeliveryIf(ctx, byB, &store.Delivery{}); !errors.Is(err, store.ErrStale) {
		t.Fatalf("save over a version that is not stored: %v, want ErrStale", err)
	}
	bWas, _ := b.Delivery(ctx, "d1")
	if err := b.SaveDeliveryIf(ctx, byB, bWas); err != nil {
		t.Fatal(err)
	}
	late := *was
	late.Tries, late.LastError, late.NextAt = 1, "timeout", now.Add(5*time.Second)
	if err := a.SaveDeliveryIf(ctx, &late, was); !errors.Is(err, store.ErrStale) {
		t.Fatalf("A's late save: %v, want ErrStale", err)
	}
	got, err := a.Delivery(ctx, "d1")
	if err != nil || got.State != store.DeliveryDelivered || got.LastStatus != 204 {
		t.Fatalf("after A's late save: %+v %v; want B's delivered record", got, err)
	}
}

// TestSchema2DatabaseIsMigrated: a database from before retain_personal
// gets the index of final orders holding customer data, with each final
// order filed by its last update and the open ones left out.
func TestSchema2DatabaseIsMigrated(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	ctx := context.Background()
	s := open(t, dsn, postgres.Options{})
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	paid := storetest.NewOrder(t, "shop", "P", t0, time.Hour)
	paid.Apply(order.Transition{To: order.Paid, Ref: paid.Current().Ref, Cause: order.Cause{Kind: order.ByWebhook, Ref: "e"},
		Paid: paid.Amount, Provider: "sandbox"}, t0.Add(time.Minute))
	paid.UpdatedAt = t0.Add(time.Minute)
	storetest.Put(t, s, paid)
	storetest.Put(t, s, storetest.NewOrder(t, "shop", "O", t0, time.Hour))
	s.Close()
	exec(t, dsn, `ALTER TABLE checkout_orders DROP COLUMN personal_since`)
	exec(t, dsn, `UPDATE checkout_schema SET version = 2`)

	s = open(t, dsn, postgres.Options{})
	got, err := s.Personal(ctx, "shop", t0.Add(time.Hour), 0)
	if err != nil || len(got) != 1 || got[0].ID != "P" {
		t.Fatalf("Personal after migrating = %v, %v; want the paid order", got, err)
	}
	if got, _ := s.Personal(ctx, "shop", t0.Add(time.Minute), 0); len(got) != 0 {
		t.Fatalf("Personal before its last update = %v, want none", got)
	}
}
