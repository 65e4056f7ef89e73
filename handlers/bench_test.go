package handlers_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/handlers/handlerstest"
	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/sandbox"
)

// BenchmarkHeaderIntake measures the whole header intake of SPEC §4.1 with
// a real bbolt store: the upstream (next) answers with X-Checkout-Order,
// -Amount and -Currency, the site stores the order durably (bbolt group
// commit, fsync) and answers 303 to the sandbox's hosted page. One op is
// one new order.
//
// Throughput comes from group commit, so it depends on how many requests
// are in flight: the sub-benchmarks run that many goroutines (RunParallel
// with SetParallelism(g/GOMAXPROCS)). Metrics: orders/s, and the p50/p99
// latency of one ServeHTTP call in ms. This is closed-loop (every
// goroutine sends its next request as soon as the last one is answered),
// so p99 here is latency at saturation; the latency at a fixed arrival
// rate is measured by internal/bench/intakerate.
//
//	go test ./handlers -run '^$' -bench HeaderIntake -benchtime 5s
func BenchmarkHeaderIntake(b *testing.B) {
	for _, g := range []int{16, 64, 256} {
		b.Run("g="+strconv.Itoa(g), func(b *testing.B) { benchHeaderIntake(b, g) })
	}
}

// benchSite builds a site with the sandbox provider over a bolt store in
// a temporary directory.
func benchSite(b *testing.B) *handlers.Site {
	b.Helper()
	site, _ := handlerstest.BenchSite(b, func(c *handlers.Config) {
		c.Intake = handlers.Intakes{Headers: true}
		c.Providers = []provider.Provider{&sandbox.Sandbox{}}
	})
	return site
}

// benchShop is the upstream: every request is a "buy" that announces a new
// order through response headers. The order id comes from the request
// path, so that each op has its own.
type benchShop struct{}

func (benchShop) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Checkout-Order", strings.TrimPrefix(r.URL.Path, "/buy/"))
	h.Set("X-Checkout-Amount", "75.00")
	h.Set("X-Checkout-Currency", "USD")
	h.Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("this body is discarded"))
}

func benchHeaderIntake(b *testing.B, goroutines int) {
	benchHeaderIntakeOn(b, benchSite(b), goroutines)
}

func benchHeaderIntakeOn(b *testing.B, site *handlers.Site, goroutines int) {
	var shop benchShop
	// Distinct ids across sub-benchmark runs too (the testing package
	// calls this function several times with growing b.N).
	prefix := strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	var seq atomic.Int64
	var (
		mu  sync.Mutex
		all []time.Duration
	)
	p := max(1, goroutines/runtime.GOMAXPROCS(0))
	b.SetParallelism(p)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		lat := make([]time.Duration, 0, 1024)
		defer func() {
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
		for pb.Next() {
			id := prefix + strconv.FormatInt(seq.Add(1), 10)
			r := httptest.NewRequest(http.MethodGet, "/buy/"+id, nil)
			w := httptest.NewRecorder()
			t0 := time.Now()
			_ = site.ServeHTTP(w, r, handlers.NextHandler(shop))
			lat = append(lat, time.Since(t0))
			if w.Code != http.StatusSeeOther {
				b.Errorf("order %s: status %d, want 303; body %q", id, w.Code, w.Body.String())
				return
			}
			if loc := w.Header().Get("Location"); !strings.Contains(loc, "/_checkout/sandbox/") {
				b.Errorf("order %s: Location %q, want the sandbox page", id, loc)
				return
			}
			if w.Header().Get("X-Checkout-Order") != "" {
				b.Errorf("order %s: X-Checkout-Order leaked to the client", id)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "orders/s")
	b.ReportMetric(float64(goroutines), "goroutines")
	if len(all) > 0 {
		slices.Sort(all)
		q := func(f float64) float64 {
			i := int(f * float64(len(all)-1))
			return float64(all[i]) / float64(time.Millisecond)
		}
		b.ReportMetric(q(0.50), "p50-ms")
		b.ReportMetric(q(0.99), "p99-ms")
	}
}

// BenchmarkPassThrough is what the handler costs a request that is not a
// checkout request (the 0.98 proxy-ratio target): "direct" calls the next
// handler alone, "site" calls it through Site.ServeHTTP with header intake
// on (client X-Checkout-* stripping, the response interceptor), with 8
// browser-like request headers including Connection: keep-alive; the
// -noconn pair is the same without the Connection header. The next
// handler answers 200 with a small body and no X-Checkout-* headers, like
// a shop page. The difference of the two is the handler's own CPU cost per
// request, free of the noise of a load test.
//
//	go test ./handlers -run '^$' -bench PassThrough -count 5
func BenchmarkPassThrough(b *testing.B) {
	site := benchSite(b)
	body := []byte(strings.Repeat("x", 128))
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Server", "shop")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
	req := httptest.NewRequest(http.MethodGet, "/products/42", nil)
	for k, v := range map[string]string{
		"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/140.0", "Accept": "text/html,*/*;q=0.8",
		"Accept-Language": "en-US,en;q=0.5", "Accept-Encoding": "gzip, deflate, br", "Cookie": "session=abc123; cart=c-1",
		"Referer": "http://shop.example/", "Connection": "keep-alive", "X-Forwarded-For": "192.0.2.1",
	} {
		req.Header.Set(k, v)
	}
	w := &discardWriter{header: http.Header{}}
	nextFn := handlers.NextHandler(next)
	run := func(b *testing.B, serve func()) {
		b.ReportAllocs()
		for b.Loop() {
			clear(w.header)
			// A fresh header map per request, as net/http gives; the
			// handler deletes from it.
			req.Header = req.Header.Clone()
			serve()
		}
	}
	b.Run("direct", func(b *testing.B) { run(b, func() { next.ServeHTTP(w, req) }) })
	b.Run("site", func(b *testing.B) { run(b, func() { _ = site.ServeHTTP(w, req, nextFn) }) })
	// HTTP/2 requests (and HTTP/1.1 clients that rely on keep-alive being
	// the default) carry no Connection header.
	req.Header.Del("Connection")
	b.Run("direct-noconn", func(b *testing.B) { run(b, func() { next.ServeHTTP(w, req) }) })
	b.Run("site-noconn", func(b *testing.B) { run(b, func() { _ = site.ServeHTTP(w, req, nextFn) }) })
}

// discardWriter is a ResponseWriter that keeps nothing, so that the
// benchmark measures the handler rather than a recorder.
type discardWriter struct {
	header http.Header
	code   int
}

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkHeaderIntakeRate is the intake at a fixed arrival rate (open
// loop): order i is due at start + i/rate and its latency counts from that
// due time, so falling behind shows as latency. It measures the plugin
// alone (no HTTP server, no proxy, no load generator sharing the two
// cores), which is what "added latency" means. b.N orders are sent.
//
//	go test ./handlers -run '^$' -bench HeaderIntakeRate -benchtime 25000x
func BenchmarkHeaderIntakeRate(b *testing.B) {
	for _, rate := range []int{5000, 7000} {
		b.Run("rate="+strconv.Itoa(rate), func(b *testing.B) { benchHeaderIntakeRate(b, rate) })
	}
}

func benchHeaderIntakeRate(b *testing.B, rate int) {
	site := benchSite(b)
	prefix := strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	b.ResetTimer()
	lat, elapsed := intakeAtRate(b, []*handlers.Site{site}, rate, prefix)
	b.StopTimer()
	reportLatency(b, lat, elapsed)
}

// serveOrder runs one header intake of order id through site and returns
// the status it answered.
func serveOrder(site *handlers.Site, id string) int {
	r := httptest.NewRequest(http.MethodGet, "/buy/"+id, nil)
	w := httptest.NewRecorder()
	_ = site.ServeHTTP(w, r, handlers.NextHandler(benchShop{}))
	return w.Code
}

// intakeAtRate is the open loop of BenchmarkHeaderIntakeRate over one or
// more instances: b.N orders, order i due at start + i/rate and sent to
// sites[i%len(sites)], each on its own goroutine. It returns each order's
// latency from its due time, and the time from the start until the last
// answer.
func intakeAtRate(b *testing.B, sites []*handlers.Site, rate int, prefix string) ([]time.Duration, time.Duration) {
	b.Helper()
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	var failed atomic.Int64
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := 0; i < b.N; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func(i int, due time.Time) {
			defer wg.Done()
			if serveOrder(sites[i%len(sites)], prefix+strconv.Itoa(i)) != http.StatusSeeOther {
				failed.Add(1)
			}
			lat[i] = time.Since(due)
		}(i, due)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failed.Load() > 0 {
		b.Fatalf("%d orders did not get their 303", failed.Load())
	}
	return lat, elapsed
}

// reportLatency reports orders/s and the p50, p99 and p99.9 latency in ms,
// as BenchmarkHeaderIntakeRate does.
func reportLatency(b *testing.B, lat []time.Duration, elapsed time.Duration) {
	slices.Sort(lat)
	q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "orders/s")
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(0.999), "p99.9-ms")
}

// BenchmarkPaywall is what checking a receipt costs a request for a priced
// path (SPEC §4.4), beside the same request for the path unpriced: both
// through Site.ServeHTTP with the same receipt in Authorization, the next
// handler answering 200. "priced" includes the signed paid headers set on
// the request; the store is read at most once a second per receipt.
//
//	go test ./handlers -run '^$' -bench Paywall -count 5
func BenchmarkPaywall(b *testing.B) {
	sites := map[string]*handlers.Site{}
	var receipt string
	for _, priced := range []bool{true, false} {
		site, st := handlerstest.BenchSite(b, func(c *handlers.Config) {
			c.Intake = handlers.Intakes{Headers: true}
			c.Providers = []provider.Provider{&sandbox.Sandbox{}}
			if priced {
				c.Prices = []handlers.Price{{Path: "/downloads/ebook.pdf", Amount: "9.99", Currency: "USD"}}
			}
		})
		_ = st
		name := "unpriced"
		if priced {
			name = "priced"
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = site.ServeHTTP(w, r, handlers.NextHandler(http.NotFoundHandler()))
			}))
			var err error
			receipt, err = handlerstest.BuyReceipt(srv.URL, "/downloads/ebook.pdf")
			srv.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
		sites[name] = site
	}
	body := []byte(strings.Repeat("x", 128))
	next := handlers.NextHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/pdf")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}))
	req := httptest.NewRequest(http.MethodGet, "/downloads/ebook.pdf", nil)
	req.Header.Set("Authorization", "Bearer "+receipt)
	req.Header.Set("User-Agent", "curl/8.5.0")
	req.Header.Set("Accept", "*/*")
	w := &discardWriter{header: http.Header{}}
	// "other-path" is a request for a path without a price on the site
	// with one: what prices cost the rest of the site.
	other := req.Clone(req.Context())
	other.URL.Path, other.RequestURI = "/products/42", "/products/42"
	sites["other-path"] = sites["priced"]
	for _, name := range []string{"unpriced", "priced", "other-path"} {
		site, base := sites[name], req
		if name == "other-path" {
			base = other
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				clear(w.header)
				r := base.Clone(base.Context())
				if _ = site.ServeHTTP(w, r, next); w.code != http.StatusOK {
					b.Fatalf("status %d", w.code)
				}
			}
		})
	}
}

// BenchmarkLivePageMemory is what an open live page (an event stream of
// GET {base}/events/{ref}) costs the server: N streams are opened over raw
// connections (no client goroutines) and the growth of the heap and of
// goroutine stacks is divided by N. The connections' client ends are in
// the figure too; they are a few hundred bytes each.
//
//	go test ./handlers -run '^$' -bench LivePageMemory -benchtime 1x
func BenchmarkLivePageMemory(b *testing.B) {
	site := benchSite(b)
	o, _, err := site.Receive(b.Context(), order.Intake{Key: order.Key{ID: "live-1"}, Amount: money.MustParse("12.50", "USD")}, "")
	if err != nil {
		b.Fatal(err)
	}
	ref := o.Current().Ref
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = site.ServeHTTP(w, r, handlers.NextHandler(http.NotFoundHandler()))
	}))
	defer srv.Close()
	const pages = 1000 // 50 payments, 20 pages each: the most one payment may have
	measure := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse + m.StackInuse
	}
	for b.Loop() {
		refs := []string{ref}
		for i := 1; i < pages/20; i++ {
			o, _, err := site.Receive(b.Context(), order.Intake{Key: order.Key{ID: "live-" + strconv.Itoa(i+1)}, Amount: money.MustParse("12.50", "USD")}, "")
			if err != nil {
				b.Fatal(err)
			}
			refs = append(refs, o.Current().Ref)
		}
		before := measure()
		var conns []net.Conn
		buf := make([]byte, 4096)
		for i := range pages {
			c, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			fmt.Fprintf(c, "GET /_checkout/events/%s HTTP/1.1\r\nHost: shop\r\n\r\n", refs[i%len(refs)])
			n, err := c.Read(buf) // the headers and the first event
			if err != nil || !strings.Contains(string(buf[:n]), "200 OK") {
				b.Fatalf("stream %d: %v %q", i, err, buf[:n])
			}
			conns = append(conns, c)
		}
		after := measure()
		b.ReportMetric(float64(after-before)/pages, "B/page")
		for _, c := range conns {
			c.Close()
		}
	}
}
