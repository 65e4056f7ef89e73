package caddymodule

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/sign"
	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/store/bolt"
	"github.com/caddy-checkout/checkout/templates"
)

// watcherProvider is a provider with background work that counts its
// runs, and with live (shared by the providers of one test) how many
// copies run at once.
type watcherProvider struct {
	running, stopped atomic.Int32
	live, maxLive    *atomic.Int32
}

func (*watcherProvider) Name() string { return "watcher" }
func (*watcherProvider) Start(context.Context, provider.Payment) (provider.Start, error) {
	return provider.Start{}, nil
}
func (p *watcherProvider) Run(ctx context.Context) error {
	if p.live != nil {
		n := p.live.Add(1)
		for m := p.maxLive.Load(); n > m && !p.maxLive.CompareAndSwap(m, n); m = p.maxLive.Load() {
		}
		defer p.live.Add(-1)
	}
	p.running.Add(1)
	<-ctx.Done()
	p.stopped.Add(1)
	return nil
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestProviderRunnersFollowTheRunningConfig: a site's background work
// (chain watchers) starts only once the engine runs (never for a config
// that is only validated), starts at once for a site registered later
// (a reload), and stops when its site goes.
func TestProviderRunnersFollowTheRunningConfig(t *testing.T) {
	e := newBoltEngine(filepath.Join(t.TempDir(), "checkout.db"))
	secret, _ := sign.ParseSecret(sign.NewSecret())
	pages, _ := templates.New("", nil)
	newSite := func(name string, p provider.Provider) *handlers.Site {
		s, err := handlers.New(handlers.Config{Site: name, Secret: secret, Store: e.store, Pages: pages, Providers: []provider.Provider{p}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := &watcherProvider{}
	s1 := newSite("one", first)
	e.register(s1)
	time.Sleep(20 * time.Millisecond)
	if first.running.Load() != 0 {
		t.Fatal("a runner started before the engine did (as during caddy validate)")
	}
	if err := e.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Destruct() })
	waitUntil(t, "the first site's runner", func() bool { return first.running.Load() == 1 })

	second := &watcherProvider{}
	s2 := newSite("one", second) // a reload: the new config's site
	e.register(s2)
	if err := e.start(); err != nil { // the new config's Start
		t.Fatal(err)
	}
	waitUntil(t, "the reloaded site's runner", func() bool { return second.running.Load() == 1 })
	if first.stopped.Load() != 1 {
		t.Fatal("the new config's runner started while the old one's still ran")
	}
	e.unregister(s1) // the old config's Cleanup
	if second.stopped.Load() != 0 || first.running.Load() != 1 {
		t.Fatalf("runs: first %d/%d, second %d/%d", first.running.Load(), first.stopped.Load(), second.running.Load(), second.stopped.Load())
	}
	if err := e.Destruct(); err != nil {
		t.Fatal(err)
	}
	if second.stopped.Load() != 1 {
		t.Fatal("Destruct left a runner going")
	}
}

// TestReloadHandsBackgroundWorkOver: over many reloads, one of them
// failing, the background work of a site name never runs twice at once,
// and a failed reload leaves the old config's work running.
func TestReloadHandsBackgroundWorkOver(t *testing.T) {
	e := newBoltEngine(filepath.Join(t.TempDir(), "checkout.db"))
	secret, _ := sign.ParseSecret(sign.NewSecret())
	pages, _ := templates.New("", nil)
	var live, maxLive atomic.Int32
	load := func() (*handlers.Site, *watcherProvider) {
		p := &watcherProvider{live: &live, maxLive: &maxLive}
		s, err := handlers.New(handlers.Config{Site: "shop", Secret: secret, Store: e.store, Pages: pages, Providers: []provider.Provider{p}})
		if err != nil {
			t.Fatal(err)
		}
		e.register(s)
		if err := e.start(); err != nil {
			t.Fatal(err)
		}
		return s, p
	}
	t.Cleanup(func() { _ = e.Destruct() })
	cur, p := load()
	for range 20 {
		next, np := load()
		e.unregister(cur) // the old config goes
		cur, p = next, np
	}
	waitUntil(t, "the last config's runner", func() bool { return p.running.Load() == 1 })
	// A reload that fails: the new site registered and started, then
	// removed; the current one's work runs again.
	failed, fp := load()
	waitUntil(t, "the failed config's runner", func() bool { return fp.running.Load() == 1 })
	e.unregister(failed)
	waitUntil(t, "the current config's runner to resume", func() bool { return p.running.Load() == 2 })
	if fp.stopped.Load() != 1 {
		t.Fatal("the failed config's runner still runs")
	}
	if m := maxLive.Load(); m != 1 {
		t.Fatalf("%d copies of the background work ran at once, want 1", m)
	}
}

func newBoltEngine(path string) *engine {
	open := func() (store.Store, error) { return bolt.Open(path, bolt.Options{}) }
	return newEngine(path, open, 0, slog.Default(), zap.NewNop())
}
