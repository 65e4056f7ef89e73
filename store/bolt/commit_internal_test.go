package bolt

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

func openCommitter(t *testing.T) (*bbolt.DB, *committer) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "c.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
		t.Fatal(err)
	}
	return db, newCommitter(db, 1000)
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
