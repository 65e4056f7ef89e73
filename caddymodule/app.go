// Package caddymodule registers caddy-checkout with Caddy: the checkout app
// (storage and background work), the http.handlers.checkout site handler,
// the admin.api.checkout operator endpoints, the Caddyfile syntax and the
// `caddy checkout` commands. It only adapts; the logic lives in handlers,
// order, store, notify and the providers.
package caddymodule

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
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

// Storage chooses the store. Module "bolt" is the only one so far.
type Storage struct {
	// Module is the kind of store: "bolt".
	Module string `json:"module"`
	// Path is the bbolt file. Default: <caddy data dir>/checkout/checkout.db.
	Path string `json:"path,omitempty"`
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
	switch st.Module {
	case "bolt", "":
	case "postgres":
		return fmt.Errorf("storage postgres: not available in this build yet; use storage bolt")
	default:
		return fmt.Errorf("storage %q: unknown store (want bolt)", st.Module)
	}
	path := st.Path
	if path == "" {
		path = DefaultStorePath()
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("storage path: %v", err)
	}
	reconcile := caddyDur(a.ReconcileAfter, defaultReconcileAfter)
	val, _, err := engines.LoadOrNew(path, func() (caddy.Destructor, error) {
		return newEngine(path, ctx.Slogger(), a.log), nil
	})
	if err != nil {
		return err
	}
	a.engine = val.(*engine)
	a.engine.setReconcileAfter(reconcile)
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
	_, err := engines.Delete(a.engine.path)
	return err
}

var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
