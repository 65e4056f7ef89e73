package bolt

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
)

// TestSchema1FileIsMigrated: a file written by the first layout (open
// index by ExpiresAt, without the site) opens with its open orders found
// per site, and a file from a newer build is refused.
func TestSchema1FileIsMigrated(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "checkout.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, k := range []order.Key{{Site: "a", ID: "1"}, {Site: "b", ID: "2"}} {
		_, err := s.Update(ctx, k, func(*order.Order) (*order.Order, []store.Delivery, error) {
			o, err := order.New(order.Intake{Key: k, Amount: money.MustParse("5.00", "USD")}, t0, time.Hour)
			if err == nil {
				o.Current().ProviderRef = "pref-" + k.ID
			}
			d := store.Delivery{ID: "msg-" + k.ID, Type: "order.pending", URL: "http://127.0.0.1/hook", Body: []byte("{}"),
				State: store.DeliveryPending, CreatedAt: t0, RetryFrom: t0, NextAt: t0}
			return o, []store.Delivery{d}, err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Rewrite the file as schema 1 wrote it.
	err = s.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bucketOpen); err != nil {
			return err
		}
		open, err := tx.CreateBucket(bucketOpen)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketOrders).ForEach(func(k, raw []byte) error {
			o, err := decodeOrder(k, raw)
			if err != nil {
				return err
			}
			return open.Put(join(appendTime(nil, o.ExpiresAt), k), nil)
		}); err != nil {
			return err
		}
		// Schema 1's queue rows had no line name.
		for _, b := range [][]byte{bucketQueue, bucketDue} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		for _, id := range []string{"1", "2"} {
			site := map[string]string{"1": "a", "2": "b"}[id]
			ok, _ := orderKey(order.Key{Site: site, ID: id})
			qk := binary.BigEndian.AppendUint64(queuePrefix(ok), 1)
			if err := tx.Bucket(bucketQueue).Put(qk, []byte("msg-"+id)); err != nil {
				return err
			}
			if err := tx.Bucket(bucketDue).Put(join(appendTime(nil, t0), []byte("msg-"+id)), qk); err != nil {
				return err
			}
		}
		// Schema 1 had no provider refs in the refs index.
		refs := tx.Bucket(bucketRefs)
		for _, id := range []string{"1", "2"} {
			if err := refs.Delete([]byte("\x00pref-" + id)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, []byte("1"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	if s, err = Open(path, Options{}); err != nil {
		t.Fatalf("opening a schema 1 file: %v", err)
	}
	for site, want := range map[string]string{"a": "1", "b": "2"} {
		got, err := s.Open(ctx, site, t0.Add(2*time.Hour), 0)
		if err != nil || len(got) != 1 || got[0].ID != want {
			t.Errorf("Open(%s) after migrating = %v, %v; want order %s", site, got, err, want)
		}
	}
	if ds, err := s.Due(ctx, t0.Add(time.Minute), 0); err != nil || len(ds) != 2 {
		t.Errorf("Due after migrating = %d deliveries, %v; want both pending ones", len(ds), err)
	}
	_ = s.db.View(func(tx *bbolt.Tx) error {
		ok, _ := orderKey(order.Key{Site: "a", ID: "1"})
		if got := tx.Bucket(bucketQueue).Get(queueKey(ok, "", 1)); string(got) != "msg-1" {
			t.Errorf("queue row after migrating = %q, want msg-1 in the shop's line", got)
		}
		return nil
	})
	if o, err := s.ByProviderRef(ctx, "pref-2"); err != nil || o.ID != "2" {
		t.Errorf("ByProviderRef after migrating = %v, %v; want order 2", o, err)
	}
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, []byte("99"))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), `"99"`) {
		t.Fatalf("opening a file from a newer build: %v, want a refusal naming its schema", err)
	}
}

// TestSchema2FileIsMigrated: a file of schema 2 (no reconciler queue)
// opens with its waiting orders in the queue at their real times.
func TestSchema2FileIsMigrated(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "checkout.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for i, id := range []string{"waits", "never-started"} {
		k := order.Key{Site: "shop", ID: id}
		_, err := s.Update(ctx, k, func(*order.Order) (*order.Order, []store.Delivery, error) {
			o, err := order.New(order.Intake{Key: k, Amount: money.MustParse("5.00", "USD")}, t0, time.Hour)
			if err == nil && i == 0 {
				o.Current().Provider, o.Current().StartedAt = "stripe", t0.Add(time.Minute)
			}
			return o, nil, err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bucketUnasked); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keySchema, []byte("2"))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	if s, err = Open(path, Options{}); err != nil {
		t.Fatalf("opening a schema 2 file: %v", err)
	}
	defer s.Close()
	got, err := s.Unasked(ctx, "shop", t0.Add(time.Hour), 0)
	if err != nil || len(got) != 1 || got[0].ID != "waits" {
		t.Fatalf("Unasked after migrating = %v, %v; want the order whose attempt waits", got, err)
	}
	if got, _ := s.Unasked(ctx, "shop", t0.Add(time.Minute), 0); len(got) != 0 {
		t.Fatalf("Unasked before its attempt started = %v, want none (filed at its real time)", got)
	}
}

// TestSchema3FileIsMigrated: a file written before retain_personal (no
// index of final orders holding customer data) opens with its final
// orders in that index, filed by their last change, and its open ones out.
func TestSchema3FileIsMigrated(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "checkout.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for i, id := range []string{"paid", "open"} {
		k := order.Key{Site: "shop", ID: id}
		_, err := s.Update(ctx, k, func(*order.Order) (*order.Order, []store.Delivery, error) {
			o, err := order.New(order.Intake{Key: k, Amount: money.MustParse("5.00", "USD"), Email: "c@example.com"}, t0, time.Hour)
			if err == nil && i == 0 {
				o.Apply(order.Transition{To: order.Paid, Ref: o.Current().Ref, Cause: order.Cause{Kind: order.ByWebhook, Ref: "e"},
					Paid: o.Amount, Provider: "sandbox"}, t0.Add(time.Minute))
			}
			return o, nil, err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bucketPersonal); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keySchema, []byte("3"))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	if s, err = Open(path, Options{}); err != nil {
		t.Fatalf("opening a schema 3 file: %v", err)
	}
	defer s.Close()
	got, err := s.Personal(ctx, "shop", t0.Add(time.Hour), 0)
	if err != nil || len(got) != 1 || got[0].ID != "paid" {
		t.Fatalf("Personal after migrating = %v, %v; want the paid order", got, err)
	}
	if got, _ := s.Personal(ctx, "shop", t0.Add(time.Minute), 0); len(got) != 0 {
		t.Fatalf("Personal before it was paid = %v, want none (filed at its last change)", got)
	}
}
