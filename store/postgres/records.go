// The small records beside orders: Idempotency-Key records of the server
// API, spent single-use tokens, and the providers' key-value space.
package postgres

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-checkout/checkout/store"
)

func decodeIdempotent(key string, raw []byte) (*store.Idempotent, error) {
	var rec store.Idempotent
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("reading idempotency key %q: %w", key, err)
	}
	return &rec, nil
}

// BeginIdempotent implements store.Store, with the bbolt store's
// semantics: age is measured against rec.CreatedAt (time.Now when zero,
// and then stored), and a stale of zero or less never takes over.
func (s *Store) BeginIdempotent(ctx context.Context, key string, rec store.Idempotent, stale time.Duration) (*store.Idempotent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if key == "" {
		return nil, fmt.Errorf("beginning idempotent call: empty key")
	}
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = time.Now()
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encoding idempotency key %q: %w", key, err)
	}
	var found *store.Idempotent
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		found = nil
		var raw []byte
		err := tx.QueryRow(ctx, `SELECT doc FROM checkout_idempotency WHERE key = $1 FOR UPDATE`, []byte(key)).Scan(&raw)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			tag, err := tx.Exec(ctx, `INSERT INTO checkout_idempotency (key, doc) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, []byte(key), data)
			if err != nil {
				return fmt.Errorf("writing idempotency key %q: %w", key, err)
			}
			if tag.RowsAffected() == 0 {
				return errRetry // begun by another instance just now: read it
			}
			return nil
		case err != nil:
			return fmt.Errorf("reading idempotency key %q: %w", key, err)
		}
		old, err := decodeIdempotent(key, raw)
		if err != nil {
			return err
		}
		if !old.Abandoned(rec.CreatedAt, stale) {
			found = old
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE checkout_idempotency SET doc = $2 WHERE key = $1`, []byte(key), data)
		if err != nil {
			return fmt.Errorf("writing idempotency key %q: %w", key, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}

// FinishIdempotent implements store.Store: stored as Done whatever rec
// says; a zero Fingerprint or CreatedAt keeps the stored one.
func (s *Store) FinishIdempotent(ctx context.Context, key string, rec store.Idempotent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("finishing idempotent call: empty key")
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var old *store.Idempotent
		var raw []byte
		err := tx.QueryRow(ctx, `SELECT doc FROM checkout_idempotency WHERE key = $1 FOR UPDATE`, []byte(key)).Scan(&raw)
		switch {
		case err == nil:
			if old, err = decodeIdempotent(key, raw); err != nil {
				return err
			}
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("reading idempotency key %q: %w", key, err)
		}
		out := store.Finished(rec, old)
		data, err := json.Marshal(out)
		if err != nil {
			return fmt.Errorf("encoding idempotency key %q: %w", key, err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO checkout_idempotency (key, doc) VALUES ($1, $2)
			ON CONFLICT (key) DO UPDATE SET doc = EXCLUDED.doc`, []byte(key), data)
		if err != nil {
			return fmt.Errorf("writing idempotency key %q: %w", key, err)
		}
		return nil
	})
}

// ForgetIdempotent implements store.Store. Forgetting a key that is not
// there is not an error.
func (s *Store) ForgetIdempotent(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `DELETE FROM checkout_idempotency WHERE key = $1`, []byte(key)); err != nil {
		return fmt.Errorf("forgetting idempotency key %q: %w", key, err)
	}
	return nil
}

// pruneSpent bounds how many expired tokens one SpendToken forgets.
const pruneSpent = 64

// SpendToken implements store.Store. The primary key decides between
// instances spending one token at once: exactly one insert succeeds.
func (s *Store) SpendToken(ctx context.Context, key string, until, now time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if key == "" {
		return false, fmt.Errorf("spending token: empty key")
	}
	var fresh bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// Rows another instance is forgetting right now are skipped, not
		// waited for.
		if _, err := tx.Exec(ctx, `DELETE FROM checkout_spent WHERE key IN (
			SELECT key FROM checkout_spent WHERE until < $1 ORDER BY until LIMIT $2 FOR UPDATE SKIP LOCKED)`,
			ns(now), pruneSpent); err != nil {
			return fmt.Errorf("forgetting spent tokens: %w", err)
		}
		tag, err := tx.Exec(ctx, `INSERT INTO checkout_spent (key, until) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`,
			[]byte(key), ns(until))
		if err != nil {
			return fmt.Errorf("recording spent token: %w", err)
		}
		fresh = tag.RowsAffected() == 1
		return nil
	})
	if err != nil {
		return false, err
	}
	return fresh, nil
}

// GetData implements store.ProviderData.
func (s *Store) GetData(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	var val []byte
	err := s.pool.QueryRow(ctx, `SELECT val FROM checkout_data WHERE key = $1`, []byte(key)).Scan(&val)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("provider data %q: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading provider data %q: %w", key, err)
	}
	if val == nil {
		val = []byte{}
	}
	return val, nil
}

// PutData implements store.ProviderData.
func (s *Store) PutData(ctx context.Context, key string, val []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("storing provider data: empty key")
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	if val == nil {
		val = []byte{}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO checkout_data (key, val) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET val = EXCLUDED.val`, []byte(key), val)
	if err != nil {
		return fmt.Errorf("storing provider data %q: %w", key, err)
	}
	return nil
}

// PutDataIfAbsent implements store.ProviderData. Two instances putting one
// key at once meet on the primary key: one value is stored, both get it.
func (s *Store) PutDataIfAbsent(ctx context.Context, key string, val []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if key == "" {
		return nil, fmt.Errorf("storing provider data: empty key")
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	if val == nil {
		val = []byte{}
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO checkout_data (key, val) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, []byte(key), val)
	if err != nil {
		return nil, fmt.Errorf("storing provider data %q: %w", key, err)
	}
	if tag.RowsAffected() == 1 {
		return append([]byte(nil), val...), nil
	}
	// A new statement, so a new snapshot that sees the winner's row.
	var stored []byte
	if err := s.pool.QueryRow(ctx, `SELECT val FROM checkout_data WHERE key = $1`, []byte(key)).Scan(&stored); err != nil {
		return nil, fmt.Errorf("reading provider data %q: %w", key, err)
	}
	if stored == nil {
		stored = []byte{}
	}
	return stored, nil
}

// ScanData implements store.ProviderData. The rows are read first and fn
// runs after, so fn may call the store.
func (s *Store) ScanData(ctx context.Context, prefix string, fn func(key string, val []byte) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	qctx, cancel := s.call(ctx)
	defer cancel()
	var rows pgx.Rows
	var err error
	if end, ok := successor([]byte(prefix)); ok {
		rows, err = s.pool.Query(qctx, `SELECT key, val FROM checkout_data WHERE key >= $1 AND key < $2 ORDER BY key`, []byte(prefix), end)
	} else {
		rows, err = s.pool.Query(qctx, `SELECT key, val FROM checkout_data WHERE key >= $1 ORDER BY key`, []byte(prefix))
	}
	if err != nil {
		return fmt.Errorf("scanning provider data %q: %w", prefix, err)
	}
	type kv struct{ k, v []byte }
	var all []kv
	for rows.Next() {
		var r kv
		if err := rows.Scan(&r.k, &r.v); err != nil {
			rows.Close()
			return fmt.Errorf("scanning provider data %q: %w", prefix, err)
		}
		if r.v == nil {
			r.v = []byte{}
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("scanning provider data %q: %w", prefix, err)
	}
	for _, r := range all {
		if err := fn(string(r.k), r.v); err != nil {
			return err
		}
	}
	return nil
}

// successor is the smallest byte string greater than every string with
// prefix p; ok is false when there is none (p is empty or all 0xff).
func successor(p []byte) ([]byte, bool) {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1], true
		}
	}
	return nil, false
}

// NextSeq implements store.ProviderData. The counter is kept, as in the
// bbolt store, as the next number to give, big-endian, under key; the row
// lock makes each number given once across instances.
func (s *Store) NextSeq(ctx context.Context, key string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if key == "" {
		return 0, fmt.Errorf("counting: empty key")
	}
	var n uint64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var old []byte
		err := tx.QueryRow(ctx, `SELECT val FROM checkout_data WHERE key = $1 FOR UPDATE`, []byte(key)).Scan(&old)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			n = 0
			tag, err := tx.Exec(ctx, `INSERT INTO checkout_data (key, val) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`,
				[]byte(key), binary.BigEndian.AppendUint64(nil, 1))
			if err != nil {
				return fmt.Errorf("counting %q: %w", key, err)
			}
			if tag.RowsAffected() == 0 {
				return errRetry
			}
			return nil
		case err != nil:
			return fmt.Errorf("counting %q: %w", key, err)
		case len(old) != 8:
			return fmt.Errorf("counter %q holds %d bytes, not a counter", key, len(old))
		}
		n = binary.BigEndian.Uint64(old)
		_, err = tx.Exec(ctx, `UPDATE checkout_data SET val = $2 WHERE key = $1`, []byte(key), binary.BigEndian.AppendUint64(nil, n+1))
		if err != nil {
			return fmt.Errorf("counting %q: %w", key, err)
		}
		return nil
	})
	return n, err
}
