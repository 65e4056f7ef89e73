// The engine is what outlives config reloads: the open store, the callback
// notifier, the expiry and reconcile loops, and the registry of sites. It
// lives in a caddy.UsagePool keyed by the store path, because bbolt holds
// an exclusive lock and Caddy provisions a new config before it cleans up
// the old one.
package caddymodule

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/notify"
	"github.com/caddy-checkout/checkout/sign"
)

var engines = caddy.NewUsagePool()

// active is the engine the admin API talks to (the most recently started).
var active atomic.Pointer[engine]

const (
	defaultReconcileAfter = 10 * time.Minute
	expiryEvery           = 15 * time.Second
	reconcileEvery        = time.Minute
)

type engine struct {
	path     string
	store    *lazyStore
	notifier *notify.Notifier
	metrics  *metrics
	log      *zap.Logger

	reconcileAfter atomic.Int64

	mu      sync.RWMutex
	sites   map[string]*handlers.Site
	running bool                                  // start has run
	runs    map[*handlers.Site]context.CancelFunc // the sites' provider runners (chain watchers)

	startOnce sync.Once
	cancel    context.CancelFunc
	done      sync.WaitGroup
}

func newEngine(path string, slogger *slog.Logger, log *zap.Logger) *engine {
	e := &engine{path: path, store: &lazyStore{path: path}, log: log, metrics: newMetrics(), sites: map[string]*handlers.Site{},
		runs: map[*handlers.Site]context.CancelFunc{}}
	e.notifier = notify.New(notify.Config{
		Store:  e.store,
		Sites:  e.secret,
		Logger: slogger,
	})
	return e
}

func (e *engine) setReconcileAfter(d time.Duration) { e.reconcileAfter.Store(int64(d)) }

func (e *engine) secret(site string) (sign.Secret, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	s, ok := e.sites[site]
	if !ok {
		return sign.Secret{}, false
	}
	return s.Secret(), true
}

// register makes s the current site of its name (a reload replaces it).
// Its providers' background work starts now if the engine runs, else when
// it starts (never for a config that is only validated).
func (e *engine) register(s *handlers.Site) {
	e.mu.Lock()
	e.sites[s.Name()] = s
	if e.running {
		e.runLocked(s)
	}
	e.mu.Unlock()
}

// unregister removes s unless a newer config already replaced it, and
// stops its providers' background work.
func (e *engine) unregister(s *handlers.Site) {
	e.mu.Lock()
	if e.sites[s.Name()] == s {
		delete(e.sites, s.Name())
	}
	if stop, ok := e.runs[s]; ok {
		stop()
		delete(e.runs, s)
	}
	e.mu.Unlock()
}

// runLocked starts the provider runners of s. e.mu must be held.
func (e *engine) runLocked(s *handlers.Site) {
	if _, ok := e.runs[s]; ok {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.runs[s] = cancel
	for _, r := range s.Runners() {
		e.done.Add(1)
		go func() {
			defer e.done.Done()
			if err := r.Run(ctx); err != nil && ctx.Err() == nil {
				e.log.Error("provider background work stopped", zap.String("site", s.Name()), zap.Error(err))
			}
		}()
	}
}

func (e *engine) site(name string) (*handlers.Site, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	s, ok := e.sites[name]
	return s, ok
}

func (e *engine) allSites() []*handlers.Site {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]*handlers.Site, 0, len(e.sites))
	for _, s := range e.sites {
		out = append(out, s)
	}
	return out
}

func (e *engine) start() error {
	if err := e.store.open(); err != nil {
		return err
	}
	active.Store(e)
	e.startOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		e.cancel = cancel
		e.done.Add(2)
		go func() {
			defer e.done.Done()
			_ = e.notifier.Run(ctx)
		}()
		go func() {
			defer e.done.Done()
			e.maintain(ctx)
		}()
	})
	e.mu.Lock()
	e.running = true
	for _, s := range e.sites {
		e.runLocked(s)
	}
	e.mu.Unlock()
	return nil
}

// maintain expires overdue orders and reconciles stale attempts.
func (e *engine) maintain(ctx context.Context) {
	expiry := time.NewTicker(expiryEvery)
	defer expiry.Stop()
	reconcile := time.NewTicker(reconcileEvery)
	defer reconcile.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-expiry.C:
			for _, s := range e.allSites() {
				if _, err := s.Expire(ctx, 200); err != nil {
					e.log.Error("expiring orders", zap.String("site", s.Name()), zap.Error(err))
				}
			}
		case <-reconcile.C:
			age := time.Duration(e.reconcileAfter.Load())
			for _, s := range e.allSites() {
				if _, err := s.Reconcile(ctx, age, 500); err != nil {
					e.log.Error("reconciling orders", zap.String("site", s.Name()), zap.Error(err))
				}
			}
		}
	}
}

// Destruct stops the background work and closes the store, when the last
// config using it is gone.
func (e *engine) Destruct() error {
	if e.cancel != nil {
		e.cancel()
	}
	e.mu.Lock()
	for s, stop := range e.runs {
		stop()
		delete(e.runs, s)
	}
	e.mu.Unlock()
	e.done.Wait()
	active.CompareAndSwap(e, nil)
	return e.store.Close()
}

func caddyDur(d caddy.Duration, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return time.Duration(d)
}
