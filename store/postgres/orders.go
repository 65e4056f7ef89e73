// Orders: the transactional Update that writes an order together with its
// index rows and its outbox rows, and the reads that use those indexes.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
)

// orderIndex is what an order contributes to the index rows.
type orderIndex struct {
	status   order.State
	deadline *int64 // nil when the order is not open
	unasked  *int64 // nil when no attempt of the order waits at a provider
	personal *int64 // nil unless the order is final with its customer's data
	updated  int64
	refs     []string
	prefs    []string // provider refs
}

func indexOf(o *order.Order) orderIndex {
	ix := orderIndex{status: o.Status, updated: ns(o.UpdatedAt)}
	if o.Status.Open() {
		d := ns(o.Deadline())
		ix.deadline = &d
	}
	if t := o.Unasked(); !t.IsZero() {
		u := ns(t)
		ix.unasked = &u
	}
	if t := o.PersonalSince(); !t.IsZero() {
		p := ns(t)
		ix.personal = &p
	}
	for _, a := range o.Attempts {
		if a.Ref != "" {
			ix.refs = append(ix.refs, a.Ref)
		}
		if a.ProviderRef != "" && !slices.Contains(ix.prefs, a.ProviderRef) {
			ix.prefs = append(ix.prefs, a.ProviderRef)
		}
	}
	return ix
}

func minus(a, b []string) [][]byte {
	var out [][]byte
	for _, v := range a {
		if !slices.Contains(b, v) {
			out = append(out, []byte(v))
		}
	}
	return out
}

// Update implements store.Store. fn runs inside the transaction that holds
// the order's row lock, so updates of one order from any number of
// instances run one after the other, each seeing the last. fn may run more
// than once: again when another instance created the same order between
// our read and our write, or when the server aborted the transaction for
// a deadlock.
//
// Beyond the contract, as the bbolt store: the order fn returns must carry
// key; a delivery with an empty Site or OrderID gets key's, one with Seq 0
// gets the order's next sequence number, one with an empty State is
// pending; deliveries with a nil order are refused.
func (s *Store) Update(ctx context.Context, key order.Key, fn store.UpdateFunc) (*order.Order, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	var (
		out     *order.Order
		fnErr   error
		changed bool
		refs    []string
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		out, fnErr, changed = nil, nil, false
		var raw []byte
		var lastSeq int64
		err := tx.QueryRow(ctx, `SELECT doc, last_seq FROM checkout_orders WHERE site = $1 AND id = $2 FOR UPDATE`,
			key.Site, key.ID).Scan(&raw, &lastSeq)
		exists := err == nil
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("reading order %s: %w", key, err)
		}
		var cur *order.Order
		var old orderIndex
		if exists {
			if cur, err = decodeOrder(key, raw); err != nil {
				return err
			}
			old = indexOf(cur)
		}
		next, deliveries, err := fn(cur)
		if err != nil {
			fnErr = err
			return err
		}
		if next == nil {
			if len(deliveries) > 0 {
				return fmt.Errorf("updating order %s: %d deliveries returned without an order to write", key, len(deliveries))
			}
			if exists {
				// fn may have changed cur in place: what is stored is raw.
				out, err = decodeOrder(key, raw)
				return err
			}
			return nil
		}
		if next.Key != key {
			return fmt.Errorf("updating order %s: fn returned order %s", key, next.Key.String())
		}
		data, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("encoding order %s: %w", key, err)
		}
		ix := indexOf(next)

		ds := make([]store.Delivery, len(deliveries))
		seq := lastSeq
		for i, d := range deliveries {
			if d, err = s.prepareDelivery(key, d, &seq); err != nil {
				return err
			}
			ds[i] = d
		}

		if exists {
			_, err = tx.Exec(ctx, `UPDATE checkout_orders SET doc = $3, status = $4, deadline = $5, updated_at = $6, last_seq = $7, unasked = $8,
				personal_since = $9 WHERE site = $1 AND id = $2`, key.Site, key.ID, data, string(ix.status), ix.deadline, ix.updated, seq, ix.unasked, ix.personal)
			if err != nil {
				return fmt.Errorf("writing order %s: %w", key, err)
			}
		} else {
			tag, err := tx.Exec(ctx, `INSERT INTO checkout_orders (site, id, doc, status, deadline, updated_at, last_seq, unasked, personal_since)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (site, id) DO NOTHING`,
				key.Site, key.ID, data, string(ix.status), ix.deadline, ix.updated, seq, ix.unasked, ix.personal)
			if err != nil {
				return fmt.Errorf("writing order %s: %w", key, err)
			}
			if tag.RowsAffected() == 0 {
				return errRetry // another instance created it just now
			}
		}
		if err := writeRefs(ctx, tx, key, old, ix); err != nil {
			return err
		}
		for i := range ds {
			if err := insertDelivery(ctx, tx, key, &ds[i]); err != nil {
				return err
			}
		}
		out = next
		changed = exists // a new order has no live page open yet
		refs = ix.refs
		return nil
	})
	if fnErr != nil && errors.Is(err, fnErr) {
		return nil, fnErr // unchanged, as the contract says
	}
	if err != nil {
		return nil, err
	}
	if changed && len(refs) > 0 {
		s.feed.announce(key.Site, refs) // committed: other instances' live pages follow
	}
	return out, nil
}

// writeRefs moves the order's index rows from old to cur. An attempt ref
// owned by another order is an error (refs carry 88 random bits, so this is
// a caller bug that would send one order's payments to another); a
// provider ref already owned keeps its first owner, so a payment is never
// refused storage over an index.
func writeRefs(ctx context.Context, tx pgx.Tx, key order.Key, old, cur orderIndex) error {
	if add := minus(cur.refs, old.refs); len(add) > 0 {
		rows, err := tx.Query(ctx, `INSERT INTO checkout_refs (kind, ref, site, id)
			SELECT 'a', r, $2, $3 FROM unnest($1::bytea[]) AS r
			ON CONFLICT (kind, ref) DO UPDATE SET ref = EXCLUDED.ref
			RETURNING ref, site, id`, add, key.Site, key.ID)
		if err != nil {
			return fmt.Errorf("indexing the attempts of order %s: %w", key, err)
		}
		for rows.Next() {
			var ref []byte
			var site, id string
			if err := rows.Scan(&ref, &site, &id); err != nil {
				rows.Close()
				return fmt.Errorf("indexing the attempts of order %s: %w", key, err)
			}
			if site != key.Site || id != key.ID {
				rows.Close()
				return fmt.Errorf("order %s: attempt ref %s already belongs to order %s/%s", key, ref, site, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("indexing the attempts of order %s: %w", key, err)
		}
	}
	if gone := minus(old.refs, cur.refs); len(gone) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM checkout_refs WHERE kind = 'a' AND ref = ANY($1) AND site = $2 AND id = $3`,
			gone, key.Site, key.ID); err != nil {
			return fmt.Errorf("unindexing attempts of order %s: %w", key, err)
		}
	}
	if add := minus(cur.prefs, old.prefs); len(add) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO checkout_refs (kind, ref, site, id)
			SELECT 'p', r, $2, $3 FROM unnest($1::bytea[]) AS r ON CONFLICT (kind, ref) DO NOTHING`,
			add, key.Site, key.ID); err != nil {
			return fmt.Errorf("indexing provider refs of order %s: %w", key, err)
		}
	}
	if gone := minus(old.prefs, cur.prefs); len(gone) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM checkout_refs WHERE kind = 'p' AND ref = ANY($1) AND site = $2 AND id = $3`,
			gone, key.Site, key.ID); err != nil {
			return fmt.Errorf("unindexing provider refs of order %s: %w", key, err)
		}
	}
	return nil
}

func decodeOrder(key order.Key, raw []byte) (*order.Order, error) {
	var o order.Order
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, fmt.Errorf("reading order %s: %w", key, err)
	}
	return &o, nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key order.Key) (*order.Order, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT doc FROM checkout_orders WHERE site = $1 AND id = $2`, key.Site, key.ID).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("order %s: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading order %s: %w", key, err)
	}
	return decodeOrder(key, raw)
}

// ByRef implements store.Store.
func (s *Store) ByRef(ctx context.Context, ref string) (*order.Order, error) {
	if ref == "" || ref[0] == 0 {
		return nil, fmt.Errorf("attempt %q: %w", ref, store.ErrNotFound)
	}
	return s.byRef(ctx, 'a', ref, "attempt "+ref)
}

// ByProviderRef implements store.Store.
func (s *Store) ByProviderRef(ctx context.Context, providerRef string) (*order.Order, error) {
	if providerRef == "" {
		return nil, fmt.Errorf("provider ref %q: %w", providerRef, store.ErrNotFound)
	}
	return s.byRef(ctx, 'p', providerRef, "provider ref "+providerRef)
}

func (s *Store) byRef(ctx context.Context, kind byte, ref, what string) (*order.Order, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	var site, id string
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT r.site, r.id, o.doc FROM checkout_refs r
		LEFT JOIN checkout_orders o ON o.site = r.site AND o.id = r.id
		WHERE r.kind = $1 AND r.ref = $2`, string(kind), []byte(ref)).Scan(&site, &id, &raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	key := order.Key{Site: site, ID: id}
	if raw == nil {
		return nil, fmt.Errorf("%s points to order %s, which is missing", what, key)
	}
	return decodeOrder(key, raw)
}

// List implements store.Store. Ties in UpdatedAt come in reverse key
// order, as in the bbolt store.
func (s *Store) List(ctx context.Context, f store.ListFilter) ([]*order.Order, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q := `SELECT site, id, doc FROM checkout_orders`
	var where []string
	args := []any{limitOr(f.Limit)}
	if f.Site != "" {
		args = append(args, f.Site)
		where = append(where, fmt.Sprintf("site = $%d", len(args)))
	}
	if f.Status != "" {
		args = append(args, string(f.Status))
		where = append(where, fmt.Sprintf("status = $%d", len(args)))
	}
	if f.After != nil {
		args = append(args, ns(f.After.UpdatedAt), f.After.Site, f.After.ID)
		n := len(args)
		where = append(where, fmt.Sprintf("(updated_at, site, id) < ($%d, $%d, $%d)", n-2, n-1, n))
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += ` ORDER BY updated_at DESC, site DESC, id DESC LIMIT $1`
	return s.queryOrders(ctx, "listing orders", q, args...)
}

// Open implements store.Store, from the partial index of open orders.
func (s *Store) Open(ctx context.Context, site string, before time.Time, limit int) ([]*order.Order, error) {
	return s.bySiteBefore(ctx, "listing open orders", "deadline", site, before, limit)
}

// Unasked implements store.Store, from the partial index of unasked times.
func (s *Store) Unasked(ctx context.Context, site string, before time.Time, limit int) ([]*order.Order, error) {
	return s.bySiteBefore(ctx, "listing orders to reconcile", "unasked", site, before, limit)
}

// Personal implements store.Store, from the partial index of final
// orders holding customer data.
func (s *Store) Personal(ctx context.Context, site string, before time.Time, limit int) ([]*order.Order, error) {
	return s.bySiteBefore(ctx, "listing orders whose customer data is due for erasure", "personal_since", site, before, limit)
}

// bySiteBefore reads a site's orders whose time column (deadline or
// unasked, each with its partial index) is set and before before, soonest
// first.
func (s *Store) bySiteBefore(ctx context.Context, what, column, site string, before time.Time, limit int) ([]*order.Order, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.queryOrders(ctx, what, `SELECT site, id, doc FROM checkout_orders
		WHERE site = $1 AND `+column+` IS NOT NULL AND `+column+` < $2 ORDER BY `+column+`, id LIMIT $3`,
		site, ns(before), limitOr(limit))
}

func (s *Store) queryOrders(ctx context.Context, what, q string, args ...any) ([]*order.Order, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []*order.Order
	for rows.Next() {
		var key order.Key
		var raw []byte
		if err := rows.Scan(&key.Site, &key.ID, &raw); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		o, err := decodeOrder(key, raw)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}
