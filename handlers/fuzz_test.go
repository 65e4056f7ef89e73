package handlers_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/handlers/handlerstest"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/sandbox"
	"github.com/caddy-checkout/checkout/sign"
)

// fuzzSecret is the secret of fuzzSite's sites.
var fuzzSecret = sign.NewSecret()

// fuzzSite is a site with every way in, the sandbox and a price, over a
// bolt store of the fuzz run.
func fuzzSite(f *testing.F) *handlers.Site {
	secret, err := sign.ParseSecret(fuzzSecret)
	if err != nil {
		f.Fatal(err)
	}
	site, _ := handlerstest.BenchSite(f, func(c *handlers.Config) {
		c.Secret = secret
		c.Intake = handlers.Intakes{Headers: true, SignedLink: true, API: true}
		c.Providers = []provider.Provider{&sandbox.Sandbox{}}
		c.Prices = []handlers.Price{{Path: "/reports/*", Amount: "25", Currency: "EUR"}}
	})
	return site
}

// FuzzHeaderIntake: whatever X-Checkout-* headers the upstream sends, the
// answer is an order taken (303), refused (422) or already ended (200),
// never a server error, and no X-Checkout-* header reaches the client.
func FuzzHeaderIntake(f *testing.F) {
	site := fuzzSite(f)
	f.Add("1234", "75.00", "USD", "A%20mug", "", "30m")
	f.Add("x", "1.234", "JPY", "%ZZ", "sandbox", "1s")
	f.Add("", "", "", "", "", "")
	f.Add("a b", "-1", "0xBTC", "\n", "nosuch", "9999h")
	f.Fuzz(func(t *testing.T, id, amount, currency, desc, prov, expires string) {
		next := handlers.NextHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			for k, v := range map[string]string{"X-Checkout-Order": id, "X-Checkout-Amount": amount, "X-Checkout-Currency": currency,
				"X-Checkout-Description": desc, "X-Checkout-Provider": prov, "X-Checkout-Expires": expires} {
				h[k] = []string{v}
			}
			_, _ = w.Write([]byte("the shop's page"))
		}))
		rec := httptest.NewRecorder()
		_ = site.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/buy", nil), next)
		if c := rec.Code; c != http.StatusSeeOther && c != http.StatusUnprocessableEntity && c != http.StatusOK {
			t.Fatalf("intake answered %d", c)
		}
		for k := range rec.Header() {
			if strings.HasPrefix(strings.ToLower(k), "x-checkout-") {
				t.Fatalf("%s reached the client", k)
			}
		}
	})
}

// FuzzAPICreate: any body posted to the server API is an order (201/200)
// or a client error with a JSON message, never a server error.
func FuzzAPICreate(f *testing.F) {
	site := fuzzSite(f)
	f.Add(`{"order_id":"1","amount":"9.99","currency":"USD"}`, "")
	f.Add(`{"order_id":"1","amount":9.99,"currency":"USD","expires_in":"30m","metadata":{"a":"b"}}`, `"k1"`)
	f.Add(`{"order_id":"1","amount":"1e3","currency":"USD","bogus":1}`, "k")
	f.Add(`[]`, "")
	f.Fuzz(func(t *testing.T, body, idem string) {
		req := httptest.NewRequest(http.MethodPost, "/_checkout/api/orders", strings.NewReader(body))
		req.RemoteAddr = "127.0.0.1:4000"
		req.Header.Set("Authorization", "Bearer "+fuzzSecret)
		if idem != "" {
			req.Header.Set("Idempotency-Key", idem)
		}
		rec := httptest.NewRecorder()
		_ = site.ServeHTTP(rec, req, handlers.NextHandler(http.NotFoundHandler()))
		switch rec.Code {
		case http.StatusCreated, http.StatusOK, http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusConflict, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("API answered %d: %s", rec.Code, rec.Body)
		}
	})
}

// FuzzPricedPath: no spelling of a path under the priced prefix reaches
// the upstream without a receipt, and the answers are those of a priced
// path (303, 402, 414, 400) or the upstream's.
func FuzzPricedPath(f *testing.F) {
	site := fuzzSite(f)
	for _, s := range []string{"/reports/q3.pdf", "/REPORTS/x", "/a/..%2Freports/x", "/reports%5Cx", "/reports;a/x", "/reports./x", "/x"} {
		f.Add(s, "*/*")
	}
	f.Fuzz(func(t *testing.T, target, accept string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || !strings.HasPrefix(target, "/") || strings.HasPrefix(target, "//") || strings.HasPrefix(target, "/_checkout") {
			return
		}
		reached := false
		next := handlers.NextHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { reached = true }))
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL, req.RequestURI = u, target
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		_ = site.ServeHTTP(rec, req, next)
		if reached {
			// The decoded, cleaned path must not be under /reports, in
			// any case.
			if p := strings.ToLower(path.Clean(strings.ReplaceAll(u.Path, "\\", "/"))); p == "/reports" || strings.HasPrefix(p, "/reports/") {
				t.Fatalf("%s reached the upstream unpaid", target)
			}
			return
		}
		switch rec.Code {
		case http.StatusSeeOther, http.StatusPaymentRequired, http.StatusRequestURITooLong, http.StatusBadRequest:
		default:
			t.Fatalf("%s answered %d", target, rec.Code)
		}
	})
}

// FuzzReceipt: no made-up receipt opens a priced path, whether sent as a
// bearer token or as a cookie.
func FuzzReceipt(f *testing.F) {
	site := fuzzSite(f)
	f.Add("paywall-aaaaaaaaaaaaaaaaaaaaaaaaaa.9999999999.AAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("paywall-x")
	f.Add("paywall-..")
	f.Add("")
	f.Fuzz(func(t *testing.T, receipt string) {
		reached := false
		next := handlers.NextHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { reached = true }))
		req := httptest.NewRequest(http.MethodGet, "/reports/q3.pdf", nil)
		req.Header.Set("Authorization", "Bearer "+receipt)
		req.AddCookie(&http.Cookie{Name: "checkout_receipt_x", Value: "v"})
		req.Header.Add("Cookie", "checkout_receipt_"+strings.Repeat("0", 12)+"="+url.QueryEscape(receipt))
		rec := httptest.NewRecorder()
		_ = site.ServeHTTP(rec, req, next)
		if reached || rec.Code == http.StatusOK {
			t.Fatalf("receipt %q opened the path (%d)", receipt, rec.Code)
		}
	})
}
