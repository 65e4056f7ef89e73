// Import: filling an empty database from another store, in one
// transaction, for copy-store.
package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
)

// Counts is what an Import wrote.
type Counts struct {
	Orders, Deliveries, Data, Idempotency, Spent int
}

// Import runs export (such as a bbolt store's Export) into this database
// in one transaction, so an import that fails leaves the database as
// empty as it was. A database holding anything of caddy-checkout already
// is refused: orders of two stores must never be merged by accident.
func (s *Store) Import(ctx context.Context, export func(context.Context, store.Sink) error) (Counts, error) {
	var n Counts
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// No other writer may start while we check and fill.
		if _, err := tx.Exec(ctx, `LOCK TABLE checkout_orders, checkout_deliveries, checkout_data,
			checkout_idempotency, checkout_spent IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		var busy bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM checkout_orders) OR EXISTS (SELECT 1 FROM checkout_deliveries)
			OR EXISTS (SELECT 1 FROM checkout_data) OR EXISTS (SELECT 1 FROM checkout_idempotency)
			OR EXISTS (SELECT 1 FROM checkout_spent)`).Scan(&busy)
		if err != nil {
			return err
		}
		if busy {
			return fmt.Errorf("the target database %s already holds checkout data; copy into an empty database", s.name)
		}
		return export(ctx, &sink{tx: tx, n: &n})
	})
	if err != nil {
		return Counts{}, err
	}
	return n, nil
}

type sink struct {
	tx pgx.Tx
	n  *Counts
}

func (k *sink) Order(ctx context.Context, o *order.Order, ds []store.Delivery) error {
	if err := checkKey(o.Key); err != nil {
		return err
	}
	data, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("encoding order %s: %w", o.Key, err)
	}
	ix := indexOf(o)
	var seq int64
	for _, d := range ds {
		seq = max(seq, int64(d.Seq))
	}
	if _, err := k.tx.Exec(ctx, `INSERT INTO checkout_orders (site, id, doc, status, deadline, updated_at, last_seq, unasked, personal_since)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, o.Site, o.ID, data, string(ix.status), ix.deadline, ix.updated, seq, ix.unasked, ix.personal); err != nil {
		return fmt.Errorf("copying order %s: %w", o.Key, err)
	}
	if err := writeRefs(ctx, k.tx, o.Key, orderIndex{}, ix); err != nil {
		return err
	}
	for i := range ds {
		if ds[i].Site != o.Site || ds[i].OrderID != o.ID {
			return fmt.Errorf("copying delivery %s: it names order %s/%s, not %s", ds[i].ID, ds[i].Site, ds[i].OrderID, o.Key)
		}
		if err := insertDelivery(ctx, k.tx, o.Key, &ds[i]); err != nil {
			return err
		}
	}
	k.n.Orders++
	k.n.Deliveries += len(ds)
	return nil
}

func (k *sink) Data(ctx context.Context, key string, val []byte) error {
	if val == nil {
		val = []byte{}
	}
	if _, err := k.tx.Exec(ctx, `INSERT INTO checkout_data (key, val) VALUES ($1, $2)`, []byte(key), val); err != nil {
		return fmt.Errorf("copying provider data %q: %w", key, err)
	}
	k.n.Data++
	return nil
}

func (k *sink) Idempotent(ctx context.Context, key string, rec store.Idempotent) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := k.tx.Exec(ctx, `INSERT INTO checkout_idempotency (key, doc) VALUES ($1, $2)`, []byte(key), data); err != nil {
		return fmt.Errorf("copying idempotency key %q: %w", key, err)
	}
	k.n.Idempotency++
	return nil
}

func (k *sink) Spent(ctx context.Context, key string, until time.Time) error {
	if _, err := k.tx.Exec(ctx, `INSERT INTO checkout_spent (key, until) VALUES ($1, $2)`, []byte(key), ns(until)); err != nil {
		return fmt.Errorf("copying a spent token: %w", err)
	}
	k.n.Spent++
	return nil
}
