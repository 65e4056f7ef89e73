package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/caddy-checkout/checkout/store"
)

func testProviderDataSurvivesReopen(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)
	if _, err := s.GetData(ctx, "erc20/shop/checkpoint"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing key: %v, want ErrNotFound", err)
	}
	if err := s.PutData(ctx, "erc20/shop/checkpoint", []byte("100")); err != nil {
		t.Fatal(err)
	}
	first, err := s.PutDataIfAbsent(ctx, "erc20/shop/ref/r1", []byte("0xaaa"))
	if err != nil || string(first) != "0xaaa" {
		t.Fatalf("first put-if-absent: %q, %v", first, err)
	}
	second, err := s.PutDataIfAbsent(ctx, "erc20/shop/ref/r1", []byte("0xbbb"))
	if err != nil || string(second) != "0xaaa" {
		t.Fatalf("second put-if-absent: %q, %v; want the first value kept", second, err)
	}
	for i := 0; i < 3; i++ {
		if n, err := s.NextSeq(ctx, "erc20/shop/index"); err != nil || n != uint64(i) {
			t.Fatalf("NextSeq #%d = %d, %v", i, n, err)
		}
	}
	s = f.Reopen(t, s)
	if v, err := s.GetData(ctx, "erc20/shop/checkpoint"); err != nil || string(v) != "100" {
		t.Fatalf("after reopen: %q, %v", v, err)
	}
	if n, err := s.NextSeq(ctx, "erc20/shop/index"); err != nil || n != 3 {
		t.Fatalf("counter after reopen: %d, %v; want 3 (no number given twice)", n, err)
	}
	var keys []string
	_ = s.PutData(ctx, "erc20/other/ref/x", []byte("y"))
	if err := s.ScanData(ctx, "erc20/shop/", func(k string, _ []byte) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 || keys[0] != "erc20/shop/checkpoint" || keys[2] != "erc20/shop/ref/r1" {
		t.Fatalf("scan of the prefix: %v", keys)
	}
}

func testNextSeqConcurrentNumbersAreUnique(t *testing.T, f Factory) {
	s := f.New(t)
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				n, err := s.NextSeq(context.Background(), "k")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[n] {
					t.Errorf("number %d given twice", n)
				}
				seen[n] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 200 {
		t.Fatalf("%d numbers", len(seen))
	}
}
