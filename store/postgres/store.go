// Package postgres is the store of caddy-checkout for several Caddy
// instances behind one load balancer: orders, the outbox of shop
// callbacks, idempotency records, spent tokens and provider data in one
// PostgreSQL database that every instance shares, through
// github.com/jackc/pgx/v5.
//
// This file opens the store (applying the embedded schema migrations under
// a lock) and holds what the other files share: orders.go (orders and
// their indexes), outbox.go (shop callbacks, claimed per instance),
// records.go (idempotency keys, spent tokens, provider data) and lease.go
// (leader leases and the change feed of live pages).
//
// Every state change and its outbox rows are one transaction. Updates of
// one order are serialised by its row lock (SELECT … FOR UPDATE), and two
// instances creating the same order meet on its primary key: the loser
// runs its update again against the winner's row.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
)

var (
	_ store.Store   = (*Store)(nil)
	_ store.Leaser  = (*Store)(nil)
	_ store.Watcher = (*Store)(nil)

	_ store.DeliverySwapper = (*Store)(nil)
)

// Defaults for Options.
const (
	DefaultStatementTimeout = 5 * time.Second
	DefaultConnectTimeout   = 5 * time.Second
	DefaultMaxConns         = 32
	// DefaultClaimLease is how long a delivery handed out by Due stays
	// this instance's. The notifier asks Due at least every second and
	// each answer renews the claims of its tries in flight, so only a
	// dead instance's claims run out.
	DefaultClaimLease = 10 * time.Second
)

// Options tune the store. Zero values take the defaults.
type Options struct {
	// StatementTimeout bounds every statement on the server
	// (statement_timeout), and every call of the store on the client.
	StatementTimeout time.Duration
	// ConnectTimeout bounds opening one connection.
	ConnectTimeout time.Duration
	// MaxConns is the size of the connection pool, unless the connection
	// string sets pool_max_conns. With n instances the server sees up to
	// n × MaxConns sessions.
	MaxConns int32
	// ClaimLease: see DefaultClaimLease.
	ClaimLease time.Duration
	// Instance names this process in claims and leases; default a random
	// name. Two stores with one Instance act as one instance.
	Instance string
	// Tracer, when set, is told of every statement the store sends (for
	// benchmarks that count statements per order, or for tracing); it
	// must be safe for concurrent use.
	Tracer pgx.QueryTracer
}

// Store is the PostgreSQL implementation of store.Store. It is safe for
// concurrent use, and any number of Stores, in any number of processes,
// may share one database.
type Store struct {
	pool      *pgxpool.Pool
	opts      Options
	name      string // the database, for messages: host:port/dbname, no credentials
	feed      *feed  // announces committed changes to the other instances
	closeOnce sync.Once
}

// ParseDSN checks a connection string without connecting, and returns its
// description without the password for messages. Errors never contain the
// password either.
func ParseDSN(dsn string) (string, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return "", fmt.Errorf("invalid PostgreSQL connection string (%s)", redactErr(err))
	}
	return describe(cfg.ConnConfig), nil
}

func describe(cc *pgx.ConnConfig) string {
	return fmt.Sprintf("postgres://%s/%s", hostPort(cc.Host, cc.Port), cc.Database)
}

func hostPort(host string, port uint16) string {
	if strings.HasPrefix(host, "/") {
		return url.PathEscape(host)
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(int(port))
}

// parseProblems are what pgx says of a connection string it cannot
// parse. Its error repeats the string with the password hidden only as
// well as an unparseable string allows, and the errors it wraps (such as
// url.Parse's) repeat it whole, so only one of these phrases is shown.
var parseProblems = []string{
	"failed to parse as URL", "failed to parse as keyword/value", "invalid port", "invalid sslmode",
	"sslmode is invalid", "invalid target_session_attrs", "invalid connect_timeout", "unterminated quoted string",
	"invalid keyword/value", "missing password", "invalid escape", "cannot parse",
}

// redactErr describes a parse error of a connection string without any
// of the string's text.
func redactErr(err error) string {
	msg := err.Error()
	for _, p := range parseProblems {
		if strings.Contains(msg, p) {
			return p + "; the string is not shown, as it may hold the password"
		}
	}
	return "the string is not shown, as it may hold the password"
}

// Open connects to the database named by dsn, applies the schema
// migrations this build has (under an advisory lock, so instances
// starting together take turns), and returns the store. A database whose
// schema is newer than this build's is refused.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if opts.StatementTimeout <= 0 {
		opts.StatementTimeout = DefaultStatementTimeout
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.ClaimLease <= 0 {
		opts.ClaimLease = DefaultClaimLease
	}
	if opts.Instance == "" {
		opts.Instance = order.NewRef()
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("opening checkout store: invalid PostgreSQL connection string (%s)", redactErr(err))
	}
	if !strings.Contains(dsn, "pool_max_conns") { // the connection string's own setting wins
		cfg.MaxConns = opts.MaxConns
	}
	cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	if opts.Tracer != nil {
		cfg.ConnConfig.Tracer = opts.Tracer
	}
	rp := cfg.ConnConfig.RuntimeParams
	rp["statement_timeout"] = strconv.FormatInt(opts.StatementTimeout.Milliseconds(), 10)
	// A transaction left open by a client that vanished must not hold
	// an order's row lock for long.
	rp["idle_in_transaction_session_timeout"] = strconv.FormatInt((4 * opts.StatementTimeout).Milliseconds(), 10)
	rp["application_name"] = "caddy-checkout"
	s := &Store{opts: opts, name: describe(cfg.ConnConfig)}
	s.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening checkout store %s: %w", s.name, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("opening checkout store %s: %w", s.name, err)
	}
	s.feed = newFeed(s.pool, opts.StatementTimeout)
	return s, nil
}

// Name describes the database (no credentials).
func (s *Store) Name() string { return s.name }

// Instance is the name this store claims deliveries and leases under.
func (s *Store) Instance() string { return s.opts.Instance }

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.feed.close()
		s.pool.Close()
	})
	return nil
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations are the embedded files, NNNN_name.sql, by version.
func migrations() ([]migration, error) {
	entries, err := migrationFiles.ReadDir("migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s: name must be NNNN_name.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: versions must run 1, 2, 3… without gaps", m.name)
		}
	}
	return out, nil
}

// SchemaVersion is the newest schema this build knows.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// migrateTimeout bounds waiting for another instance's migration and
// running ours.
const migrateTimeout = 10 * time.Minute

// migrationLock is the advisory lock key under which instances migrate,
// one at a time ("checkout" in ASCII).
const migrationLock int64 = 0x636865636b6f7574

func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	// Another instance may be migrating: wait for it, and give a
	// migration of a large table time, rather than the statement timeout
	// of requests.
	ctx, cancel := context.WithTimeout(ctx, migrateTimeout)
	defer cancel()
	pooled, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The session's statement timeout is lifted for the migration, so the
	// connection leaves the pool and is closed afterwards (which also
	// ends the session lock should unlocking fail).
	conn := pooled.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `SET statement_timeout = 0`); err != nil {
		return err
	}
	// A session lock, held across the migrations' own transactions.
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("waiting for the schema lock (another instance migrating?): %w", err)
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock)
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS checkout_schema (version integer NOT NULL)`); err != nil {
		return fmt.Errorf("reading the schema version: %w", err)
	}
	var have int
	err = conn.QueryRow(ctx, `SELECT version FROM checkout_schema`).Scan(&have)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if _, err := conn.Exec(ctx, `INSERT INTO checkout_schema (version) VALUES (0)`); err != nil {
			return fmt.Errorf("recording the schema version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("reading the schema version: %w", err)
	}
	if have > len(ms) {
		return fmt.Errorf("the database has checkout schema version %d, newer than this build knows (%d): "+
			"run the caddy-checkout release that wrote it, or a newer one", have, len(ms))
	}
	for _, m := range ms[have:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE checkout_schema SET version = $1`, m.version)
			return err
		})
		if err != nil {
			return fmt.Errorf("applying schema migration %s: %w", m.name, err)
		}
	}
	return nil
}

// call bounds one call of the store on the client side as well, so a
// server that stopped answering (not closed, just silent) cannot hold a
// request forever.
func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.StatementTimeout+s.opts.ConnectTimeout)
}

// errRetry makes inTx run its function again in a new transaction: a
// row it meant to create was created meanwhile by another instance.
var errRetry = errors.New("retry")

// inTx runs fn in a transaction and commits it. It runs fn again, up to a
// few times, when fn asks to (errRetry) or the server aborted the
// transaction for a deadlock or a serialisation failure.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	for try := 0; ; try++ {
		err := pgx.BeginFunc(ctx, s.pool, fn)
		if err == nil {
			return nil
		}
		if try < 8 && (errors.Is(err, errRetry) || retryable(err)) {
			continue
		}
		if errors.Is(err, errRetry) {
			return errors.New("another instance kept changing the same row; try again")
		}
		return err
	}
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// isUnique reports whether err is a unique violation of the named
// constraint or index.
func isUnique(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && (constraint == "" || pe.ConstraintName == constraint)
}

// defaultLimit is what a zero or negative limit means (store package).
const defaultLimit = 1000

func limitOr(n int) int {
	if n <= 0 {
		return defaultLimit
	}
	return n
}

// Times are stored as nanoseconds since the epoch, clamped to int64 at the
// ends (the zero time, which callers pass for "unset", becomes the
// smallest value, so it still sorts first).
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

func ns(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

func checkKey(k order.Key) error {
	if k.Site == "" || k.ID == "" {
		return fmt.Errorf("order key %q: site and order id must not be empty", k.String())
	}
	if strings.IndexByte(k.Site, 0) >= 0 || strings.IndexByte(k.ID, 0) >= 0 {
		return fmt.Errorf("order key %q: must not contain NUL", k.String())
	}
	return nil
}
