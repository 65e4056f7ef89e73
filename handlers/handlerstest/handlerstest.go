// Package handlerstest is the test kit of a checkout site, exported so
// that each provider's flow tests live in its own package: a site over a
// real bbolt store with the sandbox provider (tests add theirs through an
// Option), served over loopback HTTP in front of the demo shop, with an
// injected clock, a notifier that delivers the shop's callbacks on Tick,
// and a client that shows every redirect.
package handlerstest

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

// Clock is a settable test clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now is the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Add moves the clock.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set sets the clock.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Env is a running site and the demo shop behind it.
type Env struct {
	T          *testing.T
	Store      *bolt.Store
	SecretText string // the site secret, whsec_…
	Secret     sign.Secret
	Clock      *Clock
	Shop       *demoshop.Shop
	ShopSrv    *httptest.Server
	Srv        *httptest.Server // the site, in front of the shop
	Notifier   *notify.Notifier
	Cfg        handlers.Config // the config Reload builds the site from

	site     *handlers.Site
	siteMu   sync.Mutex
	upstream http.Handler // what the site proxies to; default: the demo shop
	upMu     sync.Mutex
}

// Site is the site as now built (Reload builds a new one).
func (e *Env) Site() *handlers.Site {
	e.siteMu.Lock()
	defer e.siteMu.Unlock()
	return e.site
}

// Option changes the site's config before it is built.
type Option func(*handlers.Config)

// New starts the site and the demo shop for t.
func New(t *testing.T, opts ...Option) *Env {
	t.Helper()
	e := &Env{T: t, Clock: &Clock{t: time.Now().Truncate(time.Second)}}
	e.SecretText = sign.NewSecret()
	var err error
	if e.Secret, err = sign.ParseSecret(e.SecretText); err != nil {
		t.Fatal(err)
	}
	if e.Store, err = bolt.Open(filepath.Join(t.TempDir(), "checkout.db"), bolt.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Store.Close() })
	if e.Shop, err = demoshop.New(e.SecretText); err != nil {
		t.Fatal(err)
	}
	e.Shop.SetClock(e.Clock.Now)
	e.ShopSrv = httptest.NewServer(e.Shop)
	t.Cleanup(e.ShopSrv.Close)
	e.upstream = e.Shop
	pages, err := templates.New("", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := handlers.Config{
		Site:       "shop",
		Secret:     e.Secret,
		Callback:   e.ShopSrv.URL + "/payments/webhook",
		SuccessURL: "/orders/{order_id}/thanks",
		CancelURL:  "/cart",
		Intake:     handlers.Intakes{Headers: true, SignedLink: true, API: true},
		APIAllow:   []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Providers:  []provider.Provider{&sandbox.Sandbox{}},
		Store:      e.Store,
		Pages:      pages,
		Now:        e.Clock.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.Cfg = cfg
	e.Reload()
	e.Notifier = notify.New(notify.Config{
		Store: e.Store,
		Sites: func(site string) (sign.Secret, bool) { return e.Secret, site == "shop" },
		Now:   e.Clock.Now,
	})
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.upMu.Lock()
		up := e.upstream
		e.upMu.Unlock()
		up.ServeHTTP(w, r)
	})
	e.Srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.siteMu.Lock()
		site := e.site
		e.siteMu.Unlock()
		_ = site.ServeHTTP(w, r, handlers.NextHandler(next))
	}))
	t.Cleanup(e.Srv.Close)
	return e
}

// Reload builds the site anew from its config over the same store, as a
// Caddy reload or restart does: nothing kept in memory survives it.
func (e *Env) Reload() {
	e.T.Helper()
	site, err := handlers.New(e.Cfg)
	if err != nil {
		e.T.Fatal(err)
	}
	e.siteMu.Lock()
	e.site = site
	e.siteMu.Unlock()
}

// SetUpstream replaces what the site proxies to (the demo shop).
func (e *Env) SetUpstream(h http.Handler) {
	e.upMu.Lock()
	e.upstream = h
	e.upMu.Unlock()
}

// Client does not follow redirects, so tests see every hop.
func (e *Env) Client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Resp is a response as a test looks at it.
type Resp struct {
	Code     int
	Location string
	Body     string
	Header   http.Header
}

// Do sends req with c (a new Client when nil).
func (e *Env) Do(c *http.Client, req *http.Request) Resp {
	e.T.Helper()
	if c == nil {
		c = e.Client()
	}
	r, err := c.Do(req)
	if err != nil {
		e.T.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return Resp{Code: r.StatusCode, Location: r.Header.Get("Location"), Body: string(b), Header: r.Header}
}

// Get requests path (or an absolute URL) with headers given as pairs.
func (e *Env) Get(c *http.Client, path string, hdr ...string) Resp {
	e.T.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.Abs(path), nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return e.Do(c, req)
}

// Post posts a form to path with headers given as pairs.
func (e *Env) Post(c *http.Client, path string, form url.Values, hdr ...string) Resp {
	e.T.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.Abs(path), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return e.Do(c, req)
}

// Abs makes path absolute on the site.
func (e *Env) Abs(path string) string {
	if strings.HasPrefix(path, "http") {
		return path
	}
	return e.Srv.URL + path
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// CSRFOf is the csrf field of a page's form.
func CSRFOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field in page:\n%s", body)
	}
	return m[1]
}

// Buy has the demo shop announce an order through response headers and
// returns the sandbox page URL the customer is sent to.
func (e *Env) Buy(c *http.Client, product string) string {
	e.T.Helper()
	r := e.Post(c, "/buy", url.Values{"product": {product}})
	if r.Code != http.StatusSeeOther || !strings.Contains(r.Location, "/_checkout/sandbox/") {
		e.T.Fatalf("buy: got %d %q, want 303 to the sandbox:\n%s", r.Code, r.Location, r.Body)
	}
	return r.Location
}

// RefOf is the last path segment of u: an attempt reference.
func RefOf(u string) string { return u[strings.LastIndex(u, "/")+1:] }

// PaySandbox presses a sandbox button and returns the redirect it gives.
func (e *Env) PaySandbox(c *http.Client, sandboxURL, outcome string) Resp {
	e.T.Helper()
	page := e.Get(c, sandboxURL)
	if page.Code != http.StatusOK {
		e.T.Fatalf("sandbox page: %d", page.Code)
	}
	return e.Post(c, sandboxURL, url.Values{"csrf": {CSRFOf(e.T, page.Body)}, "outcome": {outcome}}, "Origin", e.Srv.URL)
}

// OrderByRef is the stored order of an attempt reference.
func (e *Env) OrderByRef(ref string) *order.Order {
	e.T.Helper()
	o, err := e.Store.ByRef(context.Background(), ref)
	if err != nil {
		e.T.Fatal(err)
	}
	return o
}

// Deliveries are the outbox's rows.
func (e *Env) Deliveries() []*store.Delivery {
	e.T.Helper()
	ds, err := e.Store.Deliveries(context.Background(), store.DeliveryFilter{})
	if err != nil {
		e.T.Fatal(err)
	}
	return ds
}

// SignedWebhook builds a sandbox webhook as the sandbox would send it.
func (e *Env) SignedWebhook(id, body string) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, e.Abs("/_checkout/webhook/sandbox"), strings.NewReader(body))
	e.Secret.SetWebhookHeaders(req.Header, id, e.Clock.Now(), []byte(body))
	return req
}

// CallbackTypes delivers the queued shop callbacks and returns the types
// the demo shop received, in order.
func (e *Env) CallbackTypes() []string {
	e.T.Helper()
	for i := 0; i < 3; i++ {
		if err := e.Notifier.Tick(context.Background()); err != nil {
			e.T.Fatal(err)
		}
	}
	var types []string
	for _, cb := range e.Shop.Callbacks() {
		var b struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal([]byte(cb.Body), &b); err != nil {
			e.T.Fatal(err)
		}
		types = append(types, b.Type)
	}
	return types
}

// API calls the server API (or another JSON route) with a bearer token.
func (e *Env) API(method, path, token, body string, hdr ...string) Resp {
	e.T.Helper()
	req, _ := http.NewRequest(method, e.Abs(path), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return e.Do(nil, req)
}
