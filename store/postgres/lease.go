// What lets several instances act as one: leases for background work that
// must run in one place (store.Leaser), and the feed of changed orders
// that keeps live pages of every instance current (store.Watcher).
package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
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
