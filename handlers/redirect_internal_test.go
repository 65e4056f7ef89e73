package handlers

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// offSite are URLs a browser would resolve to another origin (or that are
// not plain paths); none may be accepted as success_url or cancel_url.
var offSite = []string{
	"//evil.example", "///evil.example", "////evil.example", "/\\evil.example", "\\\\evil.example", "/\\/evil.example",
	"https://evil.example", "http://evil.example/x", "https:evil.example", "http:/evil.example", "javascript:alert(1)",
	"JavaScript:alert(1)", "data:text/html,x", "//evil.example/%2F..", "/%2F%2Fevil.example", "/%2f%2fevil.example",
	"/%5Cevil.example", "/%5cevil.example", "\t//evil.example", "\n//evil.example", "/\t/evil.example", "/\n/evil.example",
	"/\r/evil.example", " //evil.example", "evil.example", "evil.example/path", "?next=//evil", "#//evil",
	"//shop@evil.example", "https://shop.example@evil.example", "//evil.example@shop.example", "//evil%2Eexample",
	"//xn--80ak6aa92e.com", "//ｅｖｉｌ.example", "/\x00/evil", "/\x7f/evil", "", ".", "..", "../evil", "./evil",
	"//[::1]/", "//127.0.0.1/", "//2130706433/", "//0x7f.1/", "ftp://evil.example", "mailto:x@evil.example",
	"//evil.example:443", "\\/evil.example", "/\\\\evil.example", "%2F%2Fevil.example", "/ /evil.example/..",
}

func TestLocalPathRefusesOffSite(t *testing.T) {
	if len(offSite) < 50 {
		t.Fatalf("only %d payloads", len(offSite))
	}
	for _, p := range offSite {
		if _, err := localPath(p); err == nil {
			// A path that is accepted must resolve to this origin in a browser.
			base, _ := url.Parse("https://shop.example/")
			ref, perr := url.Parse(p)
			if perr == nil {
				if u := base.ResolveReference(ref); u.Host == "shop.example" && strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//") {
					continue // a plain local path with odd characters is still local
				}
			}
			t.Errorf("localPath(%q) accepted an off-site or non-path URL", p)
		}
	}
}

func TestLocalPathAcceptsShopPaths(t *testing.T) {
	for _, p := range []string{"/", "/cart", "/orders/42/thanks", "/orders/42/thanks?x=1", "/a%20b", "/orders/A%2F1/thanks"} {
		if _, err := localPath(p); err != nil {
			t.Errorf("localPath(%q): %v", p, err)
		}
	}
}

func TestFillOrderIDCannotEscapeThePath(t *testing.T) {
	for _, id := range []string{"../../evil", "/evil", "//evil.example", "a?b#c", "a b"} {
		got := fillOrderID("/orders/{order_id}/thanks", id)
		if _, err := localPath(got); err != nil || !strings.HasPrefix(got, "/orders/") || strings.Count(got, "/") != 3 {
			t.Errorf("order id %q made %q", id, got)
		}
	}
}

func FuzzStripCheckoutHeaders(f *testing.F) {
	f.Add("X-Checkout-Status", "keep-alive, X-Checkout-Status")
	f.Add("x_checkout_order", "x_Checkout-Order")
	f.Add("X-Checkout", "close")
	f.Add("X.Checkout.Status", "x.checkout.status")
	f.Fuzz(func(t *testing.T, name, conn string) {
		h := http.Header{}
		h[name] = []string{"paid"}
		h["Connection"] = []string{conn}
		h["X-Other"] = []string{"kept"}
		stripCheckoutFields(h)
		for k := range h {
			norm := strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(k))
			if strings.HasPrefix(norm, "x-checkout-") {
				t.Fatalf("header %q survived", k)
			}
		}
		for _, line := range h["Connection"] {
			for _, tok := range strings.Split(line, ",") {
				norm := strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(strings.TrimSpace(tok)))
				if strings.HasPrefix(norm, "x-checkout-") {
					t.Fatalf("Connection still names %q", tok)
				}
			}
		}
		if h.Get("X-Other") != "kept" && !isCheckoutHeader("X-Other") {
			t.Fatal("an unrelated header was removed")
		}
	})
}

func TestHeaderSafe(t *testing.T) {
	for in, want := range map[string]string{
		"txn_123":          "txn_123",
		"a\r\nX-Evil: 1":   "a%0D%0AX-Evil%3A+1",
		"café":             "caf%C3%A9",
		"":                 "",
		"tab\there":        "tab%09here",
		"plain ascii, ok;": "plain ascii, ok;",
	} {
		if got := headerSafe(in); got != want {
			t.Errorf("headerSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTakeQueryParamKeepsTheShopsQuery(t *testing.T) {
	for raw, want := range map[string][2]string{
		"b=2&checkout_token=abc.def&a=1%2B1&a=x y": {"b=2&a=1%2B1&a=x y", "abc.def"},
		"checkout_token=t1&checkout_token=t2":      {"", "t1"},
		"z=1&checkout%5Ftoken=t&y":                 {"z=1&y", "t"},
		"a=1":                                      {"a=1", ""},
	} {
		u := &url.URL{Path: "/orders/1/thanks", RawQuery: raw}
		if got := takeQueryParam(u, returnTokenParam); got != want[1] || u.RawQuery != want[0] {
			t.Errorf("%q: token %q query %q, want %q %q", raw, got, u.RawQuery, want[1], want[0])
		}
	}
}

func TestRedactURLNeverShowsCredentials(t *testing.T) {
	for raw, want := range map[string]string{
		"https://shop:Secretpass@shop.example/hook?token=Secrettoken#x": "https://shop.example/hook",
		"127.0.0.1:9000/hook": "127.0.0.1:9000/hook",
		"shop:Secretpass@127.0.0.1:9000/hook?token=Secrettoken":         "…@127.0.0.1:9000/hook",
		"http:/shop:Secretpass@127.0.0.1:9000/hook":                     "…@127.0.0.1:9000/hook",
		"https:///shop:Secretpass@127.0.0.1/hook":                       "…@127.0.0.1/hook",
		"127.0.0.1:9000/hook?notify=ops@shop.example&token=Secrettoken": "(not shown: it may hold credentials)",
		"shop:Secret?pass@127.0.0.1/hook":                               "(not shown: it may hold credentials)",
	} {
		got := redactURL(raw)
		if got != want || strings.Contains(got, "Secret") {
			t.Errorf("redactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}
