// The payment side of one site: its settings and what it is told of.
package payments

import (
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/store"
)

// Config is a site's payment settings, already validated.
type Config struct {
	Site      string // names the site in order keys
	BasePath  string // "/_checkout", for the URLs given to providers
	PublicURL string // "https://shop.example.com"; empty: the Origin's
	Callback  string // the shop's callback URL; empty: no callbacks
	Expire    time.Duration
	Providers []provider.Provider
	Store     store.Store
	Logger    *zap.Logger
	Now       func() time.Time
	// Wake is called after outbox rows were committed, so that the
	// notifier sends them now rather than at its next poll.
	Wake func()
	// Observer is told of state changes, for metrics.
	Observer Observer
	// OnChange is told of every order whose state moved or whose attempt
	// failed, for live pages. It MUST NOT block.
	OnChange func(*order.Order)
	// RetainPersonal is how long an order keeps its customer's data once
	// it is final (Retain); 0 keeps it for as long as the order.
	RetainPersonal time.Duration
	// KeepMetadata names the metadata keys of an order that are the
	// plugin's own, not the customer's, and survive Retain. Nil: none.
	KeepMetadata func(o *order.Order, key string) bool
}

// Observer counts what happens to orders. Implementations MUST be safe
// for concurrent use and MUST NOT block.
type Observer interface {
	// Moved: an order entered state to (pending on creation), through
	// provider ("" when none was chosen yet).
	Moved(site, provider string, to order.State)
}

type noObserver struct{}

func (noObserver) Moved(string, string, order.State) {}

// Origin is what a request says about how to reach the site: the public
// URL (scheme and host) the customer used, and the customer's language.
// The zero Origin is for work outside a request (a watcher, the
// reconciler): Config.PublicURL, or http://localhost, and the default
// language.
type Origin struct {
	Public string // "https://shop.example.com"
	Locale string // "en", "ja"
}

// Site is one site's payment logic. It is safe for concurrent use.
type Site struct {
	cfg       Config
	providers map[string]provider.Provider
	log       *zap.Logger
	now       func() time.Time

	// refunding serialises the site's refunds in this process, so that
	// requests that arrived together are asked one after the other and
	// the later ones find the first recorded (Refund).
	refunding sync.Mutex
}

// New builds the site's payment logic from cfg.
func New(cfg Config) (*Site, error) {
	if cfg.Site == "" || cfg.Store == nil {
		return nil, errors.New("payments: a site name and a store are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Wake == nil {
		cfg.Wake = func() {}
	}
	if cfg.Observer == nil {
		cfg.Observer = noObserver{}
	}
	if cfg.OnChange == nil {
		cfg.OnChange = func(*order.Order) {}
	}
	s := &Site{cfg: cfg, providers: map[string]provider.Provider{}, log: cfg.Logger, now: cfg.Now}
	for _, p := range cfg.Providers {
		s.providers[p.Name()] = p
	}
	return s, nil
}

// url is the absolute URL of one of the site's routes, for org.
func (s *Site) url(org Origin, path string) string {
	base := s.cfg.PublicURL
	if base == "" {
		base = org.Public
	}
	if base == "" {
		base = "http://localhost"
	}
	return base + s.cfg.BasePath + path
}
