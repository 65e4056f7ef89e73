// Group commit: every write of the store goes through one committer
// goroutine that commits, in a single bbolt transaction and fsync, every
// write queued while the previous commit was on its way to disk. Under
// load the groups grow by themselves; a lone write commits at once
// instead of waiting for a timer (as bbolt's DB.Batch does), so both
// throughput and latency follow the disk.
//
// Commits start at most once per spacing (Options.CommitSpacing). A commit
// costs CPU whatever its size (two fdatasyncs, the meta page, the branch
// pages it rewrites: about 200 µs of kernel and bbolt time on ext4 here),
// so under load a short wait that lets a group grow costs far less than
// committing again at once; a write arriving after a quiet spell still
// commits at once. BENCHMARKS.md §2 has the figures.
package bolt

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

type write struct {
	fn   func(*bbolt.Tx) error
	done chan error // buffered: the committer never blocks on a caller
}

type committer struct {
	db      *bbolt.DB
	max     int           // most writes in one commit
	spacing time.Duration // least time from one commit's start to the next's
	commits atomic.Int64  // groups committed, for tests

	mu     sync.Mutex
	queue  []*write
	closed bool
	kick   chan struct{} // capacity 1: "the queue is not empty"
	exited chan struct{}
}

func newCommitter(db *bbolt.DB, max int, spacing time.Duration) *committer {
	c := &committer{db: db, max: max, spacing: spacing, kick: make(chan struct{}, 1), exited: make(chan struct{})}
	go c.loop()
	return c
}

// do runs fn in a durable transaction shared with other writers and
// returns fn's error, or the commit's. fn may run more than once (when
// another write of its group fails, the group is run again without it),
// so it must have no effects outside the transaction.
func (c *committer) do(fn func(*bbolt.Tx) error) error {
	w := &write{fn: fn, done: make(chan error, 1)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return berrors.ErrDatabaseNotOpen
	}
	c.queue = append(c.queue, w)
	select { // under mu, so that close cannot close kick in between
	case c.kick <- struct{}{}:
	default:
	}
	c.mu.Unlock()
	return <-w.done
}

func (c *committer) loop() {
	defer close(c.exited)
	var last time.Time // when the last commit started
	for range c.kick {
		for {
			c.mu.Lock()
			idle := len(c.queue) == 0
			c.mu.Unlock()
			if idle {
				break
			}
			if wait := c.spacing - time.Since(last); wait > 0 {
				time.Sleep(wait) // writes queued meanwhile join this group
			}
			c.mu.Lock()
			n := min(len(c.queue), c.max)
			group := make([]*write, n)
			copy(group, c.queue)
			c.queue = append(c.queue[:0:0], c.queue[n:]...)
			c.mu.Unlock()
			if n == 0 {
				break
			}
			last = time.Now()
			c.commits.Add(1)
			c.commit(group)
		}
	}
}

// commit runs a group in one transaction. A write whose fn fails gets its
// error and is dropped; the rest run again without it, exactly as if it
// had run alone after the writes before it.
func (c *committer) commit(group []*write) {
	for len(group) > 0 {
		failed, ferr := -1, error(nil)
		err := c.db.Update(func(tx *bbolt.Tx) error {
			for i, w := range group {
				if err := safeRun(w.fn, tx); err != nil {
					failed, ferr = i, err
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			group[failed].done <- ferr
			group = append(group[:failed:failed], group[failed+1:]...)
			continue
		}
		for _, w := range group {
			w.done <- err // nil, or the commit's own error (disk full, I/O)
		}
		return
	}
}

// safeRun turns a panic in one write into that write's error, so that it
// cannot take the committer, and every other writer, down with it.
func safeRun(fn func(*bbolt.Tx) error, tx *bbolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store write panicked: %v", p)
		}
	}()
	return fn(tx)
}

// close stops taking writes and waits for the queued ones to commit.
func (c *committer) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.kick)
	c.mu.Unlock()
	<-c.exited
}
