package caddymodule

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/internal/pgtest"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/sign"
	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/store/postgres"
	"github.com/caddy-checkout/checkout/templates"
)

// everywhereProvider is a watcherProvider whose work runs on every
// instance (as a Voucher-Safe bot's XMPP session).
type everywhereProvider struct{ watcherProvider }

func (*everywhereProvider) EveryInstance() {}
func (*everywhereProvider) Name() string   { return "everywhere" }

// instanceEngine is one instance's engine on the shared database, with a
// site that has a leader-only runner and an everywhere runner.
type instanceEngine struct {
	e          *engine
	leaderOnly *watcherProvider
	everywhere *everywhereProvider
}

func startInstanceEngine(t *testing.T, dsn string, live, maxLive *atomic.Int32) *instanceEngine {
	t.Helper()
	open := func() (store.Store, error) {
		return postgres.Open(context.Background(), dsn, postgres.Options{})
	}
	in := &instanceEngine{
		e:          newEngine("postgres", open, time.Second, slog.Default(), zap.NewNop()),
		leaderOnly: &watcherProvider{live: live, maxLive: maxLive},
		everywhere: &everywhereProvider{},
	}
	secret, _ := sign.ParseSecret(sign.NewSecret())
	pages, _ := templates.New("", nil)
	s, err := handlers.New(handlers.Config{Site: "shop", Secret: secret, Store: in.e.store, Pages: pages,
		Providers: []provider.Provider{in.leaderOnly, in.everywhere}})
	if err != nil {
		t.Fatal(err)
	}
	in.e.register(s)
	if err := in.e.start(); err != nil {
		t.Fatal(err)
	}
	return in
}

// TestLeaderRunsTheOnceWorkAlone: of two instances on one database, only
// the leader runs the leader-only work, both run the everywhere work; when
// the leader goes without a word (its lease is not released) the other
// takes over within the lease, and when an instance shuts down properly
// the other takes over at once.
func TestLeaderRunsTheOnceWorkAlone(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	var live, maxLive atomic.Int32
	a := startInstanceEngine(t, dsn, &live, &maxLive)
	waitUntil(t, "A to lead", func() bool { return a.leaderOnly.running.Load() == 1 })
	b := startInstanceEngine(t, dsn, &live, &maxLive)
	waitUntil(t, "B's everywhere work", func() bool { return b.everywhere.running.Load() == 1 })
	time.Sleep(1500 * time.Millisecond) // more than a lease: B must still follow
	if b.leaderOnly.running.Load() != 0 || a.everywhere.running.Load() != 1 {
		t.Fatalf("B ran the leader's work (%d) or A's everywhere work stopped", b.leaderOnly.running.Load())
	}

	// A dies: its background work stops, but nothing releases its lease.
	a.e.cancel()
	a.e.runMu.Lock()
	for name, run := range a.e.runs {
		run.cancel()
		<-run.done
		delete(a.e.runs, name)
	}
	a.e.runMu.Unlock()
	a.e.done.Wait()
	died := time.Now()
	waitUntil(t, "B to take over", func() bool { return b.leaderOnly.running.Load() == 1 })
	if d := time.Since(died); d > 3*time.Second {
		t.Errorf("B took %s to take over a 1s lease", d)
	}
	_ = a.e.store.Close()

	// C joins; B shuts down properly: C leads at once, not after the lease.
	c := startInstanceEngine(t, dsn, &live, &maxLive)
	t.Cleanup(func() { _ = c.e.Destruct() })
	if err := b.e.Destruct(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "C to take over from B", func() bool { return c.leaderOnly.running.Load() == 1 })
	if m := maxLive.Load(); m != 1 {
		t.Fatalf("%d copies of the leader's work ran at once, want 1", m)
	}
}
