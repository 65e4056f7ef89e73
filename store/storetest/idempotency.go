// Tests of the Idempotency-Key records.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/store"
)

func testIdempotencyBeginFinishForget(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)
	first := store.Idempotent{Fingerprint: "fp-1", CreatedAt: t0}

	got, err := s.BeginIdempotent(ctx, "k", first, time.Minute)
	if err != nil || got != nil {
		t.Fatalf("Begin of a new key = %+v, %v; want nil, nil", got, err)
	}
	// A repeat while the first call runs sees it in flight, with its
	// fingerprint, and does not replace it.
	got, err = s.BeginIdempotent(ctx, "k", store.Idempotent{Fingerprint: "fp-2", CreatedAt: t0.Add(time.Second)}, time.Minute)
	if err != nil || got == nil || got.Done || got.Fingerprint != "fp-1" || !got.CreatedAt.Equal(t0) {
		t.Fatalf("Begin of a key in flight = %+v, %v", got, err)
	}

	if err := s.FinishIdempotent(ctx, "k", store.Idempotent{Status: 201, Body: []byte(`{"id":1}`)}); err != nil {
		t.Fatal(err)
	}
	got, err = s.BeginIdempotent(ctx, "k", first, time.Minute)
	if err != nil || got == nil || !got.Done || got.Status != 201 || string(got.Body) != `{"id":1}` ||
		got.Fingerprint != "fp-1" || !got.CreatedAt.Equal(t0) {
		t.Fatalf("Begin of a finished key = %+v, %v", got, err)
	}
	// A finished record is never stale.
	got, err = s.BeginIdempotent(ctx, "k", store.Idempotent{Fingerprint: "fp-1", CreatedAt: t0.Add(time.Hour)}, time.Minute)
	if err != nil || got == nil || !got.Done {
		t.Fatalf("Begin of a finished key long after = %+v, %v", got, err)
	}

	if err := s.ForgetIdempotent(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	got, err = s.BeginIdempotent(ctx, "k", first, time.Minute)
	if err != nil || got != nil {
		t.Fatalf("Begin after Forget = %+v, %v; want nil, nil", got, err)
	}
	if err := s.ForgetIdempotent(ctx, "never-seen"); err != nil {
		t.Errorf("Forget of an unknown key = %v", err)
	}
}

func testIdempotencyStaleTakeover(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)
	if got, err := s.BeginIdempotent(ctx, "k", store.Idempotent{Fingerprint: "old", CreatedAt: t0}, time.Minute); err != nil || got != nil {
		t.Fatalf("Begin = %+v, %v", got, err)
	}
	// Exactly stale is not yet older than stale.
	got, err := s.BeginIdempotent(ctx, "k", store.Idempotent{Fingerprint: "new", CreatedAt: t0.Add(time.Minute)}, time.Minute)
	if err != nil || got == nil || got.Fingerprint != "old" {
		t.Fatalf("Begin at exactly stale = %+v, %v; want the old record", got, err)
	}
	// Zero stale never takes over.
	got, err = s.BeginIdempotent(ctx, "k", store.Idempotent{Fingerprint: "new", CreatedAt: t0.Add(time.Hour)}, 0)
	if err != nil || got == nil || got.Fingerprint != "old" {
		t.Fatalf("Begin with stale 0 = %+v, %v; want the old record", got, err)
	}
	// A microsecond later it is: the least a store keeping microseconds
	// (PostgreSQL) can tell apart.
	got, err = s.BeginIdempotent(ctx, "k", store.Idempotent{Fingerprint: "new", CreatedAt: t0.Add(time.Minute + time.Microsecond)}, time.Minute)
	if err != nil || got != nil {
		t.Fatalf("Begin after stale = %+v, %v; want a takeover (nil, nil)", got, err)
	}
	got, err = s.BeginIdempotent(ctx, "k", store.Idempotent{Fingerprint: "third", CreatedAt: t0.Add(90 * time.Second)}, time.Minute)
	if err != nil || got == nil || got.Fingerprint != "new" || got.Done {
		t.Fatalf("Begin after the takeover = %+v, %v; want the new in-flight record", got, err)
	}
}

func testIdempotencyZeroCreatedAtUsesNow(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.New(t)
	before := time.Now()
	if _, err := s.BeginIdempotent(ctx, "k", store.Idempotent{Fingerprint: "f"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	got, err := s.BeginIdempotent(ctx, "k", store.Idempotent{Fingerprint: "f"}, time.Hour)
	if err != nil || got == nil || got.CreatedAt.Before(before.Add(-time.Second)) || got.CreatedAt.After(time.Now()) {
		t.Errorf("record = %+v, %v; want CreatedAt set to the time of Begin", got, err)
	}
	if _, err := s.BeginIdempotent(ctx, "", store.Idempotent{}, time.Hour); err == nil {
		t.Error("Begin with an empty key succeeded")
	}
}
