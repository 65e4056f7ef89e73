// Tests of what is bbolt's own (the file's mode, its lock, damaged rows),
// and the helpers of the package's tests. The store contract's behaviour
// is tested by the conformance suite (store/storetest).
package bolt_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/store/bolt"
	"github.com/caddy-checkout/checkout/store/storetest"
)

var t0 = time.Date(2026, 11, 21, 7, 0, 0, 0, time.UTC)

func openStore(t testing.TB, path string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// newStore opens a fresh store that is closed when the test ends.
func newStore(t testing.TB) *bolt.Store {
	t.Helper()
	s := openStore(t, filepath.Join(t.TempDir(), "checkout.db"))
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestOpenCreatesPrivateDirAndFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "checkout")
	path := filepath.Join(dir, "checkout.db")
	s := openStore(t, path)
	defer s.Close()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", fi.Mode().Perm())
	}
	fi, err = os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
	}
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
}

func TestOpenLockedFailsClearlyWithinTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checkout.db")
	s := openStore(t, path)
	defer s.Close()

	start := time.Now()
	s2, err := bolt.Open(path, bolt.Options{Timeout: 200 * time.Millisecond})
	elapsed := time.Since(start)
	if err == nil {
		s2.Close()
		t.Fatal("second Open of a held file succeeded")
	}
	if !errors.Is(err, bolt.ErrLocked) {
		t.Errorf("error %v does not wrap ErrLocked", err)
	}
	want := "opening checkout store " + path + ": database is locked by another process"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start with %q", err, want)
	}
	if elapsed < 100*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("gave up after %v, want about the 200ms timeout", elapsed)
	}

	// Once released, the file opens again.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s3 := openStore(t, path)
	s3.Close()
}

// damage closes s, overwrites one row of bucket with bytes that are not
// JSON, and reopens the store.
func damage(t *testing.T, s *bolt.Store, bucket []byte, key string) *bolt.Store {
	t.Helper()
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucket).Put([]byte(key), []byte("{not json")) })
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, path)
	t.Cleanup(func() { _ = s2.Close() })
	return s2
}

func TestCorruptRowsGiveErrorsNamingTheKey(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), "checkout.db"))
	o := storetest.NewOrder(t, "shop", "broken-1", t0, time.Hour)
	storetest.Put(t, s, o, storetest.NewDelivery("d-broken", 1, t0))
	if _, err := s.BeginIdempotent(ctx, "idem-broken", store.Idempotent{CreatedAt: t0}, time.Minute); err != nil {
		t.Fatal(err)
	}

	s = damage(t, s, bolt.BucketOrders, "shop\x00broken-1")
	s = damage(t, s, bolt.BucketDeliveries, "d-broken")
	s = damage(t, s, bolt.BucketIdempotency, "idem-broken")

	check := func(what string, err error, key string) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: no error for a corrupt row", what)
		} else if !strings.Contains(err.Error(), key) {
			t.Errorf("%s: error %q does not name %q", what, err, key)
		}
	}
	_, err := s.Get(ctx, o.Key)
	check("Get", err, "shop/broken-1")
	_, err = s.ByRef(ctx, o.Current().Ref)
	check("ByRef", err, "shop/broken-1")
	_, err = s.List(ctx, store.ListFilter{})
	check("List", err, "shop/broken-1")
	_, err = s.Open(ctx, "shop", t0.Add(2*time.Hour), 0)
	check("Open", err, "shop/broken-1")
	_, err = s.Update(ctx, o.Key, func(o *order.Order) (*order.Order, []store.Delivery, error) {
		t.Error("fn called with a corrupt stored order")
		return o, nil, nil
	})
	check("Update", err, "shop/broken-1")
	_, err = s.Delivery(ctx, "d-broken")
	check("Delivery", err, "d-broken")
	_, err = s.Due(ctx, t0, 0)
	check("Due", err, "d-broken")
	_, err = s.Deliveries(ctx, store.DeliveryFilter{})
	check("Deliveries", err, "d-broken")
	err = s.SaveDelivery(ctx, &store.Delivery{ID: "d-broken", State: store.DeliveryDelivered})
	check("SaveDelivery", err, "d-broken")
	_, err = s.BeginIdempotent(ctx, "idem-broken", store.Idempotent{CreatedAt: t0}, time.Minute)
	check("BeginIdempotent", err, "idem-broken")
}
