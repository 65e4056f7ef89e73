// Helpers beside the running site: a site for benchmarks, a logger tests
// can read, and counting stored orders.

package handlerstest

import (
	"bytes"
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/sign"
	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/store/bolt"
	"github.com/caddy-checkout/checkout/templates"
)

// OrderCount is how many orders the store holds.
func (e *Env) OrderCount() int {
	e.T.Helper()
	list, err := e.Store.List(context.Background(), store.ListFilter{})
	if err != nil {
		e.T.Fatal(err)
	}
	return len(list)
}

// BenchSite builds site "bench" over a bolt store in a temporary
// directory, configured by configure, with its providers set up: a site
// without the HTTP server and shop of Env, for benchmarks.
func BenchSite(b testing.TB, configure func(*handlers.Config)) (*handlers.Site, *bolt.Store) {
	b.Helper()
	st, err := bolt.Open(filepath.Join(b.TempDir(), "checkout.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	return BenchSiteOn(b, st, configure), st
}

// BenchSiteOn is BenchSite over the store st, which the caller opened and
// closes: sites built on one shared store (PostgreSQL) are the instances
// of one site. Each call makes its own secret, unless configure sets one
// (instances of one site share theirs).
func BenchSiteOn(b testing.TB, st store.Store, configure func(*handlers.Config)) *handlers.Site {
	b.Helper()
	secret, err := sign.ParseSecret(sign.NewSecret())
	if err != nil {
		b.Fatal(err)
	}
	pages, err := templates.New("", nil)
	if err != nil {
		b.Fatal(err)
	}
	cfg := handlers.Config{Site: "bench", Secret: secret, Store: st, Pages: pages}
	configure(&cfg)
	site, err := handlers.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return site
}

type lockedWriter struct {
	buf *bytes.Buffer
	mu  *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// BufferLogger logs everything, at debug level, as JSON into buf, under
// mu (hold it to read buf).
func BufferLogger(buf *bytes.Buffer, mu *sync.Mutex) *zap.Logger {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(lockedWriter{buf, mu}), zapcore.DebugLevel))
}

// WebhookIngest is the timed part of a webhook-ingest benchmark: the b.N
// webhooks are made first, in parallel, by build (the body and headers of
// webhook i, with its order stored), then posted to path on site with
// goroutines in flight, each expected to get 200. It reports events/s.
func WebhookIngest(b *testing.B, site *handlers.Site, path string, goroutines int, build func(i int) ([]byte, http.Header)) {
	b.Helper()
	WebhookIngestAcross(b, []*handlers.Site{site}, path, goroutines, build, nil)
}

// WebhookIngestAcross is WebhookIngest over several instances of one site
// on a shared store, as behind a load balancer: webhook i is posted to
// sites[i%len(sites)]. started, when not nil, is called once the webhooks
// are made, just before the first is posted (to start counting what the
// posting costs).
func WebhookIngestAcross(b *testing.B, sites []*handlers.Site, path string, goroutines int,
	build func(i int) ([]byte, http.Header), started func()) {
	b.Helper()
	bodies := make([][]byte, b.N)
	headers := make([]http.Header, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < b.N; i = int(next.Add(1) - 1) {
				bodies[i], headers[i] = build(i)
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	var seq atomic.Int64
	b.SetParallelism(max(1, goroutines/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	if started != nil {
		started()
	}
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1) - 1
			r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(bodies[i]))
			maps.Copy(r.Header, headers[i])
			w := httptest.NewRecorder()
			_ = sites[int(i)%len(sites)].ServeHTTP(w, r, handlers.NextHandler(http.NotFoundHandler()))
			if w.Code != http.StatusOK {
				b.Errorf("webhook %d: %d %s", i, w.Code, w.Body.String())
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}

// Moves is how many times the order entered state to (applied events of
// its history): a payment applied twice shows as 2.
func Moves(o *order.Order, to order.State) int {
	n := 0
	for _, e := range o.History {
		if e.Applied && e.To == to {
			n++
		}
	}
	return n
}
