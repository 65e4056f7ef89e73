package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddy-checkout/checkout/internal/demoshop"
	"github.com/caddy-checkout/checkout/sign"
)

// loadCaddy adapts a Caddyfile and runs it in this process.
func loadCaddy(t *testing.T, cf string) {
	t.Helper()
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), nil)
	if err != nil {
		t.Fatalf("adapting: %v", err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("loading: %v", err)
	}
}

type inProcess struct {
	base, admin, secret string
	shop                *demoshop.Shop
	shopURL, storage    string
}

func startInProcess(t *testing.T) *inProcess {
	p := &inProcess{secret: sign.NewSecret()}
	var err error
	if p.shop, err = demoshop.New(p.secret); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.shop)
	t.Cleanup(srv.Close)
	p.shopURL = srv.URL
	p.base = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p.admin = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p.storage = filepath.Join(t.TempDir(), "checkout.db")
	loadCaddy(t, p.config(""))
	t.Cleanup(func() { _ = caddy.Stop() })
	return p
}

// callbackPassword is the secret in the test shop's callback URL.
const callbackPassword = "cb-s3cret-42"

func (p *inProcess) config(extra string) string {
	// The callback URL carries credentials, as shops' often do; the admin
	// API must not show them.
	hook := strings.Replace(p.shopURL, "http://", "http://hook:"+callbackPassword+"@", 1) + "/payments/webhook?token=" + callbackPassword
	cf := caddyfile(p.storage, p.admin, p.base, p.secret, hook, strings.TrimPrefix(p.shopURL, "http://"))
	return strings.Replace(cf, "\t\tsandbox\n", "\t\tsandbox\n"+extra, 1)
}

func adminGet(t *testing.T, admin, path string, v any) int {
	t.Helper()
	r, err := http.Get("http://" + admin + path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if v != nil && r.StatusCode == 200 {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v\n%s", path, err, b)
		}
	}
	return r.StatusCode
}

func TestCaddyEndToEndWithAdminAPI(t *testing.T) {
	p := startInProcess(t)
	c := noRedirectClient()
	sb, final := payWithSandbox(t, c, "http://"+p.base, "tee", "paid")
	if !strings.Contains(final, "<strong>paid</strong>: 25.00 USD") {
		t.Fatalf("customer did not land at the shop as paid:\n%s", final)
	}
	waitFor(t, 10*time.Second, "the signed callback", func() bool { return len(p.shop.Callbacks()) == 1 })

	var orders []struct {
		Site    string `json:"site"`
		OrderID string `json:"order_id"`
		Status  string `json:"status"`
	}
	if code := adminGet(t, p.admin, "/checkout/orders?status=paid", &orders); code != 200 || len(orders) != 1 || orders[0].Site != "default" {
		t.Fatalf("admin orders: %d %+v", code, orders)
	}
	var one struct {
		Status  string `json:"status"`
		History []struct {
			To    string                `json:"to"`
			Cause struct{ Kind string } `json:"cause"`
		} `json:"history"`
		Attempts []struct{ Ref string } `json:"attempts"`
	}
	if code := adminGet(t, p.admin, "/checkout/orders/default/"+orders[0].OrderID, &one); code != 200 || one.Status != "paid" ||
		len(one.History) != 2 || one.History[1].Cause.Kind != "webhook" || one.Attempts[0].Ref != sb[strings.LastIndex(sb, "/")+1:] {
		t.Fatalf("admin order: %d %+v", code, one)
	}
	if code := adminGet(t, p.admin, "/checkout/orders?status=bogus", nil); code != 400 {
		t.Fatalf("bad status filter: %d", code)
	}
	if code := adminGet(t, p.admin, "/checkout/orders/default/nope", nil); code != 404 {
		t.Fatalf("unknown order: %d", code)
	}
	var ds []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	// The shop answered; the delivery is marked delivered right after.
	waitFor(t, 5*time.Second, "the delivery to be marked delivered", func() bool {
		return adminGet(t, p.admin, "/checkout/deliveries?state=delivered", &ds) == 200 && len(ds) == 1
	})
	for _, path := range []string{"/checkout/deliveries", "/checkout/deliveries/" + ds[0].ID} {
		r, err := http.Get("http://" + p.admin + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if strings.Contains(string(b), callbackPassword) || !strings.Contains(string(b), "/payments/webhook?token=redacted") {
			t.Errorf("GET %s shows the callback URL's credentials, or no URL:\n%s", path, b)
		}
	}
	// Metrics on Caddy's admin endpoint. The notifier counts a try just
	// after saving it, so the count may trail the delivery's state.
	delivered := `caddy_checkout_callback_deliveries_total{result="delivered"} `
	waitFor(t, 5*time.Second, "the delivered callback to be counted", func() bool { return metricLine(t, p.admin, delivered) == delivered+"1" })
	mr, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(mr.Body)
	mr.Body.Close()
	for _, want := range []string{
		`caddy_checkout_orders_total{provider="",site="default",state="pending"} 1`,
		`caddy_checkout_orders_total{provider="sandbox",site="default",state="paid"} 1`,
		`caddy_checkout_webhooks_total{provider="sandbox",result="ok",site="default"} 1`,
		`caddy_checkout_callback_deliveries_total{result="delivered"} 1`,
		`caddy_checkout_outbox_pending 0`,
	} {
		if !strings.Contains(string(mb), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// An operator cancels an unpaid order; a second cancel is refused.
	r0, err := noRedirectClient().PostForm("http://"+p.base+"/buy", map[string][]string{"product": {"mug"}})
	if err != nil {
		t.Fatal(err)
	}
	r0.Body.Close()
	var pending []struct {
		OrderID string `json:"order_id"`
	}
	if adminGet(t, p.admin, "/checkout/orders?status=pending", &pending); len(pending) != 1 {
		t.Fatalf("pending orders: %+v", pending)
	}
	cancelURL := "http://" + p.admin + "/checkout/orders/default/" + pending[0].OrderID + "/cancel"
	for i, want := range []int{http.StatusOK, http.StatusConflict} {
		rc, err := http.Post(cancelURL, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		rc.Body.Close()
		if rc.StatusCode != want {
			t.Fatalf("cancel #%d: %d, want %d", i+1, rc.StatusCode, want)
		}
	}
	if adminGet(t, p.admin, "/checkout/orders/default/"+pending[0].OrderID, &one); one.Status != "cancelled" || one.History[len(one.History)-1].Cause.Kind != "admin" {
		t.Fatalf("after admin cancel: %+v", one)
	}
	r, err := http.Post("http://"+p.admin+"/checkout/deliveries/"+ds[0].ID+"/retry", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusConflict {
		t.Fatalf("retrying a delivered callback: %d, want 409", r.StatusCode)
	}
}

func TestReloadUnderTrafficDoesNotStall(t *testing.T) {
	p := startInProcess(t)
	base := "http://" + p.base
	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		requests atomic.Int64
		bad      atomic.Int64
		lastBad  atomic.Value
	)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := noRedirectClient()
			for n := 0; !stop.Load() && n < 100000; n++ {
				var r *http.Response
				var err error
				if i%2 == 0 {
					r, err = c.Get(base + "/")
				} else {
					r, err = c.PostForm(base+"/buy", map[string][]string{"product": {"mug"}})
				}
				if err != nil {
					// A connection closed by a reload is retried by real clients.
					continue
				}
				io.Copy(io.Discard, r.Body)
				r.Body.Close()
				requests.Add(1)
				if r.StatusCode >= 500 {
					bad.Add(1)
					lastBad.Store(r.Status)
				}
			}
		}(i)
	}
	// 20 reloads, each once a request has gone through since the one
	// before: traffic and reloads interleave however busy the machine is.
	for i := 0; i < 20; i++ {
		n := requests.Load()
		waitFor(t, 30*time.Second, "a request between reloads", func() bool { return requests.Load() > n })
		start := time.Now()
		loadCaddy(t, p.config(fmt.Sprintf("\t\texpire %dm\n", 30+i)))
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("reload %d took %s: the store lock stalls reloads", i, d)
		}
	}
	stop.Store(true)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d of %d requests failed with 5xx during reloads (last: %v)", bad.Load(), requests.Load(), lastBad.Load())
	}
	if requests.Load() < 20 {
		t.Fatalf("only %d requests went through during reloads", requests.Load())
	}
	// Orders from before the reloads are still there, and payment still works.
	_, final := payWithSandbox(t, noRedirectClient(), base, "mug", "paid")
	if !strings.Contains(final, "<strong>paid</strong>") {
		t.Fatalf("payment after reloads:\n%s", final)
	}
	var orders []json.RawMessage
	if adminGet(t, p.admin, "/checkout/orders?limit=10000", &orders); len(orders) < 2 {
		t.Fatalf("orders after reloads: %d", len(orders))
	}
}

// TestAdminOrdersArePaged: GET /checkout/orders gives pages of ?limit=
// with the next page in a Link header, every order once; `caddy checkout
// orders` follows the links to the end.
func TestAdminOrdersArePaged(t *testing.T) {
	p := startInProcess(t)
	c := noRedirectClient()
	for range 7 {
		r, _ := send(t, c, http.MethodPost, "http://"+p.base+"/buy", map[string][]string{"product": {"mug"}})
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("buy: %d", r.StatusCode)
		}
	}
	seen := map[string]bool{}
	next := "/checkout/orders?limit=3"
	pages := 0
	for next != "" {
		r, body := send(t, c, http.MethodGet, "http://"+p.admin+next, nil)
		var list []struct {
			ID string `json:"order_id"`
		}
		if err := json.Unmarshal([]byte(body), &list); err != nil || r.StatusCode != 200 {
			t.Fatalf("page %d: %d %v", pages+1, r.StatusCode, err)
		}
		for _, o := range list {
			if seen[o.ID] {
				t.Fatalf("order %s on two pages", o.ID)
			}
			seen[o.ID] = true
		}
		pages++
		next = ""
		if l := r.Header.Get("Link"); l != "" {
			target, _, _ := strings.Cut(l, ">")
			next = strings.TrimPrefix(target, "<")
			if len(list) != 3 || !strings.Contains(l, `rel="next"`) {
				t.Fatalf("page %d: %d orders, Link %q", pages, len(list), l)
			}
		}
		if pages > 10 {
			t.Fatal("pages never end")
		}
	}
	if pages != 3 || len(seen) != 7 {
		t.Fatalf("%d pages, %d orders; want 3 pages, 7 orders", pages, len(seen))
	}
	nul := base64.RawURLEncoding.EncodeToString([]byte(`{"u":"2026-01-01T00:00:00Z","s":"default\u0000x","i":"o1"}`))
	for _, cursor := range []string{"bm9wZQ", nul} {
		if r, _ := send(t, c, http.MethodGet, "http://"+p.admin+"/checkout/orders?cursor="+cursor, nil); r.StatusCode != http.StatusBadRequest {
			t.Fatalf("a made-up cursor %s: %d, want 400", cursor, r.StatusCode)
		}
	}

	// The command pages through them all, following the links.
	cmd := exec.Command(os.Args[0], "checkout", "orders", "--admin", p.admin, "--page", "2")
	cmd.Env = append(os.Environ(), runAsCaddy+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("caddy checkout orders: %v\n%s", err, out)
	}
	for id := range seen {
		if !strings.Contains(string(out), id) {
			t.Fatalf("caddy checkout orders lacks %s:\n%s", id, out)
		}
	}
}
