// The outbox of shop callbacks: deliveries are added by Update in the
// transaction of the state change they report, then tried, retried and
// listed through the methods here.
//
// A pending delivery has a row in the due index (by NextAt) and in its
// order's queue (by Seq). Due walks the due index and keeps only queue
// heads, so one order's callbacks reach the shop in order while a slow
// order never holds up another's. A delivery that is delivered, gone or
// dead leaves both, which makes the next one of its order the head.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
)

// queuePrefix is the prefix of one order's rows in the queue and byorder
// buckets. The NUL after the order key keeps order "a" from matching
// order "ab".
func queuePrefix(ok []byte) []byte { return join(ok, []byte{0}) }

// queueKey is the row of a pending delivery in its order's line (queue):
// orderKey, NUL, the queue's name, NUL, Seq. The head of a line is the
// first row under everything but Seq.
func queueKey(ok []byte, queue string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(join(queuePrefix(ok), []byte(queue), []byte{0}), seq)
}

// addDelivery appends a new delivery of the order under ok, inside the
// order's own transaction.
func addDelivery(tx *bbolt.Tx, ok []byte, key order.Key, d store.Delivery) error {
	if err := d.ForOrder(key); err != nil {
		return err
	}
	rows := tx.Bucket(bucketDeliveries)
	if rows.Get([]byte(d.ID)) != nil {
		// The ID is the webhook-id the shop deduplicates on; reusing it
		// would make the shop drop a real callback as a repeat.
		return fmt.Errorf("adding delivery %s to order %s: the id is already used", d.ID, keyName(ok))
	}

	seqs := tx.Bucket(bucketSeqs)
	var last uint64
	if v := seqs.Get(ok); len(v) == 8 {
		last = binary.BigEndian.Uint64(v)
	}
	if d.Seq == 0 {
		d.Seq = last + 1
	}
	if d.Seq > last {
		if err := seqs.Put(ok, binary.BigEndian.AppendUint64(nil, d.Seq)); err != nil {
			return fmt.Errorf("adding delivery %s: %w", d.ID, err)
		}
	}
	return putDelivery(tx, ok, &d)
}

// putDelivery writes the row and the index rows of d. The caller has
// removed the index rows of any earlier version.
func putDelivery(tx *bbolt.Tx, ok []byte, d *store.Delivery) error {
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encoding delivery %s: %w", d.ID, err)
	}
	id := []byte(d.ID)
	if err := tx.Bucket(bucketDeliveries).Put(id, data); err != nil {
		return fmt.Errorf("writing delivery %s: %w", d.ID, err)
	}
	created := appendTime(nil, d.CreatedAt)
	if err := tx.Bucket(bucketCreated).Put(join(created, id), []byte(d.State)); err != nil {
		return fmt.Errorf("indexing delivery %s: %w", d.ID, err)
	}
	if err := tx.Bucket(bucketByOrder).Put(join(queuePrefix(ok), created, id), nil); err != nil {
		return fmt.Errorf("indexing delivery %s: %w", d.ID, err)
	}
	if d.State != store.DeliveryPending {
		return nil
	}
	qk := queueKey(ok, d.Queue, d.Seq)
	queue := tx.Bucket(bucketQueue)
	if other := queue.Get(qk); other != nil && !bytes.Equal(other, id) {
		return fmt.Errorf("delivery %s: seq %d of order %s is taken by pending delivery %s", d.ID, d.Seq, keyName(ok), other)
	}
	if err := queue.Put(qk, id); err != nil {
		return fmt.Errorf("queueing delivery %s: %w", d.ID, err)
	}
	if err := tx.Bucket(bucketDue).Put(join(appendTime(nil, d.NextAt), id), qk); err != nil {
		return fmt.Errorf("queueing delivery %s: %w", d.ID, err)
	}
	return nil
}

// unindexDelivery removes the index rows of d as it was stored.
func unindexDelivery(tx *bbolt.Tx, ok []byte, d *store.Delivery) error {
	id := []byte(d.ID)
	created := appendTime(nil, d.CreatedAt)
	if err := tx.Bucket(bucketCreated).Delete(join(created, id)); err != nil {
		return fmt.Errorf("unindexing delivery %s: %w", d.ID, err)
	}
	if err := tx.Bucket(bucketByOrder).Delete(join(queuePrefix(ok), created, id)); err != nil {
		return fmt.Errorf("unindexing delivery %s: %w", d.ID, err)
	}
	if d.State != store.DeliveryPending {
		return nil
	}
	queue := tx.Bucket(bucketQueue)
	qk := queueKey(ok, d.Queue, d.Seq)
	if bytes.Equal(queue.Get(qk), id) {
		if err := queue.Delete(qk); err != nil {
			return fmt.Errorf("unqueueing delivery %s: %w", d.ID, err)
		}
	}
	if err := tx.Bucket(bucketDue).Delete(join(appendTime(nil, d.NextAt), id)); err != nil {
		return fmt.Errorf("unqueueing delivery %s: %w", d.ID, err)
	}
	return nil
}

func decodeDelivery(id, raw []byte) (*store.Delivery, error) {
	var d store.Delivery
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("reading delivery %s: %w", id, err)
	}
	return &d, nil
}

func deliveryOrderKey(d *store.Delivery) ([]byte, error) {
	ok, err := orderKey(order.Key{Site: d.Site, ID: d.OrderID})
	if err != nil {
		return nil, fmt.Errorf("delivery %s: %w", d.ID, err)
	}
	return ok, nil
}

// SaveDelivery implements store.Store. The delivery's order and place in
// its order's queue (Site, OrderID, Seq) cannot change: a delivery that
// tried to would jump the queue, so that is refused as an error.
func (s *Store) SaveDelivery(ctx context.Context, d *store.Delivery) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d == nil {
		return fmt.Errorf("saving delivery: nil delivery")
	}
	if !d.State.Valid() {
		return fmt.Errorf("saving delivery %s: unknown state %q", d.ID, d.State)
	}
	next := *d
	id := []byte(next.ID)
	return s.commit.do(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucketDeliveries).Get(id)
		if raw == nil {
			return fmt.Errorf("delivery %s: %w", next.ID, store.ErrNotFound)
		}
		old, err := decodeDelivery(id, raw)
		if err != nil {
			return err
		}
		if old.Site != next.Site || old.OrderID != next.OrderID || old.Seq != next.Seq || old.Queue != next.Queue {
			return fmt.Errorf("saving delivery %s: order or seq changed (%s/%s #%d → %s/%s #%d)",
				next.ID, old.Site, old.OrderID, old.Seq, next.Site, next.OrderID, next.Seq)
		}
		ok, err := deliveryOrderKey(old)
		if err != nil {
			return err
		}
		if err := unindexDelivery(tx, ok, old); err != nil {
			return err
		}
		return putDelivery(tx, ok, &next)
	})
}

// Delivery implements store.Store.
func (s *Store) Delivery(ctx context.Context, id string) (*store.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var d *store.Delivery
	err := s.db.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucketDeliveries).Get([]byte(id))
		if raw == nil {
			return nil
		}
		var err error
		d, err = decodeDelivery([]byte(id), raw)
		return err
	})
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, fmt.Errorf("delivery %s: %w", id, store.ErrNotFound)
	}
	return d, nil
}

// Due implements store.Store. A limit of zero or less means 1000. Only
// queue heads are decoded; a due delivery waiting behind an earlier one of
// its order is skipped by comparing index keys.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]*store.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit = limitOr(limit)
	end := appendTime(nil, now)
	var out []*store.Delivery
	err := s.db.View(func(tx *bbolt.Tx) error {
		rows := tx.Bucket(bucketDeliveries)
		queue := tx.Bucket(bucketQueue).Cursor()
		c := tx.Bucket(bucketDue).Cursor()
		for dk, qk := c.First(); dk != nil && len(out) < limit; dk, qk = c.Next() {
			if len(dk) <= timeLen || len(qk) <= 8 {
				return fmt.Errorf("listing due deliveries: malformed index row %q", dk)
			}
			if bytes.Compare(dk[:timeLen], end) > 0 {
				break
			}
			// The head of the order's queue is the first row under its prefix.
			head, _ := queue.Seek(qk[:len(qk)-8])
			if !bytes.Equal(head, qk) {
				continue
			}
			id := dk[timeLen:]
			raw := rows.Get(id)
			if raw == nil {
				return fmt.Errorf("listing due deliveries: index names delivery %s, which is missing", id)
			}
			d, err := decodeDelivery(id, raw)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// NextDue implements store.Store. It is the earliest NextAt of any pending
// delivery, queue head or not: a delivery waiting behind its order's head
// may name an earlier time than anything Due would return then. The
// notifier only uses it to decide when to ask Due again, so an early
// answer costs one empty Due call, never a missed delivery.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, false, err
	}
	var t time.Time
	var found bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		k, _ := tx.Bucket(bucketDue).Cursor().First()
		if k == nil {
			return nil
		}
		if len(k) < timeLen {
			return fmt.Errorf("finding next due delivery: malformed index key %q", k)
		}
		t, found = decodeTime(k), true
		return nil
	})
	return t, found, err
}

// Deliveries implements store.Store, newest CreatedAt first. With both
// Site and OrderID set it reads only that order's deliveries; otherwise it
// walks all of them, newest first, filtering the state from the index
// and Site/OrderID from the rows.
func (s *Store) Deliveries(ctx context.Context, f store.DeliveryFilter) ([]*store.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := limitOr(f.Limit)
	var out []*store.Delivery
	keep := func(d *store.Delivery) bool {
		return (f.State == "" || d.State == f.State) &&
			(f.Site == "" || d.Site == f.Site) &&
			(f.OrderID == "" || d.OrderID == f.OrderID)
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		rows := tx.Bucket(bucketDeliveries)
		read := func(id []byte) error {
			raw := rows.Get(id)
			if raw == nil {
				return fmt.Errorf("listing deliveries: index names delivery %s, which is missing", id)
			}
			d, err := decodeDelivery(id, raw)
			if err != nil {
				return err
			}
			if keep(d) {
				out = append(out, d)
			}
			return nil
		}

		if f.Site != "" && f.OrderID != "" {
			ok, err := orderKey(order.Key{Site: f.Site, ID: f.OrderID})
			if err != nil {
				return err
			}
			prefix := queuePrefix(ok)
			c := tx.Bucket(bucketByOrder).Cursor()
			// Walk backwards from just past the prefix: the prefix ends in
			// NUL, so the same key ending in 0x01 is the first key after it.
			k, _ := c.Seek(join(ok, []byte{1}))
			if k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
			for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, _ = c.Prev() {
				if len(k) <= len(prefix)+timeLen {
					return fmt.Errorf("listing deliveries: malformed index key %q", k)
				}
				if err := read(k[len(prefix)+timeLen:]); err != nil {
					return err
				}
			}
			return nil
		}

		c := tx.Bucket(bucketCreated).Cursor()
		for k, state := c.Last(); k != nil && len(out) < limit; k, state = c.Prev() {
			if len(k) <= timeLen {
				return fmt.Errorf("listing deliveries: malformed index key %q", k)
			}
			if f.State != "" && string(state) != string(f.State) {
				continue
			}
			if err := read(k[timeLen:]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// rebuildQueues writes the queue and due indexes anew from the pending
// deliveries, for a file of schema 1 (whose queue rows had no line name).
func rebuildQueues(tx *bbolt.Tx) error {
	for _, b := range [][]byte{bucketQueue, bucketDue} {
		if err := tx.DeleteBucket(b); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(b); err != nil {
			return err
		}
	}
	queue, due := tx.Bucket(bucketQueue), tx.Bucket(bucketDue)
	return tx.Bucket(bucketDeliveries).ForEach(func(id, raw []byte) error {
		d, err := decodeDelivery(id, raw)
		if err != nil {
			return err
		}
		if d.State != store.DeliveryPending {
			return nil
		}
		ok, err := deliveryOrderKey(d)
		if err != nil {
			return err
		}
		qk := queueKey(ok, d.Queue, d.Seq)
		if err := queue.Put(qk, clone(id)); err != nil {
			return err
		}
		return due.Put(join(appendTime(nil, d.NextAt), id), qk)
	})
}
