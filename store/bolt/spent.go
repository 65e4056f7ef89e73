// Spent single-use tokens (the return token that carries a verified
// payment to the shop): kept until they would have expired anyway, so a
// token works once across reloads, restarts and every instance that
// shares the file.
package bolt

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// pruneSpent bounds how many expired tokens one SpendToken forgets, so
// that its transaction stays short however many piled up.
const pruneSpent = 64

// SpendToken implements store.Store.
func (s *Store) SpendToken(ctx context.Context, key string, until, now time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if key == "" {
		return false, fmt.Errorf("spending token: empty key")
	}
	var fresh bool
	err := s.commit.do(func(tx *bbolt.Tx) error {
		spent, exp := tx.Bucket(bucketSpent), tx.Bucket(bucketSpentExp)
		if err := forgetSpent(spent, exp, now); err != nil {
			return err
		}
		fresh = false
		if spent.Get([]byte(key)) != nil {
			return nil
		}
		fresh = true
		t := appendTime(nil, until)
		if err := spent.Put([]byte(key), t); err != nil {
			return fmt.Errorf("recording spent token: %w", err)
		}
		return exp.Put(join(t, []byte(key)), nil)
	})
	if err != nil {
		return false, err
	}
	return fresh, nil
}

// forgetSpent deletes up to pruneSpent tokens whose until is before now.
func forgetSpent(spent, exp *bbolt.Bucket, now time.Time) error {
	limit := appendTime(nil, now)
	var old [][]byte
	c := exp.Cursor()
	for k, _ := c.First(); k != nil && len(old) < pruneSpent && bytes.Compare(k[:timeLen], limit) < 0; k, _ = c.Next() {
		old = append(old, clone(k))
	}
	for _, k := range old {
		if err := spent.Delete(k[timeLen:]); err != nil {
			return fmt.Errorf("forgetting spent token: %w", err)
		}
		if err := exp.Delete(k); err != nil {
			return fmt.Errorf("forgetting spent token: %w", err)
		}
	}
	return nil
}
