// Orders: the transactional Update that writes an order together with its
// indexes and its outbox rows, and the reads that use those indexes.
package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
)

// Update implements store.Store. It runs in a bbolt batch: fn may be
// called more than once, each time with a freshly read order, and only the
// last call's result is committed. Updates of one key are serialised by
// bbolt's single writer; two Updates of one key in the same batch run one
// after the other in the same transaction, the second seeing the first.
//
// Beyond the contract: the order fn returns must carry key; a delivery with
// an empty Site or OrderID gets key's, and one with Seq 0 gets the order's
// next sequence number; a delivery with an empty State is pending. fn
// returning deliveries with a nil order is refused (it would otherwise
// silently drop shop callbacks).
//
// ctx is checked before the write joins a batch, not after: aborting one
// member of a group commit makes bbolt run the whole group again, which a
// burst of client disconnects must not be able to multiply.
func (s *Store) Update(ctx context.Context, key order.Key, fn store.UpdateFunc) (*order.Order, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k, err := orderKey(key)
	if err != nil {
		return nil, err
	}
	// What is stored after the transaction, set by the last (committed)
	// run of the closure: the order just written, or the unchanged row's
	// JSON when fn wrote nothing (fn may have touched cur in place, so cur
	// itself is not trusted then).
	var (
		written *order.Order
		result  []byte
	)
	err = s.commit.do(func(tx *bbolt.Tx) error {
		written, result = nil, nil
		raw := tx.Bucket(bucketOrders).Get(k)
		var cur *order.Order
		var old orderIndex
		if raw != nil {
			var err error
			if cur, err = decodeOrder(k, raw); err != nil {
				return err
			}
			// Taken before fn runs: fn usually changes cur in place, and the
			// old index rows must be found from the old values.
			old = indexOf(k, cur)
		}
		next, deliveries, err := fn(cur)
		if err != nil {
			return err
		}
		if next == nil {
			if len(deliveries) > 0 {
				return fmt.Errorf("updating order %s: %d deliveries returned without an order to write", keyName(k), len(deliveries))
			}
			result = clone(raw)
			return nil
		}
		if next.Key != key {
			return fmt.Errorf("updating order %s: fn returned order %s", keyName(k), next.Key.String())
		}
		data, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("encoding order %s: %w", keyName(k), err)
		}
		if err := putOrder(tx, k, data, old, indexOf(k, next)); err != nil {
			return err
		}
		for i := range deliveries {
			if err := addDelivery(tx, k, key, deliveries[i]); err != nil {
				return err
			}
		}
		written = next
		return nil
	})
	if err != nil {
		return nil, err
	}
	if written != nil {
		// Exactly what was encoded: decoding it again would cost a tenth of
		// the intake's CPU for the same value.
		return written, nil
	}
	if result == nil {
		return nil, nil
	}
	// Decoded outside the transaction so the writer lock is not held for it.
	return decodeOrder(k, result)
}

// orderIndex is what an order contributes to the indexes.
type orderIndex struct {
	exists   bool
	open     []byte // key in bucketOpen; nil when the order is not open
	unasked  []byte // key in bucketUnasked; nil when no attempt waits
	personal []byte // key in bucketPersonal; nil unless final with its customer data
	updated  []byte // key in bucketUpdated
	status   order.State
	refs     []string
	prefs    []string // provider refs, as keys of bucketRefs ("\x00" + ref)
}

func indexOf(k []byte, o *order.Order) orderIndex {
	ix := orderIndex{exists: true, status: o.Status}
	if o.Status.Open() {
		site, _, _ := bytes.Cut(k, []byte{0})
		ix.open = join(site, []byte{0}, appendTime(nil, o.Deadline()), k)
	}
	if t := o.Unasked(); !t.IsZero() {
		site, _, _ := bytes.Cut(k, []byte{0})
		ix.unasked = join(site, []byte{0}, appendTime(nil, t), k)
	}
	if t := o.PersonalSince(); !t.IsZero() {
		site, _, _ := bytes.Cut(k, []byte{0})
		ix.personal = join(site, []byte{0}, appendTime(nil, t), k)
	}
	ix.updated = join(appendTime(nil, o.UpdatedAt), k)
	for _, a := range o.Attempts {
		if a.Ref != "" {
			ix.refs = append(ix.refs, a.Ref)
		}
		if a.ProviderRef != "" && !contains(ix.prefs, "\x00"+a.ProviderRef) {
			ix.prefs = append(ix.prefs, "\x00"+a.ProviderRef)
		}
	}
	return ix
}

// appendFill is how full bbolt packs the pages of the buckets whose new
// keys mostly come after the old ones (shops number their orders; the
// indexes are by time): 90 % instead of bbolt's 50 %, which left one or
// two orders of about 1 KB to a 4 KB page and rewrote twice the pages per
// commit (BENCHMARKS.md §11). Buckets with random keys (refs) keep 50 %,
// which leaves room for the inserts that land between old keys.
const appendFill = 0.9

// appending is the bucket name of tx, set to pack its pages as appendFill.
func appending(tx *bbolt.Tx, name []byte) *bbolt.Bucket {
	b := tx.Bucket(name)
	b.FillPercent = appendFill
	return b
}

// putOrder writes the order row and moves its index rows from old to cur.
func putOrder(tx *bbolt.Tx, k, data []byte, old, cur orderIndex) error {
	if err := appending(tx, bucketOrders).Put(k, data); err != nil {
		return fmt.Errorf("writing order %s: %w", keyName(k), err)
	}

	if err := moveIndex(appending(tx, bucketOpen), old.open, cur.open); err != nil {
		return fmt.Errorf("indexing order %s: %w", keyName(k), err)
	}

	if err := moveIndex(appending(tx, bucketUnasked), old.unasked, cur.unasked); err != nil {
		return fmt.Errorf("indexing order %s: %w", keyName(k), err)
	}

	if err := moveIndex(appending(tx, bucketPersonal), old.personal, cur.personal); err != nil {
		return fmt.Errorf("indexing order %s: %w", keyName(k), err)
	}

	updated := appending(tx, bucketUpdated)
	if old.exists && !bytes.Equal(old.updated, cur.updated) {
		if err := updated.Delete(old.updated); err != nil {
			return fmt.Errorf("indexing order %s: %w", keyName(k), err)
		}
	}
	// Always rewritten: the status may change while UpdatedAt does not.
	if err := updated.Put(cur.updated, []byte(cur.status)); err != nil {
		return fmt.Errorf("indexing order %s: %w", keyName(k), err)
	}

	refs := tx.Bucket(bucketRefs)
	for _, ref := range cur.refs {
		owner := refs.Get([]byte(ref))
		switch {
		case owner == nil:
			if err := refs.Put([]byte(ref), k); err != nil {
				return fmt.Errorf("indexing attempt %s of order %s: %w", ref, keyName(k), err)
			}
		case !bytes.Equal(owner, k):
			// Refs carry 88 random bits, so this is a caller bug; storing it
			// would send one order's payments to another.
			return fmt.Errorf("order %s: attempt ref %s already belongs to order %s", keyName(k), ref, keyName(owner))
		}
	}
	for _, ref := range old.refs {
		if contains(cur.refs, ref) {
			continue
		}
		if err := refs.Delete([]byte(ref)); err != nil {
			return fmt.Errorf("unindexing attempt %s of order %s: %w", ref, keyName(k), err)
		}
	}
	// Provider refs are the providers' ids: one claimed by another order
	// keeps its first owner rather than fail the write (a payment must
	// never be refused storage over an index).
	for _, ref := range cur.prefs {
		if refs.Get([]byte(ref)) == nil {
			if err := refs.Put([]byte(ref), k); err != nil {
				return fmt.Errorf("indexing provider ref of order %s: %w", keyName(k), err)
			}
		}
	}
	for _, ref := range old.prefs {
		if contains(cur.prefs, ref) || !bytes.Equal(refs.Get([]byte(ref)), k) {
			continue
		}
		if err := refs.Delete([]byte(ref)); err != nil {
			return fmt.Errorf("unindexing provider ref of order %s: %w", keyName(k), err)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func decodeOrder(k, raw []byte) (*order.Order, error) {
	var o order.Order
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, fmt.Errorf("reading order %s: %w", keyName(k), err)
	}
	return &o, nil
}

// getOrder reads an order inside tx; nil, nil when there is none.
func getOrder(tx *bbolt.Tx, k []byte) (*order.Order, error) {
	raw := tx.Bucket(bucketOrders).Get(k)
	if raw == nil {
		return nil, nil
	}
	return decodeOrder(k, raw)
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key order.Key) (*order.Order, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k, err := orderKey(key)
	if err != nil {
		return nil, err
	}
	var o *order.Order
	err = s.db.View(func(tx *bbolt.Tx) error {
		var err error
		o, err = getOrder(tx, k)
		return err
	})
	if err != nil {
		return nil, err
	}
	if o == nil {
		return nil, fmt.Errorf("order %s: %w", keyName(k), store.ErrNotFound)
	}
	return o, nil
}

// ByProviderRef implements store.Store.
func (s *Store) ByProviderRef(ctx context.Context, providerRef string) (*order.Order, error) {
	if providerRef == "" {
		return nil, fmt.Errorf("provider ref %q: %w", providerRef, store.ErrNotFound)
	}
	return s.byRefKey(ctx, "\x00"+providerRef, "provider ref "+providerRef)
}

// ByRef implements store.Store. A ref starting with NUL is refused: that
// is how provider refs (often public, such as a chain address) are kept
// apart in the index, and they must never open an attempt's pages.
func (s *Store) ByRef(ctx context.Context, ref string) (*order.Order, error) {
	if ref == "" || ref[0] == 0 {
		return nil, fmt.Errorf("attempt %q: %w", ref, store.ErrNotFound)
	}
	return s.byRefKey(ctx, ref, "attempt "+ref)
}

func (s *Store) byRefKey(ctx context.Context, ref, what string) (*order.Order, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var o *order.Order
	err := s.db.View(func(tx *bbolt.Tx) error {
		k := tx.Bucket(bucketRefs).Get([]byte(ref))
		if k == nil {
			return nil
		}
		var err error
		if o, err = getOrder(tx, k); err != nil {
			return err
		}
		if o == nil {
			return fmt.Errorf("%s points to order %s, which is missing", what, keyName(k))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if o == nil {
		return nil, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return o, nil
}

// List implements store.Store. Ties in UpdatedAt come in reverse key
// order. The status filter is read from the index, so orders that do not
// match are not decoded.
func (s *Store) List(ctx context.Context, f store.ListFilter) ([]*order.Order, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := limitOr(f.Limit)
	var site []byte
	if f.Site != "" {
		site = append([]byte(f.Site), 0)
	}
	var after []byte
	if f.After != nil {
		k, err := orderKey(f.After.Key)
		if err != nil {
			return nil, err
		}
		after = join(appendTime(nil, f.After.UpdatedAt), k)
	}
	var out []*order.Order
	err := s.db.View(func(tx *bbolt.Tx) error {
		orders := tx.Bucket(bucketOrders)
		c := tx.Bucket(bucketUpdated).Cursor()
		ik, status := c.Last()
		if after != nil {
			// Start before the position of f.After in the index, whether
			// or not that order is still there.
			at := after
			if ik, status = c.Seek(at); ik == nil {
				ik, status = c.Last()
			}
			for ik != nil && bytes.Compare(ik, at) >= 0 {
				ik, status = c.Prev()
			}
		}
		for ; ik != nil && len(out) < limit; ik, status = c.Prev() {
			if len(ik) <= timeLen {
				return fmt.Errorf("listing orders: malformed index key %q", ik)
			}
			k := ik[timeLen:]
			if f.Status != "" && string(status) != string(f.Status) {
				continue
			}
			if site != nil && !bytes.HasPrefix(k, site) {
				continue
			}
			raw := orders.Get(k)
			if raw == nil {
				return fmt.Errorf("listing orders: index names order %s, which is missing", keyName(k))
			}
			o, err := decodeOrder(k, raw)
			if err != nil {
				return err
			}
			out = append(out, o)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Open implements store.Store: a range scan of the site's part of the
// deadline index that stops at the first order due at or after before. A
// limit of zero or less means 1000, as in the filters.
func (s *Store) Open(ctx context.Context, site string, before time.Time, limit int) ([]*order.Order, error) {
	return s.scanBySite(ctx, "listing open orders", bucketOpen, site, before, limit)
}

// Unasked implements store.Store, as Open over the index of unasked times.
func (s *Store) Unasked(ctx context.Context, site string, before time.Time, limit int) ([]*order.Order, error) {
	return s.scanBySite(ctx, "listing orders to reconcile", bucketUnasked, site, before, limit)
}

// scanBySite reads the orders of an index keyed site + NUL + time +
// orderKey, from the site's first row to the first at or after before.
func (s *Store) scanBySite(ctx context.Context, what string, bucket []byte, site string, before time.Time, limit int) ([]*order.Order, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit = limitOr(limit)
	prefix := append([]byte(site), 0)
	end := appendTime(nil, before)
	var out []*order.Order
	err := s.db.View(func(tx *bbolt.Tx) error {
		orders := tx.Bucket(bucketOrders)
		c := tx.Bucket(bucket).Cursor()
		for ik, _ := c.Seek(prefix); ik != nil && bytes.HasPrefix(ik, prefix) && len(out) < limit; ik, _ = c.Next() {
			ik = ik[len(prefix):]
			if len(ik) <= timeLen {
				return fmt.Errorf("%s: malformed index key %q", what, ik)
			}
			if bytes.Compare(ik[:timeLen], end) >= 0 {
				break
			}
			k := ik[timeLen:]
			raw := orders.Get(k)
			if raw == nil {
				return fmt.Errorf("%s: index names order %s, which is missing", what, keyName(k))
			}
			o, err := decodeOrder(k, raw)
			if err != nil {
				return err
			}
			out = append(out, o)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// moveIndex replaces an index row old by cur (either may be nil).
func moveIndex(b *bbolt.Bucket, old, cur []byte) error {
	if old != nil && !bytes.Equal(old, cur) {
		if err := b.Delete(old); err != nil {
			return err
		}
	}
	if cur != nil {
		return b.Put(cur, nil)
	}
	return nil
}

// indexUnasked fills the index of unasked times (schema 3) from the
// orders, for a file of an earlier schema.
func indexUnasked(tx *bbolt.Tx) error {
	return indexFromOrders(tx, bucketUnasked, func(ix orderIndex) []byte { return ix.unasked })
}

// indexPersonal fills the index of final orders holding customer data
// (schema 4) from the orders, for a file of an earlier schema.
func indexPersonal(tx *bbolt.Tx) error {
	return indexFromOrders(tx, bucketPersonal, func(ix orderIndex) []byte { return ix.personal })
}

// indexFromOrders fills the index bucket name with the row key picks
// from each order's index rows (none when it gives nil).
func indexFromOrders(tx *bbolt.Tx, name []byte, key func(orderIndex) []byte) error {
	b := tx.Bucket(name)
	return tx.Bucket(bucketOrders).ForEach(func(k, raw []byte) error {
		o, err := decodeOrder(k, raw)
		if err != nil {
			return err
		}
		if row := key(indexOf(k, o)); row != nil {
			return b.Put(row, nil)
		}
		return nil
	})
}

// Personal implements store.Store, as Open over the index of final
// orders holding customer data.
func (s *Store) Personal(ctx context.Context, site string, before time.Time, limit int) ([]*order.Order, error) {
	return s.scanBySite(ctx, "listing orders whose customer data is due for erasure", bucketPersonal, site, before, limit)
}

// rebuildIndexes writes the indexes schema 2 added or changed anew, for a
// file of schema 1: the open index (now per site, by deadline), the
// provider refs, and the outbox's lines.
func rebuildIndexes(tx *bbolt.Tx) error {
	if err := rebuildQueues(tx); err != nil {
		return err
	}
	if err := tx.DeleteBucket(bucketOpen); err != nil {
		return err
	}
	open, err := tx.CreateBucket(bucketOpen)
	if err != nil {
		return err
	}
	refs := tx.Bucket(bucketRefs)
	return tx.Bucket(bucketOrders).ForEach(func(k, raw []byte) error {
		o, err := decodeOrder(k, raw)
		if err != nil {
			return err
		}
		ix := indexOf(k, o)
		if ix.open != nil {
			if err := open.Put(ix.open, nil); err != nil {
				return err
			}
		}
		for _, ref := range ix.prefs {
			if refs.Get([]byte(ref)) == nil {
				if err := refs.Put([]byte(ref), clone(k)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
