package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-checkout/checkout/internal/pgtest"
	"github.com/caddy-checkout/checkout/sign"
)

// paywallSite is a site with no shop: Caddy's file_server behind
// checkout, with two prices, from a Caddyfile.
func paywallCaddyfile(global, admin, listen, root, secret, callback string) string {
	return fmt.Sprintf(`{
	admin %s
	checkout {
		%s
	}
}

http://%s {
	root * %s
	checkout {
		secret %s
		callback %s
		price /downloads/ebook.pdf 9.99 USD "The e-book"
		price /reports/* 25 EUR "All reports"
		price /docs/index.html 2 USD "The manual"
		receipt_ttl 30d
		sandbox
	}
	file_server
}
`, admin, global, listen, root, secret, callback)
}

// paywallFiles writes what the site sells and returns its root.
func paywallFiles(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for name, body := range map[string]string{
		"downloads/ebook.pdf": "%PDF-1.7 the e-book",
		"downloads/free.txt":  "free for all",
		"reports/q3.pdf":      "%PDF-1.7 Q3 report",
		"reports/2026/q1.pdf": "%PDF-1.7 Q1 2026 report",
		"reports/2026/q2.pdf": "%PDF-1.7 Q2 2026 report",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

// visit sends a GET with headers given as pairs.
func visit(t *testing.T, c *http.Client, u string, hdr ...string) (*http.Response, string) {
	t.Helper()
	return send(t, c, http.MethodGet, u, nil, hdr...)
}

// payAtPayURL opens pay_url as a person, chooses the sandbox and pays;
// it returns the answer to the return from the sandbox.
func payAtPayURL(t *testing.T, c *http.Client, base, payURL string) (*http.Response, string) {
	t.Helper()
	abs := func(u string) string {
		if strings.HasPrefix(u, "/") {
			return "http://" + base + u
		}
		return u
	}
	r, page := visit(t, c, abs(payURL), "Accept", browserAccept)
	m := csrfRE.FindStringSubmatch(page)
	if r.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("pay_url: %d\n%s", r.StatusCode, page)
	}
	post := func(u string, form url.Values) *http.Response {
		r, _ := send(t, c, http.MethodPost, abs(u), form, "Origin", "http://"+base)
		return r
	}
	r = post(payURL, url.Values{"csrf": {m[1]}, "provider": {"sandbox"}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("choosing the sandbox: %d", r.StatusCode)
	}
	sb := r.Header.Get("Location")
	r, page = visit(t, c, abs(sb), "Accept", browserAccept)
	if m = csrfRE.FindStringSubmatch(page); m == nil {
		t.Fatalf("sandbox page: %d", r.StatusCode)
	}
	r = post(sb, url.Values{"csrf": {m[1]}, "outcome": {"paid"}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("paying in the sandbox: %d", r.StatusCode)
	}
	return visit(t, c, abs(r.Header.Get("Location")), "Accept", browserAccept)
}

type price402 struct {
	Amount, Currency, Description, Path string
	PayURL                              string `json:"pay_url"`
	ReceiptURL                          string `json:"receipt_url"`
	Refused                             string `json:"receipt_refused"`
}

type receiptJSON struct {
	Status    string    `json:"status"`
	Receipt   string    `json:"receipt"`
	ExpiresAt time.Time `json:"expires_at"`
	OrderID   string    `json:"order_id"`
}

func jsonOf[T any](t *testing.T, r *http.Response, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("%d %q: %v", r.StatusCode, body, err)
	}
	return v
}

// TestPaywallThroughCaddy sells files served by Caddy's own file_server,
// configured from a Caddyfile, to a browser and to a program, and refunds
// one of them through the admin API.
func TestPaywallThroughCaddy(t *testing.T) {
	secret := sign.NewSecret()
	cb := newShopRecorder(t, secret)
	hook := httptest.NewServer(cb)
	defer hook.Close()
	base := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	loadCaddy(t, paywallCaddyfile("storage bolt "+filepath.Join(t.TempDir(), "checkout.db"), admin, base, paywallFiles(t), secret, hook.URL))
	t.Cleanup(func() { _ = caddy.Stop() })
	site := "http://" + base

	// A browser: sent to pay, back to the file with a cookie.
	browser := noRedirectClient()
	r, _ := visit(t, browser, site+"/downloads/ebook.pdf", "Accept", browserAccept)
	if r.StatusCode != http.StatusSeeOther || !strings.Contains(r.Header.Get("Location"), "/_checkout/buy/") {
		t.Fatalf("browser without a receipt: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	back, _ := payAtPayURL(t, browser, base, r.Header.Get("Location"))
	if back.StatusCode != http.StatusSeeOther || back.Header.Get("Location") != site+"/downloads/ebook.pdf" {
		t.Fatalf("after paying: %d %q, want 303 to the file", back.StatusCode, back.Header.Get("Location"))
	}
	var sc string
	for _, v := range back.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, "checkout_receipt_") {
			sc = v
		}
	}
	if !strings.Contains(sc, "=paywall-") || !strings.Contains(sc, "Path=/downloads/ebook.pdf") ||
		!strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Lax") {
		t.Fatalf("receipt cookie: %q", sc)
	}
	if r, body := visit(t, browser, site+"/downloads/ebook.pdf", "Accept", browserAccept); r.StatusCode != 200 || body != "%PDF-1.7 the e-book" {
		t.Fatalf("browser with the receipt: %d %q", r.StatusCode, body)
	}
	if r, body := visit(t, browser, site+"/downloads/free.txt"); r.StatusCode != 200 || body != "free for all" {
		t.Fatalf("an unpriced file: %d %q", r.StatusCode, body)
	}
	// file_server answers /docs/ with the priced index file: priced too,
	// in any case.
	for _, p := range []string{"/docs/", "/docs", "/DOCS/index.html", "/docs/index.html"} {
		if r, body := visit(t, noRedirectClient(), site+p); r.StatusCode != http.StatusPaymentRequired || strings.Contains(body, "manual</h1>") {
			t.Fatalf("%s unpaid: %d %q", p, r.StatusCode, body)
		}
	}
	if r, _ := visit(t, browser, site+"/reports/q3.pdf", "Accept", browserAccept); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("another price's file with the e-book's receipt: %d, want 303 to pay", r.StatusCode)
	}

	// A program: 402, a person pays, the receipt as a bearer token opens
	// the whole prefix.
	prog := noRedirectClient()
	r, body := visit(t, prog, site+"/reports/2026/q1.pdf")
	if r.StatusCode != http.StatusPaymentRequired || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("program without a receipt: %d %q", r.StatusCode, r.Header.Get("Cache-Control"))
	}
	pr := jsonOf[price402](t, r, body)
	if pr.Amount != "25.00" || pr.Currency != "EUR" || pr.Description != "All reports" || pr.Path != "/reports/*" || !strings.HasPrefix(pr.PayURL, site+"/_checkout/buy/") {
		t.Fatalf("402 = %+v", pr)
	}
	if r, _ := visit(t, prog, pr.ReceiptURL); r.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("receipt_url before paying: %d", r.StatusCode)
	}
	paid, page := payAtPayURL(t, noRedirectClient(), base, pr.PayURL)
	r, body = visit(t, prog, pr.ReceiptURL)
	rc := jsonOf[receiptJSON](t, r, body)
	if r.StatusCode != 200 || rc.Receipt == "" || paid.StatusCode != 200 || !strings.Contains(page, rc.Receipt) {
		t.Fatalf("receipt_url once paid: %d %+v; paid page %d shows it: %v", r.StatusCode, rc, paid.StatusCode, strings.Contains(page, rc.Receipt))
	}
	if d := time.Until(rc.ExpiresAt); d < 30*24*time.Hour-time.Minute || d > 30*24*time.Hour {
		t.Fatalf("receipt expires in %s, want 30 days", d)
	}
	for p, want := range map[string]string{"/reports/q3.pdf": "%PDF-1.7 Q3 report", "/reports/2026/q2.pdf": "%PDF-1.7 Q2 2026 report"} {
		if r, body := visit(t, prog, site+p, "Authorization", "Bearer "+rc.Receipt); r.StatusCode != 200 || body != want {
			t.Fatalf("%s with the bearer receipt: %d %q", p, r.StatusCode, body)
		}
	}
	for _, bad := range []struct{ path, receipt string }{
		{"/downloads/ebook.pdf", rc.Receipt},                       // another price's path
		{"/reports/q3.pdf", rc.Receipt[:len(rc.Receipt)-2] + "AA"}, // tampered
		{"/reports/q3.pdf", "paywall-" + strings.Repeat("a", 26) + ".9999999999.AAAA"},
	} {
		if r, body := visit(t, prog, site+bad.path, "Authorization", "Bearer "+bad.receipt); r.StatusCode != http.StatusPaymentRequired || strings.Contains(body, "%PDF") {
			t.Fatalf("%s with a bad receipt: %d %q", bad.path, r.StatusCode, body)
		}
	}

	// The admin API lists both orders; a refund revokes the receipt.
	var orders []struct {
		ID       string            `json:"order_id"`
		Status   string            `json:"status"`
		Metadata map[string]string `json:"metadata"`
	}
	if code := adminGet(t, admin, "/checkout/orders", &orders); code != 200 || len(orders) != 2 {
		t.Fatalf("admin orders: %d %+v", code, orders)
	}
	_, metrics := visit(t, noRedirectClient(), "http://"+admin+"/metrics")
	for _, want := range []string{
		`caddy_checkout_orders_total{provider="",site="default",state="pending"} 2`,
		`caddy_checkout_orders_total{provider="sandbox",site="default",state="paid"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if code, body := adminRefund(t, admin, rc.OrderID); code != 200 {
		t.Fatalf("refund: %d %s", code, body)
	}
	r, body = visit(t, prog, site+"/reports/q3.pdf", "Authorization", "Bearer "+rc.Receipt)
	if r.StatusCode != http.StatusPaymentRequired || !strings.Contains(jsonOf[price402](t, r, body).Refused, "refunded") {
		t.Fatalf("refunded receipt: %d %s", r.StatusCode, body)
	}
	if r, _ := visit(t, prog, pr.ReceiptURL); r.StatusCode != http.StatusGone {
		t.Fatalf("receipt_url of a refunded purchase: %d, want 410", r.StatusCode)
	}

	// The shop (here a recorder) was told, with the paths in the metadata.
	waitFor(t, 10*time.Second, "three callbacks", func() bool { _, ok := cb.snapshot(); return len(ok) >= 3 })
	cb.mu.Lock()
	bodies := append([]string(nil), cb.bodies...)
	cb.mu.Unlock()
	var seen []string
	for _, b := range bodies {
		var ev struct {
			Type string
			Data struct{ Metadata map[string]string }
		}
		_ = json.Unmarshal([]byte(b), &ev)
		seen = append(seen, ev.Type+" "+ev.Data.Metadata["path"])
	}
	// Two orders' callbacks may cross; one order's keep their order.
	slices.Sort(seen)
	want := "order.paid /downloads/ebook.pdf,order.paid /reports/2026/q1.pdf,order.refunded /reports/2026/q1.pdf"
	if strings.Join(seen, ",") != want {
		t.Fatalf("callbacks %v, want %s", seen, want)
	}
}

// TestPaywallFailsClosedWhenPostgresIsDown: with the store unreachable a
// valid receipt opens nothing (503) once the second it is believed for has
// passed, and it works again when the store is back, without a restart.
func TestPaywallFailsClosedWhenPostgresIsDown(t *testing.T) {
	pg := pgtest.Start(t)
	dsn := pg.NewDatabase(t)
	secret := sign.NewSecret()
	root := paywallFiles(t)
	in := startInstanceOf(t, dsn, func(admin, listen string) string {
		return paywallCaddyfile("storage postgres {env.CHECKOUT_DATABASE_URL}", admin, listen, root, secret, "http://127.0.0.1:9/none")
	})
	site := "http://" + in.base
	prog := noRedirectClient()
	r, body := visit(t, prog, site+"/downloads/ebook.pdf")
	pr := jsonOf[price402](t, r, body)
	payAtPayURL(t, noRedirectClient(), in.base, pr.PayURL)
	r, body = visit(t, prog, pr.ReceiptURL)
	rc := jsonOf[receiptJSON](t, r, body)
	if r, body := visit(t, prog, site+"/downloads/ebook.pdf", "Authorization", "Bearer "+rc.Receipt); r.StatusCode != 200 || body != "%PDF-1.7 the e-book" {
		t.Fatalf("with the receipt: %d %q", r.StatusCode, body)
	}

	pg.Stop(t)
	// A receipt found valid is believed for a second without the store.
	waitFor(t, 5*time.Second, "the receipt to stop opening the file", func() bool {
		r, _ := visit(t, prog, site+"/downloads/ebook.pdf", "Authorization", "Bearer "+rc.Receipt)
		return r.StatusCode != 200
	})
	for _, accept := range []string{"*/*", browserAccept} {
		r, body := visit(t, prog, site+"/downloads/ebook.pdf", "Authorization", "Bearer "+rc.Receipt, "Accept", accept)
		if r.StatusCode != http.StatusServiceUnavailable || strings.Contains(body, "%PDF") {
			t.Fatalf("store down, Accept %s: %d %q; want 503 and no file", accept, r.StatusCode, body)
		}
	}
	// Without a receipt nothing needs the store: still 402.
	if r, _ := visit(t, prog, site+"/downloads/ebook.pdf"); r.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("no receipt, store down: %d, want 402", r.StatusCode)
	}
	pg.Restart(t)
	waitFor(t, 15*time.Second, "the receipt to open the file again", func() bool {
		r, body := visit(t, prog, site+"/downloads/ebook.pdf", "Authorization", "Bearer "+rc.Receipt)
		return r.StatusCode == 200 && body == "%PDF-1.7 the e-book"
	})
}
