// Idempotency-Key records of the server API, kept in their own bucket: a
// call's first arrival claims the key, its end stores the answer that
// every repeat of the call gets.
package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/caddy-checkout/checkout/store"
)

func decodeIdempotent(key string, raw []byte) (*store.Idempotent, error) {
	var rec store.Idempotent
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("reading idempotency key %q: %w", key, err)
	}
	return &rec, nil
}

func putIdempotent(tx *bbolt.Tx, key string, rec store.Idempotent) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding idempotency key %q: %w", key, err)
	}
	if err := tx.Bucket(bucketIdempotency).Put([]byte(key), data); err != nil {
		return fmt.Errorf("writing idempotency key %q: %w", key, err)
	}
	return nil
}

// BeginIdempotent implements store.Store.
//
// The time a stored record's age is measured against is rec.CreatedAt
// (time.Now when that is zero, and then it is also what is stored), so a
// caller with an injected clock gets consistent answers. A stale of zero
// or less never takes a record over: reading it as "stale at once" would
// run a call twice while its first run is still in flight.
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
	now := rec.CreatedAt
	var found *store.Idempotent
	err := s.commit.do(func(tx *bbolt.Tx) error {
		found = nil
		if raw := tx.Bucket(bucketIdempotency).Get([]byte(key)); raw != nil {
			old, err := decodeIdempotent(key, raw)
			if err != nil {
				return err
			}
			if !old.Abandoned(now, stale) {
				found = old
				return nil
			}
		}
		return putIdempotent(tx, key, rec)
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}

// FinishIdempotent implements store.Store. The record is stored as Done
// whatever rec says: a finished call left looking in flight would answer
// every repeat with 409 and then, once stale, run the call a second time.
// A zero Fingerprint or CreatedAt keeps the one stored by Begin.
func (s *Store) FinishIdempotent(ctx context.Context, key string, rec store.Idempotent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("finishing idempotent call: empty key")
	}
	return s.commit.do(func(tx *bbolt.Tx) error {
		var old *store.Idempotent
		if raw := tx.Bucket(bucketIdempotency).Get([]byte(key)); raw != nil && (rec.Fingerprint == "" || rec.CreatedAt.IsZero()) {
			var err error
			if old, err = decodeIdempotent(key, raw); err != nil {
				return err
			}
		}
		return putIdempotent(tx, key, store.Finished(rec, old))
	})
}

// ForgetIdempotent implements store.Store. Forgetting a key that is not
// there is not an error: the outcome the caller wants already holds.
func (s *Store) ForgetIdempotent(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.commit.do(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketIdempotency).Delete([]byte(key)); err != nil {
			return fmt.Errorf("forgetting idempotency key %q: %w", key, err)
		}
		return nil
	})
}
