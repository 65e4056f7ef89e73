// Package caddymodule registers caddy-checkout with Caddy: the checkout app
// (storage and background work), the http.handlers.checkout site handler,
// the admin.api.checkout operator endpoints, the Caddyfile syntax and the
// `caddy checkout` commands. It only adapts; the logic lives in handlers,
// order, store, notify and the providers.
package caddymodule

import (
	"errors"
	"fmt"
	"path/filepath"

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
