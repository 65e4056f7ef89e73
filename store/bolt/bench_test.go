// Throughput of durable order creations through group commit.
package bolt_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/store/bolt"
	"github.com/caddy-checkout/checkout/store/storetest"
)

// BenchmarkUpdateParallel measures durable order creations: each op is one
// Update that creates a new order with one callback in the outbox, and
// returns only once it is fsynced. Throughput comes from group commit, so
// it depends on how many writers are in flight: with -cpu N, RunParallel
// runs N goroutines. Run with -benchtime=3s -cpu 2,8,64.
func BenchmarkUpdateParallel(b *testing.B) {
	benchmarkUpdates(b, bolt.Options{})
}

// BenchmarkUpdateWriters is the same load with a set number of concurrent
// writers whatever -cpu is, as a server with many requests in flight at
// GOMAXPROCS=2 has them. (-cpu 64 on two cores measures the Go scheduler
// with 64 Ps as much as the store.)
func BenchmarkUpdateWriters(b *testing.B) {
	for _, writers := range []int{1, 2, 8, 64, 256} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			b.SetParallelism((writers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			benchmarkUpdates(b, bolt.Options{})
		})
	}
}

func benchmarkUpdates(b *testing.B, opts bolt.Options) {
	s, err := bolt.Open(filepath.Join(b.TempDir(), "checkout.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	amount := money.MustParse("75.00", "USD")
	body := []byte(`{"type":"order.pending","timestamp":"2026-11-21T07:00:00Z","data":{"order_id":"1234567","status":"pending","amount":"75.00","currency":"USD"}}`)
	var next atomic.Int64

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := "order-" + strconv.FormatInt(next.Add(1), 10)
			now := time.Now()
			key := order.Key{Site: "shop", ID: id}
			_, err := s.Update(ctx, key, func(cur *order.Order) (*order.Order, []store.Delivery, error) {
				o, err := order.New(order.Intake{Key: key, Amount: amount, Email: "customer@example.com",
					Description: "2 × T-shirt", Metadata: map[string]string{"cart": "c-1"}}, now, time.Hour)
				if err != nil {
					return nil, nil, err
				}
				return o, []store.Delivery{{
					ID: "msg_" + id, Type: "order.pending", URL: "https://shop.example/checkout/callback",
					Body: body, State: store.DeliveryPending, CreatedAt: now, RetryFrom: now, NextAt: now,
				}}, nil
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "orders/s")
}

// BenchmarkBytesPerOrder is what the store's file grows by per order of a
// typical life: created with a description and an e-mail address, paid by
// a provider's webhook (its history two events), with its order.paid
// callback delivered (storetest.WriteTypicalOrders, which the PostgreSQL
// store's twin writes too). 20,000 such orders are written by 64 writers;
// the figure is the file's size over that count (bbolt keeps freed pages
// in the file, so this is what a disk holds, not a lower bound).
//
//	go test ./store/bolt -run '^$' -bench BytesPerOrder -benchtime 1x
func BenchmarkBytesPerOrder(b *testing.B) {
	const orders = 20_000
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "checkout.db")
		s, err := bolt.Open(path, bolt.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := storetest.WriteTypicalOrders(context.Background(), s, orders, 64); err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(fi.Size())/orders, "B/order")
	}
}
