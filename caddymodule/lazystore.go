// lazyStore opens the store on first use rather than at provision, so
// that validating a config never contends for the bbolt file lock nor
// connects to PostgreSQL. An open that failed (PostgreSQL down) is tried
// again by a later use, at most once a second, so the store comes back
// by itself with no restart, and a burst of requests does not queue
// behind one slow connection attempt each.
package caddymodule

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
)

// reopenAfter is how long a failed open is answered from memory.
const reopenAfter = time.Second

type lazyStore struct {
	opener func() (store.Store, error)
	cur    atomic.Pointer[store.Store] // fast path once open
	mu     sync.Mutex
	s      store.Store
	err    error     // the last failed open
	failed time.Time // when it failed
}

var _ store.Store = (*lazyStore)(nil)

func (l *lazyStore) get() (store.Store, error) {
	if p := l.cur.Load(); p != nil {
		return *p, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s != nil {
		return l.s, nil
	}
	if l.err != nil && time.Since(l.failed) < reopenAfter {
		return nil, l.err
	}
	s, err := l.opener()
	if err != nil {
		l.err, l.failed = fmt.Errorf("%w: %w", store.ErrUnavailable, err), time.Now()
		return nil, l.err
	}
	l.s, l.err = s, nil
	l.cur.Store(&s)
	return s, nil
}

func (l *lazyStore) open() error { _, err := l.get(); return err }

func (l *lazyStore) isOpen() bool { return l.cur.Load() != nil }

// underlying is the open store, or nil.
func (l *lazyStore) underlying() store.Store {
	if p := l.cur.Load(); p != nil {
		return *p
	}
	return nil
}

func (l *lazyStore) Update(ctx context.Context, key order.Key, fn store.UpdateFunc) (*order.Order, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.Update(ctx, key, fn)
}

func (l *lazyStore) Get(ctx context.Context, key order.Key) (*order.Order, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, key)
}

func (l *lazyStore) ByRef(ctx context.Context, ref string) (*order.Order, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.ByRef(ctx, ref)
}

func (l *lazyStore) List(ctx context.Context, f store.ListFilter) ([]*order.Order, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.List(ctx, f)
}

func (l *lazyStore) Open(ctx context.Context, site string, before time.Time, limit int) ([]*order.Order, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.Open(ctx, site, before, limit)
}

func (l *lazyStore) Unasked(ctx context.Context, site string, before time.Time, limit int) ([]*order.Order, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.Unasked(ctx, site, before, limit)
}

func (l *lazyStore) Personal(ctx context.Context, site string, before time.Time, limit int) ([]*order.Order, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.Personal(ctx, site, before, limit)
}

func (l *lazyStore) Due(ctx context.Context, now time.Time, limit int) ([]*store.Delivery, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.Due(ctx, now, limit)
}

func (l *lazyStore) NextDue(ctx context.Context) (time.Time, bool, error) {
	s, err := l.get()
	if err != nil {
		return time.Time{}, false, err
	}
	return s.NextDue(ctx)
}

func (l *lazyStore) SaveDelivery(ctx context.Context, d *store.Delivery) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.SaveDelivery(ctx, d)
}

func (l *lazyStore) Delivery(ctx context.Context, id string) (*store.Delivery, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.Delivery(ctx, id)
}

func (l *lazyStore) Deliveries(ctx context.Context, f store.DeliveryFilter) ([]*store.Delivery, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.Deliveries(ctx, f)
}

func (l *lazyStore) SpendToken(ctx context.Context, key string, until, now time.Time) (bool, error) {
	s, err := l.get()
	if err != nil {
		return false, err
	}
	return s.SpendToken(ctx, key, until, now)
}

func (l *lazyStore) ByProviderRef(ctx context.Context, providerRef string) (*order.Order, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.ByProviderRef(ctx, providerRef)
}

func (l *lazyStore) BeginIdempotent(ctx context.Context, key string, rec store.Idempotent, stale time.Duration) (*store.Idempotent, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.BeginIdempotent(ctx, key, rec, stale)
}

func (l *lazyStore) FinishIdempotent(ctx context.Context, key string, rec store.Idempotent) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.FinishIdempotent(ctx, key, rec)
}

func (l *lazyStore) ForgetIdempotent(ctx context.Context, key string) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.ForgetIdempotent(ctx, key)
}

func (l *lazyStore) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s == nil {
		return nil
	}
	err := l.s.Close()
	l.s, l.err = nil, nil
	l.cur.Store(nil)
	return err
}

func (l *lazyStore) GetData(ctx context.Context, key string) ([]byte, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.GetData(ctx, key)
}

func (l *lazyStore) PutData(ctx context.Context, key string, val []byte) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.PutData(ctx, key, val)
}

func (l *lazyStore) PutDataIfAbsent(ctx context.Context, key string, val []byte) ([]byte, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.PutDataIfAbsent(ctx, key, val)
}

func (l *lazyStore) ScanData(ctx context.Context, prefix string, fn func(key string, val []byte) error) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.ScanData(ctx, prefix, fn)
}

func (l *lazyStore) NextSeq(ctx context.Context, key string) (uint64, error) {
	s, err := l.get()
	if err != nil {
		return 0, err
	}
	return s.NextSeq(ctx, key)
}

// Lease implements store.Leaser for the providers (store.Exclusive): the
// open store's lease where it is shared; a store of one process always
// grants it.
func (l *lazyStore) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	s, err := l.get()
	if err != nil {
		return false, err
	}
	if ls, ok := s.(store.Leaser); ok {
		return ls.Lease(ctx, name, holder, ttl)
	}
	return true, nil
}

// Release implements store.Leaser.
func (l *lazyStore) Release(ctx context.Context, name, holder string) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	if ls, ok := s.(store.Leaser); ok {
		return ls.Release(ctx, name, holder)
	}
	return nil
}

// SaveDeliveryIf implements store.DeliverySwapper where the open store
// does; a store of one process saves unconditionally (its notifier's own
// claims keep tries of one delivery from overlapping).
func (l *lazyStore) SaveDeliveryIf(ctx context.Context, d, was *store.Delivery) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	if sw, ok := s.(store.DeliverySwapper); ok {
		return sw.SaveDeliveryIf(ctx, d, was)
	}
	return s.SaveDelivery(ctx, d)
}
