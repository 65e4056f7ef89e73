// The test harness of the handlers: a site over a real bbolt store with
// the sandbox provider, served over loopback HTTP in front of the demo
// shop, with an injected clock.
package handlers_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/internal/demoshop"
	"github.com/caddy-checkout/checkout/notify"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/sandbox"
	"github.com/caddy-checkout/checkout/sign"
	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/store/bolt"
	"github.com/caddy-checkout/checkout/templates"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type testEnv struct {
	t          *testing.T
	site       *handlers.Site
	store      *bolt.Store
	secretText string
	secret     sign.Secret
	clock      *clock
	shop       *demoshop.Shop
	shopSrv    *httptest.Server
	srv        *httptest.Server
	notifier   *notify.Notifier
	upstream   http.Handler // what the site proxies to; default: the demo shop
	upMu       sync.Mutex
	cfg        handlers.Config
	siteMu     sync.Mutex
}

type option func(*handlers.Config)

func newEnv(t *testing.T, opts ...option) *testEnv {
	t.Helper()
	e := &testEnv{t: t, clock: &clock{t: time.Now().Truncate(time.Second)}}
	e.secretText = sign.NewSecret()
	var err error
	if e.secret, err = sign.ParseSecret(e.secretText); err != nil {
		t.Fatal(err)
	}
	if e.store, err = bolt.Open(filepath.Join(t.TempDir(), "checkout.db"), bolt.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close() })
	if e.shop, err = demoshop.New(e.secretText); err != nil {
		t.Fatal(err)
	}
	e.shopSrv = httptest.NewServer(e.shop)
	t.Cleanup(e.shopSrv.Close)
	e.upstream = e.shop
	pages, err := templates.New("", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := handlers.Config{
		Site:       "shop",
		Secret:     e.secret,
		Callback:   e.shopSrv.URL + "/payments/webhook",
		SuccessURL: "/orders/{order_id}/thanks",
		CancelURL:  "/cart",
		Intake:     handlers.Intakes{Headers: true, SignedLink: true, API: true},
		APIAllow:   []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Providers:  []provider.Provider{&sandbox.Sandbox{}},
		Store:      e.store,
		Pages:      pages,
		Now:        e.clock.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.cfg = cfg
	e.reload()
	e.notifier = notify.New(notify.Config{
		Store: e.store,
		Sites: func(site string) (sign.Secret, bool) { return e.secret, site == "shop" },
		Now:   e.clock.Now,
	})
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.upMu.Lock()
		up := e.upstream
		e.upMu.Unlock()
		up.ServeHTTP(w, r)
	})
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.siteMu.Lock()
		site := e.site
		e.siteMu.Unlock()
		_ = site.ServeHTTP(w, r, handlers.NextHandler(next))
	}))
	t.Cleanup(e.srv.Close)
	return e
}

// reload builds the site anew from its config over the same store, as a
// Caddy reload or restart does: nothing kept in memory survives it.
func (e *testEnv) reload() {
	e.t.Helper()
	site, err := handlers.New(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, p := range e.cfg.Providers {
		if s, ok := p.(provider.Setuper); ok {
			if err := s.Setup(site.Env()); err != nil {
				e.t.Fatal(err)
			}
		}
	}
	e.siteMu.Lock()
	e.site = site
	e.siteMu.Unlock()
}

func (e *testEnv) setUpstream(h http.Handler) {
	e.upMu.Lock()
	e.upstream = h
	e.upMu.Unlock()
}

// client does not follow redirects, so tests see every hop.
func (e *testEnv) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type resp struct {
	code     int
	location string
	body     string
	header   http.Header
}

func (e *testEnv) do(c *http.Client, req *http.Request) resp {
	e.t.Helper()
	if c == nil {
		c = e.client()
	}
	r, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{code: r.StatusCode, location: r.Header.Get("Location"), body: string(b), header: r.Header}
}

func (e *testEnv) get(c *http.Client, path string, hdr ...string) resp {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.abs(path), nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return e.do(c, req)
}

func (e *testEnv) post(c *http.Client, path string, form url.Values, hdr ...string) resp {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.abs(path), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return e.do(c, req)
}

func (e *testEnv) abs(path string) string {
	if strings.HasPrefix(path, "http") {
		return path
	}
	return e.srv.URL + path
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field in page:\n%s", body)
	}
	return m[1]
}

// buy has the demo shop announce an order through response headers and
// returns the sandbox page URL the customer is sent to.
func (e *testEnv) buy(c *http.Client, product string) string {
	e.t.Helper()
	r := e.post(c, "/buy", url.Values{"product": {product}})
	if r.code != http.StatusSeeOther || !strings.Contains(r.location, "/_checkout/sandbox/") {
		e.t.Fatalf("buy: got %d %q, want 303 to the sandbox:\n%s", r.code, r.location, r.body)
	}
	return r.location
}

func refOf(u string) string { return u[strings.LastIndex(u, "/")+1:] }

// paySandbox presses a sandbox button and returns the redirect it gives.
func (e *testEnv) paySandbox(c *http.Client, sandboxURL, outcome string) resp {
	e.t.Helper()
	page := e.get(c, sandboxURL)
	if page.code != http.StatusOK {
		e.t.Fatalf("sandbox page: %d", page.code)
	}
	return e.post(c, sandboxURL, url.Values{"csrf": {csrfOf(e.t, page.body)}, "outcome": {outcome}}, "Origin", e.srv.URL)
}

func (e *testEnv) orderByRef(ref string) *order.Order {
	e.t.Helper()
	o, err := e.store.ByRef(context.Background(), ref)
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

func (e *testEnv) deliveries() []*store.Delivery {
	e.t.Helper()
	ds, err := e.store.Deliveries(context.Background(), store.DeliveryFilter{})
	if err != nil {
		e.t.Fatal(err)
	}
	return ds
}

// signedWebhook builds a sandbox webhook as the sandbox would send it.
func (e *testEnv) signedWebhook(id, body string) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, e.abs("/_checkout/webhook/sandbox"), strings.NewReader(body))
	e.secret.SetWebhookHeaders(req.Header, id, e.clock.Now(), []byte(body))
	return req
}

// callbackTypes delivers the queued shop callbacks and returns the types
// the demo shop received, in order.
func (e *testEnv) callbackTypes() []string {
	e.t.Helper()
	for i := 0; i < 3; i++ {
		if err := e.notifier.Tick(context.Background()); err != nil {
			e.t.Fatal(err)
		}
	}
	var types []string
	for _, cb := range e.shop.Callbacks() {
		var b struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal([]byte(cb.Body), &b); err != nil {
			e.t.Fatal(err)
		}
		types = append(types, b.Type)
	}
	return types
}
