// What lets several instances act as one: leases for background work that
// must run in one place (store.Leaser), and the feed of changed orders
// that keeps live pages of every instance current (store.Watcher).
package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Lease implements store.Leaser: holder gets or keeps the named lease
// until ttl from now on the database's clock (one clock for every
// instance), unless another holder's lease is still running.
func (s *Store) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	var got string
	err := s.pool.QueryRow(ctx, `INSERT INTO checkout_leases (name, holder, until)
		VALUES ($1, $2, now() + make_interval(secs => $3))
		ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until
			WHERE checkout_leases.holder = EXCLUDED.holder OR checkout_leases.until < now()
		RETURNING holder`, name, holder, ttl.Seconds()).Scan(&got)
	if err == pgx.ErrNoRows {
		return false, nil // held by another
	}
	if err != nil {
		return false, fmt.Errorf("taking lease %s: %w", name, err)
	}
	return got == holder, nil
}

// Release implements store.Leaser: the lease ends now if holder has it,
// so another instance takes over at once rather than after its ttl.
func (s *Store) Release(ctx context.Context, name, holder string) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `DELETE FROM checkout_leases WHERE name = $1 AND holder = $2`, name, holder); err != nil {
		return fmt.Errorf("releasing lease %s: %w", name, err)
	}
	return nil
}

// changeChannel is the NOTIFY channel of changed orders.
const changeChannel = "checkout_orders"

// maxPayload keeps a notification under PostgreSQL's 8000-byte limit; a
// longer list of refs is sent as none, which wakes every page of the site.
const maxPayload = 7000

// changePayload is "site\nref ref …".
func changePayload(site string, refs []string) string {
	p := site + "\n" + strings.Join(refs, " ")
	if len(p) > maxPayload {
		return site + "\n"
	}
	return p
}

// feedEvery is how long changes are gathered before they are announced.
const feedEvery = 20 * time.Millisecond

// feed announces committed changes to the other instances (NOTIFY), in
// batches, after the changes' own transactions. A NOTIFY takes a lock of
// the whole PostgreSQL cluster from its transaction's commit until the
// commit is flushed: sent inside every state change, it made the state
// changes of all instances commit one at a time, each with its own WAL
// flush (BENCHMARKS.md §5). Sent afterwards, from a transaction that
// writes nothing, it costs no flush and holds the lock briefly. A change
// whose announcement is lost (the instance dies within feedEvery of the
// commit) reaches live pages at their next poll.
type feed struct {
	pool    *pgxpool.Pool
	timeout time.Duration
	mu      sync.Mutex
	pending map[string]map[string]bool // site → attempt refs
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

func newFeed(pool *pgxpool.Pool, timeout time.Duration) *feed {
	f := &feed{pool: pool, timeout: timeout, pending: map[string]map[string]bool{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go f.run()
	return f
}

func (f *feed) announce(site string, refs []string) {
	f.mu.Lock()
	set := f.pending[site]
	if set == nil {
		set = map[string]bool{}
		f.pending[site] = set
	}
	for _, r := range refs {
		set[r] = true
	}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *feed) run() {
	defer close(f.done)
	for {
		select {
		case <-f.stop:
			f.flush() // what was committed before Close
			return
		case <-f.wake:
		}
		t := time.NewTimer(feedEvery)
		select {
		case <-f.stop:
			t.Stop()
		case <-t.C:
		}
		f.flush()
	}
}

// flush sends what is pending: one statement, one payload per site (or
// several, when a site's refs do not fit in one).
func (f *feed) flush() {
	f.mu.Lock()
	pending := f.pending
	f.pending = map[string]map[string]bool{}
	f.mu.Unlock()
	var payloads []string
	for site, set := range pending {
		var refs []string
		size := len(site) + 1
		for r := range set {
			if size+len(r)+1 > maxPayload && len(refs) > 0 {
				payloads = append(payloads, changePayload(site, refs))
				refs, size = nil, len(site)+1
			}
			refs = append(refs, r)
			size += len(r) + 1
		}
		payloads = append(payloads, changePayload(site, refs))
	}
	if len(payloads) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	// Not worth a WAL flush: nothing is written.
	_, _ = f.pool.Exec(ctx, `SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, changeChannel, payloads)
}

func (f *feed) close() {
	close(f.stop)
	<-f.done
}

func parsePayload(p string) (site string, refs []string) {
	site, list, _ := strings.Cut(p, "\n")
	return site, strings.Fields(list)
}

// Watch implements store.Watcher with LISTEN on a connection of its own.
// When the connection breaks it reconnects with backoff; notifications
// sent meanwhile are lost, so each time it is listening again (and the
// first time, for changes made before it listened) it calls fn("", nil):
// anything may have changed. Behind a pooler that does not keep LISTEN
// (PgBouncer in transaction mode) nothing arrives, and live pages fall back
// on their own polling.
func (s *Store) Watch(ctx context.Context, fn func(site string, refs []string)) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listen(ctx, func() {
			backoff = 100 * time.Millisecond
			fn("", nil)
		}, fn)
		if ctx.Err() != nil {
			break
		}
		_ = err // the database is down or restarting: try again shortly
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return nil
}

func (s *Store) listen(ctx context.Context, ready func(), fn func(site string, refs []string)) error {
	cfg := s.pool.Config().ConnConfig.Copy()
	cctx, cancel := context.WithTimeout(ctx, s.opts.ConnectTimeout)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+changeChannel); err != nil {
		return err
	}
	ready()
	for {
		// A bounded wait, so a silently dead connection is noticed.
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if wctx.Err() != nil { // quiet, not broken: check it answers
				if err := conn.Ping(ctx); err != nil {
					return err
				}
				continue
			}
			return err
		}
		site, refs := parsePayload(n.Payload)
		fn(site, refs)
	}
}
