package storetest

import (
	"context"
	"testing"
	"time"
)

func testSpendTokenOnceAcrossReopen(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	until := now.Add(2 * time.Minute)
	if fresh, err := s.SpendToken(ctx, "shop\x00tok1", until, now); err != nil || !fresh {
		t.Fatalf("first spend = %v, %v; want fresh", fresh, err)
	}
	if fresh, err := s.SpendToken(ctx, "shop\x00tok1", until, now); err != nil || fresh {
		t.Fatalf("second spend = %v, %v; want already spent", fresh, err)
	}
	s = f.Reopen(t, s)
	if fresh, err := s.SpendToken(ctx, "shop\x00tok1", until, now.Add(time.Minute)); err != nil || fresh {
		t.Fatalf("spend after reopening = %v, %v; want already spent", fresh, err)
	}
	if fresh, err := s.SpendToken(ctx, "shop\x00tok2", until, now); err != nil || !fresh {
		t.Fatalf("another token = %v, %v; want fresh", fresh, err)
	}
}

func testSpentTokensAreForgottenAfterTheyExpire(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for i := range 200 {
		if _, err := s.SpendToken(ctx, "old"+string(rune('a'+i%26))+time.Duration(i).String(), now.Add(time.Minute), now); err != nil {
			t.Fatal(err)
		}
	}
	// Later spends each forget a bounded batch of the expired ones; the
	// pruning is seen through a key spent again once forgotten.
	later := now.Add(time.Hour)
	for i := range 10 {
		if _, err := s.SpendToken(ctx, "new"+time.Duration(i).String(), later.Add(time.Minute), later); err != nil {
			t.Fatal(err)
		}
	}
	if fresh, err := s.SpendToken(ctx, "olda0s", later.Add(time.Minute), later); err != nil || !fresh {
		t.Fatalf("an expired token spent again = %v, %v; want fresh (forgotten)", fresh, err)
	}
	if fresh, err := s.SpendToken(ctx, "new0s", later.Add(time.Minute), later); err != nil || fresh {
		t.Fatalf("an unexpired token spent again = %v, %v; want already spent", fresh, err)
	}
}
