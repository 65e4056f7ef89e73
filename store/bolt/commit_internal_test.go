package bolt

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

func openCommitter(t *testing.T) (*bbolt.DB, *committer) {
	t.Helper()
	return openCommitterSpaced(t, 0)
}

func openCommitterSpaced(t *testing.T, spacing time.Duration) (*bbolt.DB, *committer) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "c.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
		t.Fatal(err)
	}
	return db, newCommitter(db, 1000, spacing)
}

func put(k string) func(*bbolt.Tx) error {
	return func(tx *bbolt.Tx) error { return tx.Bucket([]byte("b")).Put([]byte(k), []byte("v")) }
}

func count(t *testing.T, db *bbolt.DB) int {
	n := 0
	_ = db.View(func(tx *bbolt.Tx) error { n = tx.Bucket([]byte("b")).Stats().KeyN; return nil })
	return n
}

func TestCommitterIsolatesFailingAndPanickingWrites(t *testing.T) {
	db, c := openCommitter(t)
	defer db.Close()
	defer c.close()
	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, 300)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			switch i % 3 {
			case 0:
				errs[i] = c.do(put(string(rune('a'+i%26)) + string(rune(i))))
			case 1:
				errs[i] = c.do(func(tx *bbolt.Tx) error { _ = put("x" + string(rune(i)))(tx); return boom })
			default:
				errs[i] = c.do(func(tx *bbolt.Tx) error { panic("bad write") })
			}
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		switch i % 3 {
		case 0:
			if err != nil {
				t.Fatalf("good write %d failed: %v", i, err)
			}
		case 1:
			if !errors.Is(err, boom) {
				t.Fatalf("failing write %d: %v", i, err)
			}
		default:
			if err == nil {
				t.Fatalf("panicking write %d reported success", i)
			}
		}
	}
	if n := count(t, db); n != 100 {
		t.Fatalf("%d keys stored, want exactly the 100 good writes", n)
	}
}

func TestCommitterCloseFinishesQueuedWrites(t *testing.T) {
	db, c := openCommitter(t)
	defer db.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			err := c.do(put(string(rune(1000 + i))))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, berrors.ErrDatabaseNotOpen):
				refused++
			default:
				t.Errorf("write %d: %v", i, err)
			}
		}(i)
	}
	c.close()
	wg.Wait()
	if ok+refused != 200 || count(t, db) != ok {
		t.Fatalf("ok %d refused %d stored %d: every write must be committed or clearly refused", ok, refused, count(t, db))
	}
}

// Under load, commits start at most once per spacing, so the writes of
// many callers share a few commits (and their fsyncs) instead of each
// running its own; every write is still stored.
func TestCommitterSpacesCommitsUnderLoad(t *testing.T) {
	const spacing = 20 * time.Millisecond
	db, c := openCommitterSpaced(t, spacing)
	defer db.Close()
	defer c.close()
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < 100; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 5; i++ { // each caller writes again as soon as its write is stored
				if err := c.do(put(fmt.Sprintf("%d-%d", g, i))); err != nil {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if n := count(t, db); n != 500 {
		t.Fatalf("%d keys stored, want 500", n)
	}
	// However slow the machine, commits that start a spacing apart fit
	// this many times into the time the writes took.
	if most := int64(elapsed/spacing) + 1; c.commits.Load() > most {
		t.Fatalf("%d commits in %s, want at most %d (one per %s)", c.commits.Load(), elapsed, most, spacing)
	}
}

// A write after a quiet spell does not wait for the spacing: with a
// spacing of an hour, the first write is stored at once, and closing does
// not wait either.
func TestCommitterCommitsALoneWriteAtOnce(t *testing.T) {
	db, c := openCommitterSpaced(t, time.Hour)
	defer db.Close()
	done := make(chan error, 1)
	go func() {
		err := c.do(put("lone"))
		c.close()
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a lone write waited for the commit spacing")
	}
	if count(t, db) != 1 {
		t.Fatal("the lone write is not stored")
	}
}
