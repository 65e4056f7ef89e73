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

	mu sync.RWMutex
	// sites are the sites of each name in the order their configs
	// registered them; the last is the current one. A reload appends the
	// new config's site and its Cleanup removes the old one; a reload that
	// fails removes the new one, and the old is current again.
	sites   map[string][]*handlers.Site
	running bool // start has run

	// runMu serialises handovers of the providers' background work. It
	// is taken before mu, never while mu is held.
	runMu sync.Mutex
	runs  map[string]*siteRun // by site name: at most one site's runners at a time

	startOnce sync.Once
	cancel    context.CancelFunc
	done      sync.WaitGroup
}

// siteRun is one site's running provider work.
type siteRun struct {
	site   *handlers.Site
	cancel context.CancelFunc
	done   chan struct{} // closed when every runner of the site returned
}

func newEngine(path string, slogger *slog.Logger, log *zap.Logger) *engine {
	e := &engine{path: path, store: &lazyStore{path: path}, log: log, metrics: newMetrics(), sites: map[string][]*handlers.Site{},
		runs: map[string]*siteRun{}}
	e.notifier = notify.New(notify.Config{
		Store:  e.store,
		Sites:  e.secret,
		Logger: slogger,
	})
	return e
}

func (e *engine) setReconcileAfter(d time.Duration) { e.reconcileAfter.Store(int64(d)) }

func (e *engine) secret(site string) (sign.Secret, bool) {
	s, ok := e.site(site)
	if !ok {
		return sign.Secret{}, false
	}
	return s.Secret(), true
}

// register adds s, the site of a config being loaded, as the current site
// of its name. Its providers' background work starts with the engine's
// next start (the new config's Start; never for a config that is only
// validated), which hands it over from the previous site of that name.
func (e *engine) register(s *handlers.Site) {
	e.mu.Lock()
	e.sites[s.Name()] = append(e.sites[s.Name()], s)
	e.mu.Unlock()
}

// unregister removes s (its config is gone, or failed to start) and stops
// its providers' background work; when an earlier site of its name is
// current again (a reload that failed), that one's work resumes.
func (e *engine) unregister(s *handlers.Site) {
	e.mu.Lock()
	list := e.sites[s.Name()]
	for i, x := range list {
		if x == s {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(e.sites, s.Name())
	} else {
		e.sites[s.Name()] = list
	}
	e.mu.Unlock()
	e.handover(s.Name())
}

// handover makes the background work of the site name the current site's
// and no other's: the running work of an older site stops, and has
// returned, before the current site's starts, so that two copies never run
// at once (one chain watcher, one XMPP login per account). It does nothing
// before the engine starts.
func (e *engine) handover(name string) {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	cur, ok := e.site(name)
	e.mu.RLock()
	running := e.running
	e.mu.RUnlock()
	if run := e.runs[name]; run != nil {
		if ok && run.site == cur && running {
			return
		}
		run.cancel()
		<-run.done
		delete(e.runs, name)
	}
	if !ok || !running {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &siteRun{site: cur, cancel: cancel, done: make(chan struct{})}
	e.runs[name] = run
	var wg sync.WaitGroup
	for _, r := range cur.Runners() {
		wg.Add(1)
		e.done.Add(1)
		go func() {
			defer e.done.Done()
			defer wg.Done()
			if err := r.Run(ctx); err != nil && ctx.Err() == nil {
				e.log.Error("provider background work stopped", zap.String("site", name), zap.Error(err))
			}
		}()
	}
	go func() {
		wg.Wait()
		close(run.done)
	}()
}

func (e *engine) site(name string) (*handlers.Site, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	list := e.sites[name]
	if len(list) == 0 {
		return nil, false
	}
	return list[len(list)-1], true
}

func (e *engine) allSites() []*handlers.Site {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]*handlers.Site, 0, len(e.sites))
	for _, list := range e.sites {
		out = append(out, list[len(list)-1])
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
	names := make([]string, 0, len(e.sites))
	for name := range e.sites {
		names = append(names, name)
	}
	e.mu.Unlock()
	for _, name := range names {
		e.handover(name)
	}
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
	e.running = false
	e.mu.Unlock()
	e.runMu.Lock()
	for name, run := range e.runs {
		run.cancel()
		<-run.done
		delete(e.runs, name)
	}
	e.runMu.Unlock()
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
