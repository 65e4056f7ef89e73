// Provider data (store.ProviderData) in its own bucket: a provider's
// checkpoints, counters and lookups, written through the same group
// committer as orders, so each write is durable when the call returns.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/caddy-checkout/checkout/store"
)

// GetData implements store.ProviderData.
func (s *Store) GetData(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var val []byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		val = bytes.Clone(tx.Bucket(bucketProviderData).Get([]byte(key)))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if val == nil {
		return nil, fmt.Errorf("provider data %q: %w", key, store.ErrNotFound)
	}
	return val, nil
}

// PutData implements store.ProviderData.
func (s *Store) PutData(ctx context.Context, key string, val []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("writing provider data: empty key")
	}
	return s.commit.do(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketProviderData).Put([]byte(key), bytes.Clone(val))
	})
}

// PutDataIfAbsent implements store.ProviderData.
func (s *Store) PutDataIfAbsent(ctx context.Context, key string, val []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if key == "" {
		return nil, fmt.Errorf("writing provider data: empty key")
	}
	var stored []byte
	err := s.commit.do(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketProviderData)
		if old := b.Get([]byte(key)); old != nil {
			stored = bytes.Clone(old)
			return nil
		}
		stored = bytes.Clone(val)
		return b.Put([]byte(key), stored)
	})
	if err != nil {
		return nil, err
	}
	return stored, nil
}

// ScanData implements store.ProviderData.
func (s *Store) ScanData(ctx context.Context, prefix string, fn func(key string, val []byte) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketProviderData).Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			if err := fn(string(k), bytes.Clone(v)); err != nil {
				return err
			}
		}
		return nil
	})
}

// NextSeq implements store.ProviderData. The counter is kept as the next
// number to give, big-endian.
func (s *Store) NextSeq(ctx context.Context, key string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if key == "" {
		return 0, fmt.Errorf("counting: empty key")
	}
	var n uint64
	err := s.commit.do(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketProviderData)
		n = 0
		if old := b.Get([]byte(key)); len(old) == 8 {
			n = binary.BigEndian.Uint64(old)
		} else if old != nil {
			return fmt.Errorf("counter %q holds %d bytes, not a counter", key, len(old))
		}
		return b.Put([]byte(key), binary.BigEndian.AppendUint64(nil, n+1))
	})
	return n, err
}
