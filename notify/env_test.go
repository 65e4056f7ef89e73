// The test harness shared by the notifier's tests: a real bbolt store in a
// temporary directory, a clock the test moves by hand, and a shop (an
// httptest server on loopback) that records every callback it receives.

package notify_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/notify"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/sign"
	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/store/bolt"
)

const site = "shop.test"

// clock is the injected Now: time moves only when the test says so.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// env is one notifier over one fresh store.
type env struct {
	t      *testing.T
	store  *bolt.Store
	clock  *clock
	n      *notify.Notifier
	logs   *syncBuffer
	secret sign.Secret

	mu     sync.Mutex
	known  bool // whether Sites knows site
	nextID int
}

// newEnv makes an env; adjust may change the Config before New.
func newEnv(t *testing.T, adjust ...func(*notify.Config)) *env {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "checkout.db"), bolt.Options{})
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	secret, err := sign.ParseSecret(sign.NewSecret())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		t:      t,
		store:  st,
		clock:  &clock{t: time.Date(2026, 11, 21, 7, 0, 0, 0, time.UTC)},
		logs:   &syncBuffer{},
		secret: secret,
		known:  true,
	}
	cfg := notify.Config{
		Store:  st,
		Sites:  e.sites,
		Now:    e.clock.Now,
		Rand:   func() float64 { return 0.5 }, // jitter factor exactly 1
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range adjust {
		f(&cfg)
	}
	e.n = notify.New(cfg)
	return e
}

func (e *env) sites(s string) (sign.Secret, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s != site || !e.known {
		return sign.Secret{}, false
	}
	return e.secret, true
}

// setSite adds or removes the site from the "config".
func (e *env) setSite(known bool) {
	e.mu.Lock()
	e.known = known
	e.mu.Unlock()
}

// rotate gives the site a new secret, as a config reload would.
func (e *env) rotate() sign.Secret {
	s, err := sign.ParseSecret(sign.NewSecret())
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.secret = s
	e.mu.Unlock()
	return s
}

// add commits a new delivery for orderID, as the core does in the
// transaction of a state change, due now.
func (e *env) add(orderID, url string) *store.Delivery {
	e.t.Helper()
	e.mu.Lock()
	e.nextID++
	id := fmt.Sprintf("msg_%s_%d", orderID, e.nextID)
	e.mu.Unlock()
	now := e.clock.Now()
	d := store.Delivery{
		ID:        id,
		Type:      "order.paid",
		URL:       url,
		Body:      fmt.Appendf(nil, `{"type":"order.paid","data":{"order_id":%q,"msg":%q}}`, orderID, id),
		CreatedAt: now,
		RetryFrom: now,
		NextAt:    now,
	}
	key := order.Key{Site: site, ID: orderID}
	_, err := e.store.Update(context.Background(), key, func(o *order.Order) (*order.Order, []store.Delivery, error) {
		if o == nil {
			o = &order.Order{Key: key, Status: order.Paid, Amount: money.MustParse("75.00", "USD"),
				CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		}
		o.UpdatedAt = now
		return o, []store.Delivery{d}, nil
	})
	if err != nil {
		e.t.Fatalf("adding delivery: %v", err)
	}
	e.n.Wake()
	return e.get(id)
}

func (e *env) get(id string) *store.Delivery {
	e.t.Helper()
	d, err := e.store.Delivery(context.Background(), id)
	if err != nil {
		e.t.Fatalf("reading delivery %s: %v", id, err)
	}
	return d
}

func (e *env) tick() {
	e.t.Helper()
	if err := e.n.Tick(context.Background()); err != nil {
		e.t.Fatalf("Tick: %v", err)
	}
}

// hit is one callback as the shop received it.
type hit struct {
	Path   string
	Header http.Header
	Body   []byte
}

// ID is the webhook-id the shop saw.
func (h hit) ID() string { return h.Header.Get("webhook-id") }

// shop is a callback endpoint. answer decides the reply to each hit; the
// default is 204.
type shop struct {
	URL    string
	srv    *httptest.Server
	mu     sync.Mutex
	hits   []hit
	answer func(w http.ResponseWriter, r *http.Request, h hit)
}

func newShop(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, h hit)) *shop {
	s := &shop{answer: answer}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h := hit{Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
		s.mu.Lock()
		s.hits = append(s.hits, h)
		answer := s.answer
		s.mu.Unlock()
		if answer == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		answer(w, r, h)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	s.srv = srv
	return s
}

// closeShop takes the shop off the network: its port refuses connections.
func closeShop(t *testing.T, s *shop) {
	t.Helper()
	s.srv.Close()
}

// setAnswer changes how the shop replies from now on.
func (s *shop) setAnswer(f func(w http.ResponseWriter, r *http.Request, h hit)) {
	s.mu.Lock()
	s.answer = f
	s.mu.Unlock()
}

func (s *shop) Hits() []hit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]hit(nil), s.hits...)
}

// status is an answer that replies code.
func status(code int) func(w http.ResponseWriter, r *http.Request, h hit) {
	return func(w http.ResponseWriter, r *http.Request, h hit) { w.WriteHeader(code) }
}

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
