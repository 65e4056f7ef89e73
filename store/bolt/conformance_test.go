package bolt_test

import (
	"testing"

	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/store/bolt"
	"github.com/caddy-checkout/checkout/store/storetest"
)

// TestConformance runs the store contract's suite against bbolt.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		New: func(t testing.TB) store.Store { return newStore(t) },
		Reopen: func(t testing.TB, s store.Store) store.Store {
			b := s.(*bolt.Store)
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			r := openStore(t, b.Path())
			t.Cleanup(func() { _ = r.Close() })
			return r
		},
	})
}
