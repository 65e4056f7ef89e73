// The engine is what outlives config reloads: the open store, the callback
// notifier, the expiry and reconcile loops, and the registry of sites. It
// lives in a caddy.UsagePool keyed by the store (the bbolt path, or the
// PostgreSQL connection string's digest), because bbolt holds an exclusive
// lock and Caddy provisions a new config before it cleans up the old one.
//
// Where the store is shared by several instances (store.Leaser), the work
// that must run once (expiry, reconciling, providers' runners such as a
// chain watcher) runs on the instance holding the leader lease, and each
// instance follows the others' changes for its live pages (store.Watcher).
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
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/sign"
	"github.com/caddy-checkout/checkout/store"
)

var engines = caddy.NewUsagePool()

// active is the engine the admin API talks to (the most recently started).
var active atomic.Pointer[engine]

const (
	defaultReconcileAfter = 10 * time.Minute
	expiryEvery           = 15 * time.Second
	reconcileEvery        = time.Minute
	// retainBatch bounds the orders a site's retention pass erases every
	// expiryEvery: 500 each 15 s is 2.9 million a day, far more than any
	// shop finishes, so a backlog (retain_personal just turned on) drains
	// without a long write.
	retainBatch = 500
	// DefaultLeaderLease is how long a leader's lease runs unless renewed
	// (every third of it): a dead leader's work is taken over within it.
	DefaultLeaderLease = 10 * time.Second
	leaderLeaseName    = "checkout/leader"
)

type engine struct {
	key      string // in engines
	store    *lazyStore
	notifier *notify.Notifier
	metrics  *metrics
	log      *zap.Logger

	reconcileAfter atomic.Int64

	// leaderLease is the lease's length where the store is shared; holder
	// is this process's name in it. leading is whether this instance does
	// the work that runs once (always, with a store of its own).
	leaderLease time.Duration
	holder      string
	leading     atomic.Bool

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
	runs  map[string]*siteRun // by site name (and group): at most one site's runners at a time

	startOnce sync.Once
	cancel    context.CancelFunc
	done      sync.WaitGroup
}

// siteRun is one site's running provider work.
type siteRun struct {
	site   *handlers.Site
	cancel context.CancelFunc
	done   chan struct{} // closed when every runner of the group returned
}

// newEngine makes the engine of the store that open opens. leaderLease
// applies where that store is shared.
func newEngine(key string, open func() (store.Store, error), leaderLease time.Duration, slogger *slog.Logger, log *zap.Logger) *engine {
	if leaderLease <= 0 {
		leaderLease = DefaultLeaderLease
	}
	e := &engine{key: key, store: &lazyStore{opener: open}, log: log, metrics: newMetrics(), sites: map[string][]*handlers.Site{},
		runs: map[string]*siteRun{}, leaderLease: leaderLease, holder: order.NewRef()}
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
// before the engine starts. A site's runners are two groups: those of
// every instance (provider.EveryInstance), and the rest, which run only
// while this instance leads; a change of leader starts or stops the second
// group and leaves the first alone.
func (e *engine) handover(name string) {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	cur, ok := e.site(name)
	e.mu.RLock()
	running := e.running
	e.mu.RUnlock()
	leading := e.leading.Load()
	for _, leaderOnly := range []bool{false, true} {
		key := name
		if leaderOnly {
			key += "\x00leader"
		}
		want := ok && running && (leading || !leaderOnly)
		if run := e.runs[key]; run != nil {
			if want && run.site == cur {
				continue
			}
			run.cancel()
			<-run.done
			delete(e.runs, key)
		}
		if !want {
			continue
		}
		var group []provider.Runner
		for _, r := range cur.Runners() {
			if _, everywhere := r.(provider.EveryInstance); everywhere != leaderOnly {
				group = append(group, r)
			}
		}
		e.runs[key] = e.runGroup(name, cur, group)
	}
}

// runGroup starts runners of the site cur (named name) and returns their
// run.
func (e *engine) runGroup(name string, cur *handlers.Site, runners []provider.Runner) *siteRun {
	ctx, cancel := context.WithCancel(context.Background())
	run := &siteRun{site: cur, cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	for _, r := range runners {
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
	return run
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
		st := e.store.underlying()
		leaser, shared := st.(store.Leaser)
		if !shared {
			e.leading.Store(true) // the only instance
		}
		e.done.Add(2)
		go func() {
			defer e.done.Done()
			_ = e.notifier.Run(ctx)
		}()
		go func() {
			defer e.done.Done()
			e.maintain(ctx)
		}()
		if shared {
			e.done.Add(1)
			go func() {
				defer e.done.Done()
				e.lead(ctx, leaser)
			}()
		}
		if w, ok := st.(store.Watcher); ok {
			e.done.Add(1)
			go func() {
				defer e.done.Done()
				_ = w.Watch(ctx, e.changed)
			}()
		}
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

// lead takes and renews the leader lease until ctx is done, and moves the
// work that runs once here when this instance gets it and away when it
// loses it. Each renewal is bounded by a third of the lease, and an
// instance that has not renewed for two thirds of it steps down, however
// slow its database calls are, so it has stopped before another can take
// the lease (given clocks that run at the same rate). The lease is
// released by Destruct, once the work has stopped.
func (e *engine) lead(ctx context.Context, l store.Leaser) {
	ttl := e.leaderLease
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	var renewed time.Time
	for {
		asked := time.Now()
		cctx, cancel := context.WithTimeout(ctx, ttl/3)
		got, err := l.Lease(cctx, leaderLeaseName, e.holder, ttl)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if e.leading.Load() && time.Since(renewed) >= ttl*2/3 {
				e.log.Error("cannot renew the leader lease: stepping down", zap.Error(err))
				e.setLeading(false)
			}
		case got:
			renewed = asked
			if !e.leading.Load() {
				e.log.Info("this instance now leads: expiry, reconciling and chain watching run here")
				e.setLeading(true)
			}
		case e.leading.Load():
			e.log.Warn("another instance took the leader lease")
			e.setLeading(false)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (e *engine) setLeading(v bool) {
	e.leading.Store(v)
	for _, s := range e.allSites() {
		e.handover(s.Name())
	}
}

// changed tells the live pages of this instance that an order moved
// (any instance's change, from store.Watcher).
func (e *engine) changed(site string, refs []string) {
	if site == "" {
		for _, s := range e.allSites() {
			s.Changed(nil)
		}
		return
	}
	if s, ok := e.site(site); ok {
		s.Changed(refs)
	}
}

// maintain expires overdue orders and reconciles stale attempts, on the
// leader.
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
			if !e.leading.Load() {
				continue
			}
			for _, s := range e.allSites() {
				if _, err := s.Expire(ctx, 200); err != nil {
					e.log.Error("expiring orders", zap.String("site", s.Name()), zap.Error(err))
				}
				if _, err := s.Retain(ctx, retainBatch); err != nil {
					e.log.Error("erasing customer data (retain_personal)", zap.String("site", s.Name()), zap.Error(err))
				}
			}
		case <-reconcile.C:
			if !e.leading.Load() {
				continue
			}
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
	if l, ok := e.store.underlying().(store.Leaser); ok && e.leading.Load() {
		// The work has stopped: another instance may lead at once.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := l.Release(ctx, leaderLeaseName, e.holder); err != nil {
			e.log.Warn("releasing the leader lease", zap.Error(err))
		}
		cancel()
	}
	e.leading.Store(false)
	active.CompareAndSwap(e, nil)
	return e.store.Close()
}

func caddyDur(d caddy.Duration, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return time.Duration(d)
}
