// This file is the delivery loop: find what is due, hand it to a bounded
// pool of tries, sleep until the next delivery is due or Wake is called.
// Tick is the same work done once and synchronously, for tests.

package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// maxSleep caps the loop's sleep. The store is asked at least this often,
// which bounds how late a delivery is tried when no Wake came (another
// process wrote it) or when the earliest one is held back (see pause).
const maxSleep = time.Second

// Run delivers callbacks until ctx is done, then waits for the tries in
// flight and returns nil. Those tries are not cut short by ctx: each ends
// within the client timeout and its outcome is saved, so shutdown never
// turns a delivered callback into a resent one. A try cut short anyway
// (the process dies) leaves its delivery pending, to be tried again.
//
// Deliveries of different orders are tried in parallel, up to Workers at a
// time, so a shop endpoint that hangs for one order holds one worker, not
// the others' callbacks. Deliveries of one order go one at a time in Seq
// order: the store's Due only offers an order's earliest pending one.
//
// Only one Run may be active per Notifier.
func (n *Notifier) Run(ctx context.Context) error {
	if !n.running.CompareAndSwap(false, true) {
		return errors.New("notify: Run is already running on this Notifier")
	}
	defer n.running.Store(false)

	var wg sync.WaitGroup
	defer wg.Wait()
	tries := context.WithoutCancel(ctx)
	timer := time.NewTimer(maxSleep)
	defer timer.Stop()
	for {
		started := n.dispatch(ctx, tries, &wg)
		if ctx.Err() != nil {
			return nil
		}
		if started > 0 {
			// Due returns a bounded batch: there may be more, and the
			// pool may still have room.
			continue
		}
		timer.Reset(n.pause(ctx))
		select {
		case <-ctx.Done():
			return nil
		case <-n.wake:
		case <-timer.C:
		}
	}
}

// dispatch starts a try for each due delivery that is not in flight, while
// the pool has room, and returns how many it started. It never waits for
// a worker: the loop must stay free to notice Wake and ctx.
func (n *Notifier) dispatch(ctx, tries context.Context, wg *sync.WaitGroup) int {
	// Workers more than the in-flight ones: those come back from Due too
	// (they are still pending) and are skipped, which leaves enough to
	// fill every free worker.
	due, err := n.store.Due(ctx, n.now(), n.workers+n.inflightLen())
	if err != nil {
		if ctx.Err() == nil {
			n.log.Error("reading due callbacks failed; retrying shortly", slog.String("error", err.Error()))
		}
		return 0
	}
	started := 0
	for _, d := range due {
		if !n.claim(d.ID) {
			continue
		}
		select {
		case n.slots <- struct{}{}:
		default:
			n.release(d.ID) // pool full: a finishing try wakes the loop
			return started
		}
		started++
		wg.Go(func() {
			defer n.finish(d.ID)
			if err := n.attempt(tries, d.ID); err != nil {
				n.log.Error("callback store failure", slog.String("delivery", d.ID), slog.String("error", err.Error()))
			}
		})
	}
	return started
}

// finish frees the worker slot and the claim of a try, then wakes the loop:
// the next delivery of the same order may now be due, and a slot is free.
func (n *Notifier) finish(id string) {
	<-n.slots
	n.release(id)
	n.Wake()
}

// pause is how long the loop sleeps when nothing could be started.
func (n *Notifier) pause(ctx context.Context) time.Duration {
	next, ok, err := n.store.NextDue(ctx)
	if err != nil || !ok {
		return maxSleep
	}
	wait := next.Sub(n.now())
	if wait <= 0 {
		// Something is due but was not started: it is in flight, the
		// pool is full, or it waits behind an earlier delivery of its
		// order. The first two end with a Wake; the last with a try of
		// that earlier delivery, whose NextAt NextDue does not tell us.
		return maxSleep
	}
	return min(wait, maxSleep)
}

// Tick tries, once and synchronously, every delivery that is due at the
// Notifier's clock, including the next delivery of an order whose earlier
// one got through in the same Tick. It returns when all those tries are
// recorded. Each delivery is tried at most once per Tick. Tests drive the
// Notifier with Tick and an injected clock; it can run alongside Run
// (deliveries in flight in Run are skipped).
//
// It returns store failures; the outcome of each try is recorded in the
// store, not returned. When ctx is cancelled mid-try, that try is not
// recorded and the delivery stays due.
func (n *Notifier) Tick(ctx context.Context) error {
	tried := make(map[string]bool)
	for {
		due, err := n.store.Due(ctx, n.now(), n.workers+n.inflightLen()+len(tried))
		if err != nil {
			return fmt.Errorf("notify: reading due deliveries: %w", err)
		}
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
		)
		started := 0
		for _, d := range due {
			if tried[d.ID] || !n.claim(d.ID) {
				continue
			}
			tried[d.ID] = true
			select {
			case n.slots <- struct{}{}:
			case <-ctx.Done():
				n.release(d.ID)
				wg.Wait()
				return ctx.Err()
			}
			started++
			wg.Go(func() {
				defer n.finish(d.ID)
				if err := n.attempt(ctx, d.ID); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			return fmt.Errorf("notify: %w", errors.Join(errs...))
		}
		if started == 0 || ctx.Err() != nil {
			return ctx.Err()
		}
	}
}
