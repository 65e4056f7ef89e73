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
	"github.com/caddy-checkout/checkout/templates"
)

// watcherProvider is a provider with background work that counts its
// runs.
type watcherProvider struct {
	running, stopped atomic.Int32
}

func (*watcherProvider) Name() string { return "watcher" }
func (*watcherProvider) Start(context.Context, provider.Payment) (provider.Start, error) {
	return provider.Start{}, nil
}
func (p *watcherProvider) Run(ctx context.Context) error {
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
	e := newEngine(filepath.Join(t.TempDir(), "checkout.db"), slog.Default(), zap.NewNop())
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
	waitUntil(t, "the reloaded site's runner", func() bool { return second.running.Load() == 1 })
	e.unregister(s1)
	waitUntil(t, "the old site's runner to stop", func() bool { return first.stopped.Load() == 1 })
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
