package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-checkout/checkout/internal/demoshop"
	"github.com/caddy-checkout/checkout/internal/komojutest"
	"github.com/caddy-checkout/checkout/internal/stripetest"
	"github.com/caddy-checkout/checkout/sign"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// shopRecorder is a shop callback endpoint that records every try, can be
// made to fail, and verifies signatures.
type shopRecorder struct {
	secret sign.Secret
	mu     sync.Mutex
	fail   bool
	tries  []string // webhook-id of every try, verified or not
	ok     []string // webhook-ids answered 2xx
	bodies []string
	got    chan struct{}
}

func newShopRecorder(t *testing.T, secret string) *shopRecorder {
	s, err := sign.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	return &shopRecorder{secret: s, got: make(chan struct{}, 100)}
}

func (s *shopRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id, err := s.secret.VerifyWebhook(r.Header, body, time.Now())
	s.mu.Lock()
	defer func() {
		s.mu.Unlock()
		select {
		case s.got <- struct{}{}:
		default:
		}
	}()
	s.tries = append(s.tries, r.Header.Get("webhook-id"))
	if err != nil {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if s.fail {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	s.ok = append(s.ok, id)
	s.bodies = append(s.bodies, string(body))
	w.WriteHeader(http.StatusNoContent)
}

func (s *shopRecorder) snapshot() (tries, ok []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tries...), append([]string(nil), s.ok...)
}

func (s *shopRecorder) setFail(v bool) {
	s.mu.Lock()
	s.fail = v
	s.mu.Unlock()
}

// recordedShop serves the demo shop with its callback endpoint replaced by
// a recorder that verifies, counts and can fail the callbacks, and with
// what routes add; it is closed when the test ends.
func recordedShop(t *testing.T, secret string, routes ...func(*http.ServeMux, *demoshop.Shop)) (*shopRecorder, *httptest.Server) {
	t.Helper()
	shop, err := demoshop.New(secret)
	if err != nil {
		t.Fatal(err)
	}
	cb := newShopRecorder(t, secret)
	mux := http.NewServeMux()
	mux.Handle("/payments/webhook", cb)
	mux.Handle("/", shop)
	for _, add := range routes {
		add(mux, shop)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return cb, srv
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// noRedirectClient is a customer: its own cookies and its own connections
// (a pool shared with other clients could hand it a keep-alive connection
// that a config reload has just closed, and a POST is never retried).
func noRedirectClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		Transport:     http.DefaultTransport.(*http.Transport).Clone(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// payWithSandbox buys product at the shop behind base and presses Pay on
// the sandbox page; it returns the final page the customer sees at the shop.
func payWithSandbox(t *testing.T, c *http.Client, base, product, outcome string) (sandboxURL, final string) {
	t.Helper()
	step := func(method, u string, form url.Values, hdr ...string) (*http.Response, string) {
		if strings.HasPrefix(u, "/") {
			u = base + u
		}
		return send(t, c, method, u, form, hdr...)
	}
	r, _ := step("POST", "/buy", url.Values{"product": {product}})
	if r.StatusCode != 303 {
		t.Fatalf("buy: %d", r.StatusCode)
	}
	sandboxURL = r.Header.Get("Location")
	r, page := step("GET", sandboxURL, nil)
	m := csrfRE.FindStringSubmatch(page)
	if r.StatusCode != 200 || m == nil {
		t.Fatalf("sandbox page: %d", r.StatusCode)
	}
	r, _ = step("POST", sandboxURL, url.Values{"csrf": {m[1]}, "outcome": {outcome}}, "Origin", base)
	if r.StatusCode != 303 {
		t.Fatalf("sandbox post: %d", r.StatusCode)
	}
	loc := r.Header.Get("Location")
	for i := 0; i < 3; i++ {
		r, final = step("GET", loc, nil)
		if r.StatusCode != 303 {
			return sandboxURL, final
		}
		loc = r.Header.Get("Location")
	}
	return sandboxURL, final
}

// send makes a request with c, a form POST when form is not nil, with
// headers given as pairs, and returns the response and its body.
func send(t *testing.T, c *http.Client, method, u string, form url.Values, hdr ...string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	r, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r, string(b)
}

func caddyfile(storage, admin, listen, secret, callback, upstream string) string {
	return fmt.Sprintf(`{
	admin %s
	checkout {
		storage bolt %s
	}
}

http://%s {
	checkout {
		secret %s
		callback %s
		success_url /orders/{order_id}/thanks
		cancel_url /cart
		sandbox
	}
	reverse_proxy %s
}
`, admin, storage, listen, secret, callback, upstream)
}

// The provider blocks of a checkout block, each pointed at its fake, as
// the provider tests and the chaos test configure them. Values may be
// placeholders such as {env.E2E_STRIPE_KEY}.

// stripeBlock is a stripe provider whose API is the fake at api.
func stripeBlock(key, whsec, api string) string {
	return "\t\tstripe {\n" +
		"\t\t\tsecret_key " + key + "\n" +
		"\t\t\twebhook_secret " + whsec + "\n" +
		"\t\t\tapi_url " + api + "\n" +
		"\t\t}\n"
}

// komojuBlock is a komoju provider, paid by card or at a konbini, whose
// API is the fake at api.
func komojuBlock(key, hook, api string) string {
	return "\t\tkomoju {\n" +
		"\t\t\tsecret_key " + key + "\n" +
		"\t\t\twebhook_secret " + hook + "\n" +
		"\t\t\tpayment_types credit_card konbini\n" +
		"\t\t\tapi_url " + api + "\n" +
		"\t\t}\n"
}

// cyclosBlock is a cyclos provider on the fake Cyclos at root, with
// settings added as lines ("custom_value invoice_nr {order_id}").
func cyclosBlock(root, token string, settings ...string) string {
	b := "\t\tcyclos {\n" +
		"\t\t\turl " + root + "\n" +
		"\t\t\taccess_client_token " + token + "\n"
	for _, s := range settings {
		b += "\t\t\t" + s + "\n"
	}
	return b + "\t\t}\n"
}

// erc20Block is an erc20 provider watching token on the chain served at
// rpc, polling every second and paying at 2 confirmations, so a test
// waits seconds, not minutes.
func erc20Block(rpc, token, xpub string) string {
	return "\t\terc20 {\n" +
		"\t\t\trpc " + rpc + "\n" +
		"\t\t\ttoken " + token + "\n" +
		"\t\t\txpub " + xpub + "\n" +
		"\t\t\tconfirmations 2\n" +
		"\t\t\tpoll 1s\n" +
		"\t\t}\n"
}

// providerSite is the demo shop behind an in-process Caddy whose checkout
// block offers one provider, given as its Caddyfile block.
type providerSite struct {
	base, admin string // host:port of the site and of Caddy's admin API
	shop        *demoshop.Shop
}

func startProviderSite(t *testing.T, block string) *providerSite {
	t.Helper()
	secret := sign.NewSecret()
	shop, err := demoshop.New(secret)
	if err != nil {
		t.Fatal(err)
	}
	shopSrv := httptest.NewServer(shop)
	t.Cleanup(shopSrv.Close)
	p := &providerSite{shop: shop,
		base:  fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		admin: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
	}
	cf := caddyfile(filepath.Join(t.TempDir(), "checkout.db"), p.admin, p.base, secret, shopSrv.URL+"/payments/webhook", strings.TrimPrefix(shopSrv.URL, "http://"))
	loadCaddy(t, strings.Replace(cf, "\t\tsandbox\n", block, 1))
	t.Cleanup(func() { _ = caddy.Stop() })
	return p
}

// stripeSite is a provider site whose stripe block points at fake, which
// sends its webhooks there.
func stripeSite(t *testing.T, fake *stripetest.Server) *providerSite {
	t.Helper()
	const whsec = "whsec_e2e_0123456789abcdef"
	t.Setenv("E2E_STRIPE_KEY", "sk_test_e2eSecretKeyValue")
	t.Setenv("E2E_STRIPE_WHSEC", whsec)
	site := startProviderSite(t, stripeBlock("{env.E2E_STRIPE_KEY}", "{env.E2E_STRIPE_WHSEC}", fake.URL))
	fake.SetWebhook("http://"+site.base+"/_checkout/webhook/stripe", whsec)
	return site
}

// komojuSite is a provider site whose komoju block points at fake, which
// sends its webhooks there.
func komojuSite(t *testing.T, fake *komojutest.Server) *providerSite {
	t.Helper()
	const hook = "e2e-komoju-webhook-token"
	t.Setenv("E2E_KOMOJU_KEY", komojutest.SecretKey)
	t.Setenv("E2E_KOMOJU_HOOK", hook)
	site := startProviderSite(t, komojuBlock("{env.E2E_KOMOJU_KEY}", "{env.E2E_KOMOJU_HOOK}", fake.URL))
	fake.SetWebhook("http://"+site.base+"/_checkout/webhook/komoju", hook)
	return site
}

// follow GETs loc and up to two redirects after it, as a browser does,
// and returns the last page.
func (p *providerSite) follow(t *testing.T, c *http.Client, loc string) string {
	t.Helper()
	var page string
	for i := 0; i < 3 && loc != ""; i++ {
		if strings.HasPrefix(loc, "/") {
			loc = "http://" + p.base + loc
		}
		r, err := c.Get(loc)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		page, loc = string(b), r.Header.Get("Location")
	}
	return page
}

// callbackTypes are the types of the callbacks the shop has received.
func (p *providerSite) callbackTypes() []string {
	var types []string
	for _, cb := range p.shop.Callbacks() {
		var b struct{ Type string }
		_ = json.Unmarshal([]byte(cb.Body), &b)
		types = append(types, b.Type)
	}
	return types
}

// adminRefund asks Caddy's admin API to refund an order of site "default"
// and returns the status and body of the answer.
func adminRefund(t *testing.T, admin, id string) (int, string) {
	t.Helper()
	r, err := http.Post("http://"+admin+"/checkout/orders/default/"+url.PathEscape(id)+"/refund", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, string(b)
}
