// Package bolt is the embedded default store of caddy-checkout: orders, the
// outbox of shop callbacks and idempotency records in one bbolt file.
//
// This file opens and closes the file and holds the key layout shared by
// the other files: orders.go (orders and their indexes), outbox.go (shop
// callbacks) and idempotency.go (Idempotency-Key records).
//
// Every write goes through the group committer (commit.go), so that many
// concurrent writers share one commit and one fsync while each write is
// still durable when its method returns. Every index is maintained in the
// same transaction as the row it points to, so a crash never leaves an
// index that disagrees with the data.
package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
)

var _ store.Store = (*Store)(nil)

// ErrLocked is returned by Open, wrapped with the path, when another
// process (or another Store in this process) holds the file.
var ErrLocked = errors.New("database is locked by another process")

// Defaults for Options.
const (
	DefaultTimeout = 5 * time.Second
	// DefaultMaxBatchSize caps one group commit, so that one transaction
	// never grows without bound under a burst.
	DefaultMaxBatchSize = 1000
	// DefaultCommitSpacing lets writes that arrive within 2 ms of a commit
	// share the next one. It adds at most 2 ms to a write under load and
	// nothing to one after a quiet spell.
	DefaultCommitSpacing = 2 * time.Millisecond
)

// Options tune the store. Zero values take the defaults.
type Options struct {
	// Timeout is how long Open waits for the file lock, which another
	// process (or a Caddy config still running during a reload) may
	// hold. Default 5s.
	Timeout time.Duration
	// MaxBatchSize is the most writes committed together. Default 1000.
	MaxBatchSize int
	// CommitSpacing is the least time from the start of one group commit
	// to the start of the next (commit.go). Default DefaultCommitSpacing;
	// negative commits back to back.
	CommitSpacing time.Duration
}

// Store is the bbolt implementation of store.Store. It is safe for
// concurrent use. Open it once per file and share it (bbolt holds an
// exclusive lock on the file while it is open).
type Store struct {
	db     *bbolt.DB
	path   string
	commit *committer
}

// Buckets. Each index lives in its own bucket so that a range scan never
// has to skip rows of another kind.
var (
	bucketMeta = []byte("meta")

	// orders: orderKey → order JSON.
	bucketOrders = []byte("orders")
	// refs: attempt ref → orderKey; and "\x00" + provider ref → orderKey
	// (attempt refs never start with NUL).
	bucketRefs = []byte("refs")
	// open: site + "\x00" + time(Deadline) + orderKey → nothing, for open
	// orders only (schema 2; schema 1 had no site prefix and ExpiresAt).
	bucketOpen = []byte("open")
	// unasked: site + "\x00" + time(Unasked) + orderKey → nothing, for
	// open orders with an attempt waiting at a provider (schema 3).
	bucketUnasked = []byte("unasked")
	// personal: site + "\x00" + time(PersonalSince) + orderKey → nothing,
	// for final orders still holding their customer's data (schema 4).
	bucketPersonal = []byte("personal")
	// updated: time(UpdatedAt) + orderKey → status.
	bucketUpdated = []byte("updated")

	// deliveries: ID → delivery JSON.
	bucketDeliveries = []byte("deliveries")
	// due: time(NextAt) + ID → queueKey, for pending deliveries only.
	bucketDue = []byte("due")
	// queue: orderKey + "\x00" + be64(Seq) → ID, for pending deliveries
	// only; the first row under an order's prefix is its head.
	bucketQueue = []byte("queue")
	// created: time(CreatedAt) + ID → state, for listing all deliveries.
	bucketCreated = []byte("created")
	// byorder: orderKey + "\x00" + time(CreatedAt) + ID → nothing, for
	// listing one order's deliveries without scanning them all.
	bucketByOrder = []byte("byorder")
	// seqs: orderKey → be64(highest Seq given to a delivery of the order).
	bucketSeqs = []byte("seqs")

	// idempotency: Idempotency-Key → record JSON.
	bucketIdempotency = []byte("idempotency")

	// providerdata: a provider's own key → value (store.ProviderData).
	bucketProviderData = []byte("providerdata")

	// spent: single-use token key → time(until); spentexp: time(until) +
	// key → nothing, to forget expired tokens oldest first.
	bucketSpent    = []byte("spent")
	bucketSpentExp = []byte("spentexp")
)

var allBuckets = [][]byte{
	bucketMeta, bucketOrders, bucketRefs, bucketOpen, bucketUnasked, bucketPersonal, bucketUpdated,
	bucketDeliveries, bucketDue, bucketQueue, bucketCreated, bucketByOrder, bucketSeqs,
	bucketIdempotency, bucketProviderData, bucketSpent, bucketSpentExp,
}

// schemaVersion is stored in the meta bucket so that a later layout can
// recognise (and migrate) a file written by this one, and this code can
// refuse a file from the future instead of misreading it.
const schemaVersion = "4"

// upgrades[n-1] brings a file of schema n to schema n+1.
var upgrades = []func(*bbolt.Tx) error{
	rebuildIndexes, // 2: the open index per site, provider refs, the outbox's lines
	indexUnasked,   // 3: the reconciler's queue
	indexPersonal,  // 4: final orders holding customer data
}

var keySchema = []byte("schema")

// Open opens (creating if needed) the store file at path. The directory
// is created with mode 0700 and the file with 0600: it holds customer
// e-mail addresses and order data.
func Open(path string, opts Options) (*Store, error) {
	if opts.Timeout <= 0 {
		// bbolt's own zero means "wait forever", which would hang a Caddy
		// start behind a stuck process with no message at all.
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxBatchSize <= 0 {
		opts.MaxBatchSize = DefaultMaxBatchSize
	}
	switch {
	case opts.CommitSpacing == 0:
		opts.CommitSpacing = DefaultCommitSpacing
	case opts.CommitSpacing < 0:
		opts.CommitSpacing = 0
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("opening checkout store %s: creating its directory: %w", path, err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: opts.Timeout,
		// Stated rather than left to the default: a write is acknowledged
		// to a payment provider as soon as it returns, so it must be on disk.
		NoSync: false,
		// The hashmap freelist keeps page allocation O(1) as the file grows
		// past what an array scan does cheaply.
		FreelistType: bbolt.FreelistMapType,
		// The freelist is rebuilt by scanning at open instead of being
		// written at every commit: fewer pages per commit, and the data
		// itself is as durable as before (etcd runs bbolt this way).
		NoFreelistSync: true,
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("opening checkout store %s: %w (waited %s)", path, ErrLocked, opts.Timeout)
		}
		return nil, fmt.Errorf("opening checkout store %s: %w", path, err)
	}

	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("creating bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get(keySchema); {
		case v == nil:
			return meta.Put(keySchema, []byte(schemaVersion))
		case len(v) == 1 && v[0] >= '1' && v[0] < schemaVersion[0]:
			// Each later schema's additions, in turn.
			for _, up := range upgrades[v[0]-'1':] {
				if err := up(tx); err != nil {
					return fmt.Errorf("migrating from schema %s: %w", v, err)
				}
			}
			return meta.Put(keySchema, []byte(schemaVersion))
		case string(v) != schemaVersion:
			return fmt.Errorf("file has schema version %q, this build reads %q", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("opening checkout store %s: %w", path, err)
	}
	return &Store{db: db, path: path, commit: newCommitter(db, opts.MaxBatchSize, opts.CommitSpacing)}, nil
}

// Stats are bbolt's counters of the file's transactions, for benchmarks
// that explain where a commit's time goes.
func (s *Store) Stats() bbolt.Stats { return s.db.Stats() }

// Path is the file the store was opened from.
func (s *Store) Path() string { return s.path }

// Close releases the file and its lock. Writes already acknowledged are
// on disk; Close waits for a commit in progress.
func (s *Store) Close() error {
	s.commit.close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing checkout store %s: %w", s.path, err)
	}
	return nil
}

// defaultLimit is what a zero or negative limit means, as the store
// package documents for its filters; it keeps one careless call from
// loading the whole file into memory.
const defaultLimit = 1000

func limitOr(n int) int {
	if n <= 0 {
		return defaultLimit
	}
	return n
}

// orderKey is site + "\x00" + order id. NUL cannot occur in an order id
// (ValidID allows printable ASCII only) and is refused in a site, so the
// key splits back unambiguously and one site's keys form a prefix range.
func orderKey(k order.Key) ([]byte, error) {
	if k.Site == "" || k.ID == "" {
		return nil, fmt.Errorf("order key %q: site and order id must not be empty", k.String())
	}
	if strings.IndexByte(k.Site, 0) >= 0 || strings.IndexByte(k.ID, 0) >= 0 {
		return nil, fmt.Errorf("order key %q: must not contain NUL", k.String())
	}
	b := make([]byte, 0, len(k.Site)+1+len(k.ID))
	b = append(b, k.Site...)
	b = append(b, 0)
	b = append(b, k.ID...)
	return b, nil
}

// keyName renders an order key for messages as "site/id".
func keyName(k []byte) string {
	return strings.Replace(string(k), "\x00", "/", 1)
}

// timeLen is the length of an encoded time.
const timeLen = 12

// appendTime encodes t so that byte order is time order: seconds since the
// Unix epoch with the sign bit flipped, then nanoseconds, both big-endian.
// Not UnixNano: that overflows outside 1678-2262, and the zero time (an
// unset NextAt, say) is a value callers can pass.
func appendTime(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

func decodeTime(b []byte) time.Time {
	sec := int64(binary.BigEndian.Uint64(b[:8]) ^ (1 << 63))
	return time.Unix(sec, int64(binary.BigEndian.Uint32(b[8:timeLen]))).UTC()
}

// join concatenates key parts into a fresh slice, never aliasing bbolt
// memory (which is only valid inside its transaction).
func join(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}
