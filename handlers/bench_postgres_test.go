package handlers_test

import (
	"context"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/handlers/handlerstest"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/sandbox"
	"github.com/caddy-checkout/checkout/sign"
)

// BenchmarkHeaderIntakeRatePostgres is BenchmarkHeaderIntakeRate on the
// PostgreSQL store: open loop, order i due at start + i/rate, latency from
// the due time, each order a site.ServeHTTP through header intake →
// committed transaction (default synchronous_commit: the COMMIT returns
// once the WAL is flushed) → 303. With instances=2 there are two sites,
// each with its own store and connection pool, on one database, and the
// orders alternate between them, as behind a load balancer.
//
// It runs against the pgtest server, on this machine's disk, in the same
// 2 cores as the benchmark. Before the timer, each instance takes a burst
// of orders and then fills its pool (a SCRAM login costs milliseconds of
// CPU on both sides), and the benchmark waits for a quiet machine.
// Besides orders/s and latency it reports per order the statements and
// transactions (BEGIN and COMMIT counted), the server's WAL flushes and
// the CPU time of this process (self) and of the server, and the cores
// that other work on the machine took meanwhile (foreign-cores).
//
//	go test ./handlers -run '^$' -bench HeaderIntakeRatePostgres -benchtime 20000x
func BenchmarkHeaderIntakeRatePostgres(b *testing.B) {
	for _, n := range []int{1, 2} {
		for _, rate := range []int{2000, 3000, 5000, 7000} {
			b.Run("instances="+strconv.Itoa(n)+"/rate="+strconv.Itoa(rate), func(b *testing.B) {
				benchHeaderIntakeRatePostgres(b, n, rate)
			})
		}
	}
}

func benchHeaderIntakeRatePostgres(b *testing.B, instances, rate int) {
	pg, sites := postgresSites(b, instances)
	prefix := strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	warmIntake(b, sites, prefix+"warm-", 64)
	pg.Start(b)
	b.ResetTimer()
	lat, elapsed := intakeAtRate(b, sites, rate, prefix)
	b.StopTimer()
	reportLatency(b, lat, elapsed)
	pg.Stop(b, b.N, "order")
	// The last order is there (written by the last instance, read through
	// the first).
	key := order.Key{Site: "bench", ID: prefix + strconv.Itoa(b.N-1)}
	if _, err := pg.Stores[0].Get(context.Background(), key); err != nil {
		b.Fatalf("last order: %v", err)
	}
}

// postgresSites builds instances sites "bench" with header intake and
// the sandbox, one on each store of a new PostgresBench, sharing a secret
// as instances of one site do.
func postgresSites(b *testing.B, instances int) (*handlerstest.PostgresBench, []*handlers.Site) {
	b.Helper()
	pg := handlerstest.NewPostgresBench(b, instances)
	secret, err := sign.ParseSecret(sign.NewSecret())
	if err != nil {
		b.Fatal(err)
	}
	var sites []*handlers.Site
	for _, st := range pg.Stores {
		sites = append(sites, handlerstest.BenchSiteOn(b, st, func(c *handlers.Config) {
			c.Secret = secret
			c.Intake = handlers.Intakes{Headers: true}
			c.Providers = []provider.Provider{&sandbox.Sandbox{}}
		}))
	}
	return pg, sites
}

// warmIntake sends n orders at once to each site and waits for them.
func warmIntake(b *testing.B, sites []*handlers.Site, prefix string, n int) {
	b.Helper()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for s, site := range sites {
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if serveOrder(site, prefix+strconv.Itoa(s)+"-"+strconv.Itoa(i)) != http.StatusSeeOther {
					failed.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	if failed.Load() > 0 {
		b.Fatalf("warm-up: %d orders did not get their 303", failed.Load())
	}
}

// BenchmarkHeaderIntakePostgres is the closed-loop BenchmarkHeaderIntake
// on PostgreSQL, over one or two instances (orders alternating): g
// goroutines each send their next order as soon as the last is answered,
// so orders/s is the most this machine takes, PostgreSQL included, and
// instances=2 against instances=1 shows whether two instances contend.
//
//	go test ./handlers -run '^$' -bench 'HeaderIntakePostgres' -benchtime 20000x
func BenchmarkHeaderIntakePostgres(b *testing.B) {
	for _, n := range []int{1, 2} {
		for _, g := range []int{16, 64} {
			b.Run("instances="+strconv.Itoa(n)+"/g="+strconv.Itoa(g), func(b *testing.B) {
				benchHeaderIntakePostgres(b, n, g)
			})
		}
	}
}

func benchHeaderIntakePostgres(b *testing.B, instances, goroutines int) {
	pg, sites := postgresSites(b, instances)
	prefix := strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	warmIntake(b, sites, prefix+"warm-", 64)
	var seq atomic.Int64
	var (
		mu  sync.Mutex
		all []time.Duration
	)
	b.SetParallelism(max(1, goroutines/runtime.GOMAXPROCS(0)))
	pg.Start(b)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var lat []time.Duration
		defer func() {
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
		for pb.Next() {
			i := int(seq.Add(1) - 1)
			t0 := time.Now()
			if code := serveOrder(sites[i%len(sites)], prefix+strconv.Itoa(i)); code != http.StatusSeeOther {
				b.Errorf("order %d: status %d, want 303", i, code)
				return
			}
			lat = append(lat, time.Since(t0))
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	reportLatency(b, all, elapsed)
	pg.Stop(b, b.N, "order")
}
