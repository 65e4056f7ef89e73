package postgres_test

import (
	"context"
	"sync"
	"testing"

	"github.com/caddy-checkout/checkout/internal/pgtest"
	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/store/postgres"
	"github.com/caddy-checkout/checkout/store/storetest"
)

// TestConformance runs the store contract's suite against PostgreSQL,
// each test in a database of its own, and the tests of sharing with a
// second store on the same database, as a second instance has.
func TestConformance(t *testing.T) {
	pg := pgtest.Shared(t)
	dsns := map[store.Store]string{}
	openDSN := func(t testing.TB, dsn string) store.Store {
		s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	var mu sync.Mutex
	remember := func(s store.Store, dsn string) store.Store {
		mu.Lock()
		defer mu.Unlock()
		dsns[s] = dsn
		return s
	}
	dsnOf := func(s store.Store) string {
		mu.Lock()
		defer mu.Unlock()
		return dsns[s]
	}
	storetest.Run(t, storetest.Factory{
		New: func(t testing.TB) store.Store {
			dsn := pg.NewDatabase(t)
			return remember(openDSN(t, dsn), dsn)
		},
		Reopen: func(t testing.TB, s store.Store) store.Store {
			dsn := dsnOf(s)
			_ = s.Close()
			return remember(openDSN(t, dsn), dsn)
		},
		Second: func(t testing.TB, s store.Store) store.Store {
			dsn := dsnOf(s)
			return remember(openDSN(t, dsn), dsn)
		},
	})
}
