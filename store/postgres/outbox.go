// The outbox of shop callbacks, shared by every instance. A delivery that
// Due hands out is claimed by this instance for a lease: the other
// instances skip it (FOR UPDATE SKIP LOCKED, then the claim), so each
// callback is tried by one instance at a time, and a dead instance's
// claims run out and are taken over. One order's line goes out in Seq
// order: only the earliest pending delivery of a line is ever due, claimed
// or not.
package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
)

// prepareDelivery fills the defaults of a delivery added with its order's
// update and checks it; seq is the order's highest Seq so far.
func (s *Store) prepareDelivery(key order.Key, d store.Delivery, seq *int64) (store.Delivery, error) {
	if err := d.ForOrder(key); err != nil {
		return d, err
	}
	if d.Seq == 0 {
		d.Seq = uint64(*seq) + 1
	}
	if int64(d.Seq) > *seq {
		*seq = int64(d.Seq)
	}
	return d, nil
}

func insertDelivery(ctx context.Context, tx pgx.Tx, key order.Key, d *store.Delivery) error {
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encoding delivery %s: %w", d.ID, err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO checkout_deliveries (id, site, order_id, queue, seq, state, next_at, created_at, doc)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		d.ID, d.Site, d.OrderID, d.Queue, int64(d.Seq), string(d.State), ns(d.NextAt), ns(d.CreatedAt), data)
	switch {
	case isUnique(err, "checkout_deliveries_pkey"):
		// The ID is the webhook-id the shop deduplicates on; reusing it
		// would make the shop drop a real callback as a repeat.
		return fmt.Errorf("adding delivery %s to order %s: the id is already used", d.ID, key)
	case isUnique(err, "checkout_deliveries_line"):
		return fmt.Errorf("delivery %s: seq %d of order %s is taken by another pending delivery", d.ID, d.Seq, key)
	case err != nil:
		return fmt.Errorf("adding delivery %s to order %s: %w", d.ID, key, err)
	}
	return nil
}

func decodeDelivery(id string, raw []byte) (*store.Delivery, error) {
	var d store.Delivery
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("reading delivery %s: %w", id, err)
	}
	return &d, nil
}

// SaveDelivery implements store.Store. The delivery's order and place in
// its line (Site, OrderID, Queue, Seq) cannot change. Saving ends this
// instance's claim of the delivery.
func (s *Store) SaveDelivery(ctx context.Context, d *store.Delivery) error {
	return s.saveDelivery(ctx, d, nil)
}

// SaveDeliveryIf implements store.DeliverySwapper: the stored row must
// still be was, byte for byte as encoded.
func (s *Store) SaveDeliveryIf(ctx context.Context, d, was *store.Delivery) error {
	if was == nil {
		return fmt.Errorf("saving delivery: nil previous version")
	}
	prev, err := json.Marshal(was)
	if err != nil {
		return fmt.Errorf("encoding delivery %s: %w", was.ID, err)
	}
	return s.saveDelivery(ctx, d, prev)
}

func (s *Store) saveDelivery(ctx context.Context, d *store.Delivery, prev []byte) error {
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
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var site, orderID, queue string
		var seq int64
		var stored []byte
		err := tx.QueryRow(ctx, `SELECT site, order_id, queue, seq, doc FROM checkout_deliveries WHERE id = $1 FOR UPDATE`,
			next.ID).Scan(&site, &orderID, &queue, &seq, &stored)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("delivery %s: %w", next.ID, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("saving delivery %s: %w", next.ID, err)
		}
		if prev != nil && !bytes.Equal(stored, prev) {
			return fmt.Errorf("saving delivery %s: %w", next.ID, store.ErrStale)
		}
		if site != next.Site || orderID != next.OrderID || uint64(seq) != next.Seq || queue != next.Queue {
			return fmt.Errorf("saving delivery %s: order or seq changed (%s/%s #%d → %s/%s #%d)",
				next.ID, site, orderID, seq, next.Site, next.OrderID, next.Seq)
		}
		data, err := json.Marshal(&next)
		if err != nil {
			return fmt.Errorf("encoding delivery %s: %w", next.ID, err)
		}
		_, err = tx.Exec(ctx, `UPDATE checkout_deliveries SET state = $2, next_at = $3, created_at = $4, doc = $5,
			claimed_by = NULL, claimed_until = NULL WHERE id = $1`,
			next.ID, string(next.State), ns(next.NextAt), ns(next.CreatedAt), data)
		if isUnique(err, "checkout_deliveries_line") {
			return fmt.Errorf("saving delivery %s: seq %d of order %s/%s is taken by another pending delivery", next.ID, next.Seq, site, orderID)
		}
		if err != nil {
			return fmt.Errorf("saving delivery %s: %w", next.ID, err)
		}
		return nil
	})
}

// Delivery implements store.Store.
func (s *Store) Delivery(ctx context.Context, id string) (*store.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT doc FROM checkout_deliveries WHERE id = $1`, id).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("delivery %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading delivery %s: %w", id, err)
	}
	return decodeDelivery(id, raw)
}

// Due implements store.Store for several instances: what it returns is
// claimed by this instance until the claim lease runs out (renewed by
// every Due that returns it again, ended by SaveDelivery); deliveries
// another live instance claimed are not returned. Soonest NextAt first.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]*store.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `UPDATE checkout_deliveries d
		SET claimed_by = $3, claimed_until = now() + make_interval(secs => $4)
		WHERE d.id IN (
			SELECT c.id FROM checkout_deliveries c
			WHERE c.state = 'pending' AND c.next_at <= $1
			  AND (c.claimed_until IS NULL OR c.claimed_until < now() OR c.claimed_by = $3)
			  AND NOT EXISTS (SELECT 1 FROM checkout_deliveries e
				WHERE e.state = 'pending' AND e.site = c.site AND e.order_id = c.order_id
				  AND e.queue = c.queue AND e.seq < c.seq)
			ORDER BY c.next_at, c.id
			LIMIT $2
			FOR UPDATE SKIP LOCKED)
		RETURNING d.id, d.doc`, ns(now), limitOr(limit), s.opts.Instance, s.opts.ClaimLease.Seconds())
	out, err := readDeliveries(rows, err, "claiming due deliveries")
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].NextAt.Equal(out[j].NextAt) {
			return out[i].NextAt.Before(out[j].NextAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// NextDue implements store.Store: the earliest NextAt of any pending
// delivery, claimed or not (an early answer costs the notifier one empty
// Due, never a missed delivery).
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, false, err
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	var id string
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT id, doc FROM checkout_deliveries WHERE state = 'pending' ORDER BY next_at, id LIMIT 1`).Scan(&id, &raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("finding the next due delivery: %w", err)
	}
	d, err := decodeDelivery(id, raw)
	if err != nil {
		return time.Time{}, false, err
	}
	return d.NextAt, true, nil
}

// Deliveries implements store.Store, newest CreatedAt first.
func (s *Store) Deliveries(ctx context.Context, f store.DeliveryFilter) ([]*store.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	q := `SELECT id, doc FROM checkout_deliveries`
	var where []string
	args := []any{limitOr(f.Limit)}
	add := func(col, v string) {
		if v != "" {
			args = append(args, v)
			where = append(where, fmt.Sprintf("%s = $%d", col, len(args)))
		}
	}
	add("state", string(f.State))
	add("site", f.Site)
	add("order_id", f.OrderID)
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT $1`
	rows, err := s.pool.Query(ctx, q, args...)
	return readDeliveries(rows, err, "listing deliveries")
}

// readDeliveries decodes the (id, doc) rows of a query, whose error is
// err; what names the query in errors.
func readDeliveries(rows pgx.Rows, err error, what string) ([]*store.Delivery, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []*store.Delivery
	for rows.Next() {
		var id string
		var raw []byte
		if err := rows.Scan(&id, &raw); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		d, err := decodeDelivery(id, raw)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}
