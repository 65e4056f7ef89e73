// Package notify delivers the shop callbacks of SPEC §6.1: it reads the
// outbox that the store writes together with each order state change, and
// POSTs every delivery to the shop as a Standard Webhooks message, retried
// with backoff and jitter for the retry horizon, then dead-lettered.
// Delivery is at least once: the webhook-id (the delivery's ID) is the
// same on every try, so the shop deduplicates on it.
//
// This file holds the configuration and the Notifier itself; one try is in
// try.go, the schedule in backoff.go, the loop in run.go.
package notify

import (
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-checkout/checkout/sign"
	"github.com/caddy-checkout/checkout/store"
)

// Defaults of Config.
const (
	DefaultTimeout = 15 * time.Second // Standard Webhooks: 15-30 s; Svix counts only 2xx within 15 s
	DefaultHorizon = 72 * time.Hour   // SPEC §6.1: retried for 3 days
	DefaultWorkers = 16
)

// Config is what a Notifier needs. Store and Sites are required.
type Config struct {
	// Store is the outbox: deliveries are read with Due and written back
	// with SaveDelivery after every try.
	Store store.Store

	// Sites returns the current callback secret of a site. It is asked
	// at every try, not once, so that a config reload that rotates a
	// secret applies to the next try. A site it does not know (removed
	// from the config) makes the try fail with "site no longer
	// configured"; the delivery is retried later, so that putting the
	// site back in time still delivers it. It is called from several
	// goroutines at once.
	Sites func(site string) (secret sign.Secret, ok bool)

	// Client sends the callbacks. Default: a client with a 15 s timeout.
	// Redirects are never followed, whatever client is given: a 3xx is a
	// failed try (Standard Webhooks: the shop should update the URL), and
	// following it would let a shop point the plugin at any address.
	Client *http.Client

	// Now is the clock (default time.Now); tests drive time with it. It
	// is called from several goroutines at once.
	Now func() time.Time

	// Rand returns a number in [0, 1) for the jitter of the retry
	// schedule (default math/rand/v2's Float64). It is called from
	// several goroutines at once.
	Rand func() float64

	// Horizon is how long a delivery is retried, counted from its
	// RetryFrom (its creation, or the last operator retry), before it is
	// dead-lettered. Default 72 h.
	Horizon time.Duration

	// Workers is how many tries may be in flight at once (default 16).
	// A shop that hangs holds one worker until the client timeout; the
	// others keep delivering other orders' callbacks.
	Workers int

	// Logger receives one line per try outcome. Lines carry the
	// delivery id, order id, site, type, status code, try number, next
	// time and a redacted error text; never a URL, secret, signature or
	// body. Default: discard.
	Logger *slog.Logger
}

// Notifier sends the outbox's deliveries to the shops. Make one with New;
// then call Run in the background (or Tick, in tests), and Wake after
// committing a new delivery. Its methods are safe for concurrent use.
type Notifier struct {
	store   store.Store
	sites   func(string) (sign.Secret, bool)
	client  *http.Client
	now     func() time.Time
	rand    func() float64
	horizon atomic.Int64 // a time.Duration; SetHorizon changes it
	workers int
	log     *slog.Logger
	// tryTimeout bounds a try when the given client has no timeout of
	// its own, so that a hung shop cannot hold a worker (or shutdown)
	// forever.
	tryTimeout time.Duration

	wake  chan struct{} // capacity 1: a pending nudge for Run
	slots chan struct{} // semaphore of Workers: one token per try in flight

	mu       sync.Mutex
	inflight map[string]struct{} // delivery ids being tried or retried by an operator

	running atomic.Bool
	stats   counters
}

// New returns a Notifier for cfg, with defaults filled in. It panics when
// Store or Sites is missing: that is a programming error, not a
// configuration one.
func New(cfg Config) *Notifier {
	if cfg.Store == nil || cfg.Sites == nil {
		panic("notify: Config.Store and Config.Sites are required")
	}
	n := &Notifier{
		store:    cfg.Store,
		sites:    cfg.Sites,
		now:      cfg.Now,
		rand:     cfg.Rand,
		workers:  cfg.Workers,
		log:      cfg.Logger,
		wake:     make(chan struct{}, 1),
		inflight: make(map[string]struct{}),
	}
	if n.now == nil {
		n.now = time.Now
	}
	if n.rand == nil {
		n.rand = rand.Float64
	}
	n.SetHorizon(cfg.Horizon)
	if n.workers <= 0 {
		n.workers = DefaultWorkers
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.slots = make(chan struct{}, n.workers)

	// A copy, so that turning redirects off does not change a client the
	// caller shares with other code.
	c := http.Client{Timeout: DefaultTimeout}
	if cfg.Client != nil {
		c = *cfg.Client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	n.client = &c
	if c.Timeout <= 0 {
		n.tryTimeout = DefaultTimeout
	}
	return n
}

// Wake tells Run that a delivery may have become due (the core calls it
// after committing one), so that it is tried now rather than at the next
// poll. It never blocks.
func (n *Notifier) Wake() {
	select {
	case n.wake <- struct{}{}:
	default: // a nudge is already pending; one is enough
	}
}

// claim marks a delivery as taken, so that neither the loop nor an
// operator retry touches it twice at once. It reports false when it is
// already taken.
func (n *Notifier) claim(id string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.inflight[id]; ok {
		return false
	}
	n.inflight[id] = struct{}{}
	return true
}

func (n *Notifier) release(id string) {
	n.mu.Lock()
	delete(n.inflight, id)
	n.mu.Unlock()
}

func (n *Notifier) inflightLen() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.inflight)
}

// SetHorizon changes how long a failed delivery is retried, counted from
// its RetryFrom, for the tries that follow; 0 or less is DefaultHorizon.
// A config reload calls it.
func (n *Notifier) SetHorizon(d time.Duration) {
	if d <= 0 {
		d = DefaultHorizon
	}
	n.horizon.Store(int64(d))
}

// Horizon is how long a failed delivery is retried.
func (n *Notifier) Horizon() time.Duration { return time.Duration(n.horizon.Load()) }
