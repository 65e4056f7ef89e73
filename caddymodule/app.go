// Package caddymodule registers caddy-checkout with Caddy: the checkout app
// (storage and background work), the http.handlers.checkout site handler,
// the admin.api.checkout operator endpoints, the Caddyfile syntax and the
// `caddy checkout` commands. It only adapts; the logic lives in handlers,
// order, store, notify and the providers.
package caddymodule

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/store/bolt"
	"github.com/caddy-checkout/checkout/store/postgres"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the checkout app: where orders and the callback outbox are
// stored, and the background work shared by every site (callback
// delivery, expiry, the reconciler). It is optional in the config: a
// `checkout` handler brings it in with its defaults.
type App struct {
	// Storage is where orders and the outbox live. Default: a bbolt file
	// at <caddy data dir>/checkout/checkout.db.
	Storage *Storage `json:"storage,omitempty"`

	// ReconcileAfter is how long an attempt may wait at its provider
	// before the reconciler asks the provider about it, healing lost
	// webhooks. Default 10m.
	ReconcileAfter caddy.Duration `json:"reconcile_after,omitempty"`

	// CallbackRetryFor is how long a shop callback that fails is retried
	// before it is given up (dead-lettered, logged at error level and
	// counted in caddy_checkout_deliveries_dead_total). Default 72h.
	CallbackRetryFor caddy.Duration `json:"callback_retry_for,omitempty"`

	engine *engine
	log    *zap.Logger

	// sites are the site names this config's handlers took, with their
	// settings, so that two different handlers never share one by accident.
	sites siteClaims
}

// siteClaims maps a site name to the settings of the handler that took it.
type siteClaims struct {
	mu    *sync.Mutex
	names map[string][]byte
}

// claimSite records that a handler of this config serves site name with
// these settings (its JSON). Handlers with identical settings share the
// site; different settings under one name are refused, since they would
// share orders without meaning to.
func (a *App) claimSite(name string, settings []byte) error {
	if a.sites.mu == nil {
		return fmt.Errorf("checkout app not provisioned")
	}
	a.sites.mu.Lock()
	defer a.sites.mu.Unlock()
	if prev, ok := a.sites.names[name]; ok && !bytes.Equal(prev, settings) {
		return fmt.Errorf("site %q: two checkout handlers with different settings have this name and would share orders; "+
			"give each its own site name (site <name>) or public_url", name)
	}
	a.sites.names[name] = settings
	return nil
}

// Storage chooses the store: "bolt" (the default, one instance) or
// "postgres" (any number of instances sharing one database).
type Storage struct {
	// Module is the kind of store: "bolt" or "postgres".
	Module string `json:"module"`
	// Path is the bbolt file. Default: <caddy data dir>/checkout/checkout.db.
	Path string `json:"path,omitempty"`
	// DSN is the PostgreSQL connection string (postgres://user:pass@host:5432/db?sslmode=…).
	// Placeholders such as {env.CHECKOUT_DATABASE_URL} are replaced when
	// the config is loaded, so the config itself need not hold the password.
	DSN string `json:"dsn,omitempty"`
	// ClaimLease (postgres) is how long a callback an instance is trying
	// stays its own before another instance may take it over. Default 10s.
	ClaimLease caddy.Duration `json:"claim_lease,omitempty"`
	// LeaderLease (postgres) is how long the leader's lease runs unless
	// renewed: a dead leader's work moves within it. Default 10s.
	LeaderLease caddy.Duration `json:"leader_lease,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "checkout",
		New: func() caddy.Module { return new(App) },
	}
}

// DefaultStorePath is where the bbolt store lives unless configured.
func DefaultStorePath() string {
	return filepath.Join(caddy.AppDataDir(), "checkout", "checkout.db")
}

// Provision sets up the app. The store file is not opened here but on
// first use, so that `caddy validate` never waits for the lock a running
// Caddy holds.
func (a *App) Provision(ctx caddy.Context) error {
	a.log = ctx.Logger()
	a.sites = siteClaims{mu: new(sync.Mutex), names: map[string][]byte{}}
	st := a.Storage
	if st == nil {
		st = &Storage{Module: "bolt"}
	}
	key, open, err := st.opener()
	if err != nil {
		return err
	}
	reconcile := caddyDur(a.ReconcileAfter, defaultReconcileAfter)
	leader := time.Duration(st.LeaderLease)
	val, _, err := engines.LoadOrNew(key, func() (caddy.Destructor, error) {
		return newEngine(key, open, leader, ctx.Slogger(), a.log), nil
	})
	if err != nil {
		return err
	}
	a.engine = val.(*engine)
	a.engine.setReconcileAfter(reconcile)
	a.engine.notifier.SetHorizon(time.Duration(a.CallbackRetryFor))
	if reg := ctx.GetMetricsRegistry(); reg != nil {
		if err := reg.Register(collector{a.engine}); err != nil {
			var dup prometheus.AlreadyRegisteredError
			if !errors.As(err, &dup) {
				return fmt.Errorf("registering checkout metrics: %v", err)
			}
		}
	}
	return nil
}

// Start starts the shared background work (once per store, whatever the
// number of config reloads).
func (a *App) Start() error { return a.engine.start() }

// Stop leaves the background work to the next config; it ends when the
// last config using the store is cleaned up.
func (a *App) Stop() error { return nil }

// Cleanup releases this config's hold on the store.
func (a *App) Cleanup() error {
	if a.engine == nil {
		return nil
	}
	_, err := engines.Delete(a.engine.key)
	return err
}

// opener checks the storage settings without touching the store, and
// returns the key of its engine and how to open it. The key of a
// PostgreSQL store is a digest of its connection string, never the string.
func (st *Storage) opener() (string, func() (store.Store, error), error) {
	switch st.Module {
	case "bolt", "":
		if st.DSN != "" || st.ClaimLease != 0 || st.LeaderLease != 0 {
			return "", nil, fmt.Errorf("storage bolt: dsn, claim_lease and leader_lease belong to storage postgres")
		}
		path := st.Path
		if path == "" {
			path = DefaultStorePath()
		}
		path, err := filepath.Abs(path)
		if err != nil {
			return "", nil, fmt.Errorf("storage path: %v", err)
		}
		return path, func() (store.Store, error) { return bolt.Open(path, bolt.Options{}) }, nil
	case "postgres":
		if st.Path != "" {
			return "", nil, fmt.Errorf("storage postgres: path belongs to storage bolt; give the connection string as dsn")
		}
		if st.ClaimLease < 0 || st.LeaderLease < 0 {
			return "", nil, fmt.Errorf("storage postgres: claim_lease and leader_lease must not be negative")
		}
		if st.LeaderLease != 0 && time.Duration(st.LeaderLease) < time.Second {
			return "", nil, fmt.Errorf("storage postgres: leader_lease must be at least 1s")
		}
		dsn := caddy.NewReplacer().ReplaceAll(st.DSN, "")
		if strings.TrimSpace(dsn) == "" {
			if st.DSN != "" {
				return "", nil, fmt.Errorf("storage postgres: the connection string %s is empty once its placeholders are replaced: is the variable set?", st.DSN)
			}
			return "", nil, fmt.Errorf("storage postgres: a connection string is required (storage postgres postgres://user:pass@host:5432/db)")
		}
		if _, err := postgres.ParseDSN(dsn); err != nil {
			return "", nil, fmt.Errorf("storage postgres: %v", err)
		}
		sum := sha256.Sum256([]byte(dsn))
		opts := postgres.Options{ClaimLease: time.Duration(st.ClaimLease)}
		return "postgres:" + hex.EncodeToString(sum[:]), func() (store.Store, error) {
			// Long enough to wait for another instance's migration.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			return postgres.Open(ctx, dsn, opts)
		}, nil
	}
	return "", nil, fmt.Errorf("storage %q: unknown store (want bolt or postgres)", st.Module)
}

var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
