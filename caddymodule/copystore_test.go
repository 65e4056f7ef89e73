package caddymodule_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/caddymodule"
	"github.com/caddy-checkout/checkout/internal/pgtest"
	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/store/bolt"
	"github.com/caddy-checkout/checkout/store/postgres"
)

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCopyStore moves a bbolt store with orders (one paid, with its
// history), callbacks in every state, provider data, an idempotency record
// and a spent token into PostgreSQL, and finds each there as it was; a
// second copy into the now non-empty database is refused and changes
// nothing.
func TestCopyStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "checkout.db")
	src, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	var keys []order.Key
	for i, id := range []string{"a-1", "a-2", "a-3"} {
		o, err := order.New(order.Intake{Key: order.Key{Site: "shop", ID: id}, Amount: money.MustParse("12.50", "USD"),
			Email: "c@example.com"}, now, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		o.Attempts[0].ProviderRef = "cs_test_" + id
		ds := []store.Delivery{{ID: "msg_" + id + "_1", Type: "order.created", URL: "http://shop/hook", Body: []byte(`{}`),
			CreatedAt: now, NextAt: now}}
		if i == 0 {
			ds[0].State = store.DeliveryDelivered
			ds = append(ds, store.Delivery{ID: "msg_" + id + "_2", Type: "order.paid", URL: "http://shop/hook", Body: []byte(`{}`),
				CreatedAt: now, NextAt: now.Add(time.Minute), Tries: 3, LastStatus: 503})
		}
		if _, err := src.Update(ctx, o.Key, func(*order.Order) (*order.Order, []store.Delivery, error) { return o, ds, nil }); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, o.Key)
	}
	if err := src.PutData(ctx, "erc20/xpub/next", []byte{0, 0, 0, 0, 0, 0, 0, 7}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.BeginIdempotent(ctx, "shop\x00key-1", store.Idempotent{Fingerprint: "f1", CreatedAt: now}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if fresh, err := src.SpendToken(ctx, "shop\x00return\x00n1", now.Add(time.Hour), now); err != nil || !fresh {
		t.Fatal(fresh, err)
	}
	want := map[order.Key]string{}
	for _, k := range keys {
		o, err := src.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		want[k] = jsonOf(t, o)
	}
	wantDeliveries, err := src.Deliveries(ctx, store.DeliveryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}

	dsn := pgtest.Shared(t).NewDatabase(t)
	n, err := caddymodule.CopyStore(ctx, path, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if n != (postgres.Counts{Orders: 3, Deliveries: 4, Data: 1, Idempotency: 1, Spent: 1}) {
		t.Fatalf("copied %+v", n)
	}

	dst, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	for k, w := range want {
		o, err := dst.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if got := jsonOf(t, o); got != w {
			t.Fatalf("order %s after the copy:\n %s\nwant\n %s", k, got, w)
		}
		if byRef, err := dst.ByRef(ctx, o.Attempts[0].Ref); err != nil || byRef.ID != k.ID {
			t.Fatalf("ByRef after the copy: %v %v", byRef, err)
		}
		if byP, err := dst.ByProviderRef(ctx, "cs_test_"+k.ID); err != nil || byP.ID != k.ID {
			t.Fatalf("ByProviderRef after the copy: %v %v", byP, err)
		}
	}
	gotDeliveries, err := dst.Deliveries(ctx, store.DeliveryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if jsonOf(t, gotDeliveries) != jsonOf(t, wantDeliveries) {
		t.Fatalf("deliveries after the copy:\n %s\nwant\n %s", jsonOf(t, gotDeliveries), jsonOf(t, wantDeliveries))
	}
	// The pending callbacks go out from the new store, in order.
	due, err := dst.Due(ctx, now.Add(2*time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	var dueIDs []string
	for _, d := range due {
		dueIDs = append(dueIDs, d.ID)
	}
	if strings.Join(dueIDs, " ") != "msg_a-2_1 msg_a-3_1 msg_a-1_2" {
		t.Fatalf("due after the copy: %v", dueIDs)
	}
	if v, err := dst.GetData(ctx, "erc20/xpub/next"); err != nil || v[7] != 7 {
		t.Fatalf("provider data after the copy: %v %v", v, err)
	}
	if rec, err := dst.BeginIdempotent(ctx, "shop\x00key-1", store.Idempotent{Fingerprint: "f2", CreatedAt: now}, time.Minute); err != nil || rec == nil || rec.Fingerprint != "f1" {
		t.Fatalf("idempotency record after the copy: %+v %v", rec, err)
	}
	if fresh, err := dst.SpendToken(ctx, "shop\x00return\x00n1", now.Add(time.Hour), now); err != nil || fresh {
		t.Fatalf("a token spent before the copy could be spent again: %v %v", fresh, err)
	}

	// Again, into the database that now holds it all: refused, unchanged.
	if _, err := caddymodule.CopyStore(ctx, path, dsn); err == nil || !strings.Contains(err.Error(), "already holds checkout data") {
		t.Fatalf("a second copy: %v", err)
	}
	if list, err := dst.List(ctx, store.ListFilter{}); err != nil || len(list) != 3 {
		t.Fatalf("after the refused copy: %d orders, %v", len(list), err)
	}

	// A wrong password: a clear error that does not show it.
	bad := strings.Replace(dsn, pgtest.Shared(t).Password(), "not-the-password-xyz", 1)
	_, err = caddymodule.CopyStore(ctx, path, bad)
	if err == nil || strings.Contains(err.Error(), "not-the-password-xyz") {
		t.Fatalf("copy with a wrong password: %v", err)
	}
}
