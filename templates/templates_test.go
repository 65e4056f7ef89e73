package templates_test

import (
	"encoding/json"
	"html/template"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/templates"
)

var pageNames = []string{"pay", "provider", "paid", "failed", "cancelled", "expired", "already_paid", "processing", "error"}

// now is the fixed clock of these tests.
var now = time.Date(2026, 11, 21, 6, 30, 0, 0, time.UTC)

func samplePage(name string) templates.Page {
	return templates.Page{
		Name:        name,
		Base:        "/_checkout",
		Ref:         "r_8f3k2",
		OrderID:     "1234567",
		Description: "The e-book <2nd edition>",
		Amount:      money.MustParse("1234.50", "USD"),
		Status:      "pending",
		ExpiresAt:   now.Add(30 * time.Minute),
		Providers:   []templates.Choice{{Name: "sandbox", Label: "Sandbox"}, {Name: "stripe", Label: "Card"}},
		CSRF:        "csrf-token-1",
		Title:       "A provider's page",
		Action:      "/_checkout/pay/r_8f3k2",
		ContinueURL: "/orders/1234567",
		RetryURL:    "/_checkout/pay/r_8f3k2",
		StatusURL:   "/_checkout/status/r_8f3k2",
		EventsURL:   "/_checkout/events/r_8f3k2",
	}
}

func newSet(t *testing.T, dir string) *templates.Set {
	t.Helper()
	s, err := templates.New(dir, nil)
	if err != nil {
		t.Fatalf("New(%q): %v", dir, err)
	}
	s.Now = func() time.Time { return now }
	return s
}

// render renders p for a request preferring lang and returns the response.
func render(t *testing.T, s *templates.Set, lang string, status int, p templates.Page) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("GET", "/_checkout/pay/r_8f3k2", nil)
	r.Header.Set("Accept-Language", lang)
	w := httptest.NewRecorder()
	if err := s.Render(w, r, status, p); err != nil {
		t.Fatalf("Render %s (%s): %v", p.Name, lang, err)
	}
	return w
}

func TestEveryPageRendersInEveryLocale(t *testing.T) {
	s := newSet(t, "")
	amounts := []money.Amount{
		money.MustParse("1234.50", "USD"),
		money.MustParse("1200", "JPY"),
		money.MustParse("75", "0xBTC"),
	}
	for _, name := range pageNames {
		for _, lang := range []string{"en", "ja"} {
			for _, a := range amounts {
				t.Run(name+"/"+lang+"/"+a.Currency(), func(t *testing.T) {
					p := samplePage(name)
					p.Amount = a
					w := render(t, s, lang, http.StatusOK, p)
					body := w.Body.String()
					if w.Code != http.StatusOK {
						t.Errorf("status %d", w.Code)
					}
					if want := templates.FormatAmount(a, lang); !strings.Contains(body, want) {
						t.Errorf("page does not show the amount %q:\n%s", want, body)
					}
					if !strings.Contains(body, `<html lang="`+lang+`">`) {
						t.Errorf("no lang=%q on <html>", lang)
					}
					if !strings.Contains(body, "<h1>") || !strings.Contains(body, "<title>") {
						t.Errorf("page has no <h1> or <title>")
					}
					if !strings.Contains(body, "1234567") {
						t.Errorf("order id missing")
					}
					if strings.Contains(body, "<2nd") {
						t.Errorf("description not escaped")
					}
					checkNoInlineCode(t, name+" rendered", body)
				})
			}
		}
	}
}

func TestHeaders(t *testing.T) {
	s := newSet(t, "")
	p := samplePage("pay")
	p.FormOrigins = []string{
		"https://checkout.stripe.com",
		"https://KOMOJU.com/",
		"https://evil.example; script-src *",   // would widen the policy: left out
		"javascript:alert(1)",                  // not an origin
		"https://x.example/path",               // not a bare origin
		"https://a.example, https://b.example", // two values in one
	}
	w := render(t, s, "en", http.StatusOK, p)
	want := map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Cache-Control":           "no-store",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
		"Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self' https://checkout.stripe.com https://komoju.com; frame-ancestors 'none'; base-uri 'none'",
	}
	for k, v := range want {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if csp := w.Header().Get("Content-Security-Policy"); strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP allows inline code: %s", csp)
	}
	for _, name := range pageNames {
		w := render(t, s, "ja", 0, samplePage(name))
		csp := w.Header().Get("Content-Security-Policy")
		if csp == "" || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP %q", name, csp)
		}
	}
}

func TestStatusCode(t *testing.T) {
	s := newSet(t, "")
	p := samplePage("error")
	p.HTTPStatus = http.StatusNotFound
	if w := render(t, s, "en", 0, p); w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "Error 404") {
		t.Errorf("status 0 with HTTPStatus 404: got %d", w.Code)
	}
	p.HTTPStatus = 0
	if w := render(t, s, "en", http.StatusGone, p); w.Code != http.StatusGone || !strings.Contains(w.Body.String(), "Error 410") {
		t.Errorf("status 410: got %d, body shows HTTPStatus from the argument: %v", w.Code, strings.Contains(w.Body.String(), "410"))
	}
	if w := render(t, s, "en", 0, samplePage("paid")); w.Code != http.StatusOK {
		t.Errorf("status 0 without HTTPStatus: got %d, want 200", w.Code)
	}
}

var (
	inlineScript = regexp.MustCompile(`(?is)<script\b[^>]*>\s*[^<\s]`)
	scriptNoSrc  = regexp.MustCompile(`(?is)<script\b[^>]*>`)
	styleAttr    = regexp.MustCompile(`(?i)\sstyle\s*=`)
	eventAttr    = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	styleElement = regexp.MustCompile(`(?i)<style\b`)
	jsURL        = regexp.MustCompile(`(?i)javascript:`)
	thirdParty   = regexp.MustCompile(`(?i)(src|href|action)\s*=\s*"(https?:)?//`)
)

func checkNoInlineCode(t *testing.T, name, s string) {
	t.Helper()
	if inlineScript.MatchString(s) {
		t.Errorf("%s: <script> with inline content", name)
	}
	for _, tag := range scriptNoSrc.FindAllString(s, -1) {
		if !strings.Contains(tag, "src=") {
			t.Errorf("%s: %s without src", name, tag)
		}
	}
	for what, re := range map[string]*regexp.Regexp{
		"style attribute": styleAttr, "event handler attribute": eventAttr,
		"<style> element": styleElement, "javascript: URL": jsURL, "third-party asset": thirdParty,
	} {
		if m := re.FindString(s); m != "" {
			t.Errorf("%s: %s: %q", name, what, m)
		}
	}
}

func TestTemplateFilesHaveNoInlineCode(t *testing.T) {
	entries, err := os.ReadDir("files")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".html" {
			continue
		}
		b, err := os.ReadFile(filepath.Join("files", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		checkNoInlineCode(t, e.Name(), string(b))
		n++
	}
	if n != len(pageNames)+1 {
		t.Errorf("scanned %d html files, want %d pages and the layout", n, len(pageNames)+1)
	}
	// The scanner itself catches what it is meant to.
	for _, bad := range []string{`<script>alert(1)</script>`, `<p style="color:red">`, `<button onclick="x()">`, `<style>p{}</style>`, `<a href="javascript:x()">`, `<script src="https://cdn.example/x.js"></script>`} {
		inner := &testing.T{}
		checkNoInlineCode(inner, "bad", bad)
		if !inner.Failed() {
			t.Errorf("scanner misses %s", bad)
		}
	}
}

func TestMessagesComplete(t *testing.T) {
	read := func(name string) map[string]string {
		b, err := os.ReadFile(filepath.Join("files", name))
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return m
	}
	en, ja := read("messages.en.json"), read("messages.ja.json")
	verbs := regexp.MustCompile(`%[-+# 0-9.\[\]]*[a-zA-Z]`)
	for k, v := range en {
		jv, ok := ja[k]
		if !ok {
			t.Errorf("ja lacks %q", k)
			continue
		}
		if strings.TrimSpace(v) == "" || strings.TrimSpace(jv) == "" {
			t.Errorf("%q is empty in en or ja", k)
		}
		if e, j := verbs.FindAllString(v, -1), verbs.FindAllString(jv, -1); !slices.Equal(e, j) {
			t.Errorf("%q: en has verbs %v, ja %v", k, e, j)
		}
	}
	for k := range ja {
		if _, ok := en[k]; !ok {
			t.Errorf("en lacks %q", k)
		}
	}
	if len(en) < 40 {
		t.Errorf("only %d messages", len(en))
	}
}

func TestPayForm(t *testing.T) {
	s := newSet(t, "")
	p := samplePage("pay")
	p.CSRF = `tok"<&`
	body := render(t, s, "en", http.StatusOK, p).Body.String()
	for _, want := range []string{
		`<form class="choose" method="post" action="/_checkout/pay/r_8f3k2">`,
		`<input type="hidden" name="csrf" value="tok&#34;&lt;&amp;">`,
		`<button type="submit" name="provider" value="sandbox" class="button">Sandbox</button>`,
		`<button type="submit" name="provider" value="stripe" class="button">Card</button>`,
		`<legend>Choose how to pay</legend>`,
		`<a href="/orders/1234567">Return to the shop</a>`,
		`data-events="/_checkout/events/r_8f3k2" data-status="pending" data-status-url="/_checkout/status/r_8f3k2"`,
		`<link rel="stylesheet" href="/_checkout/assets/style.css?v=`,
		`<script src="/_checkout/assets/live.js?v=`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("pay page lacks %s\n%s", want, body)
		}
	}

	// One provider: its button is the primary one.
	p.Providers = p.Providers[1:]
	body = render(t, s, "en", http.StatusOK, p).Body.String()
	if !strings.Contains(body, `value="stripe" class="button primary">Card</button>`) {
		t.Errorf("single provider not primary:\n%s", body)
	}

	// Without a Status there is nothing to compare events with: no live updates.
	p.Status = ""
	if body := render(t, s, "en", http.StatusOK, p).Body.String(); strings.Contains(body, "data-events") {
		t.Errorf("data-events without a status")
	}

	// No provider at all.
	p.Providers = nil
	body = render(t, s, "ja", http.StatusOK, p).Body.String()
	if strings.Contains(body, "<form") || !strings.Contains(body, "お支払い方法がありません") {
		t.Errorf("no providers: want a notice and no form:\n%s", body)
	}
}

func TestPayProviderHTML(t *testing.T) {
	s := newSet(t, "")
	p := samplePage("pay")
	p.Provider = "stripe"
	p.ProviderHTML = template.HTML(`<p class="address">0xabc</p><img src="data:image/png;base64,AAAA" alt="QR code">`)
	p.Status = "on_hold"
	p.Received = money.MustParse("200.00", "USD")
	body := render(t, s, "en", http.StatusOK, p).Body.String()
	for _, want := range []string{
		`<h2 id="instructions-title">Paying with Card</h2>`,
		`<p class="address">0xabc</p><img src="data:image/png;base64,AAAA" alt="QR code">`,
		`<details class="other">`,
		`<summary>Pay another way</summary>`,
		`name="csrf" value="csrf-token-1"`,
		`<dt>Received so far</dt><dd class="amount">$200.00</dd>`,
		`Part of the payment has arrived`, // less than the amount: send the rest
		`This page updates by itself`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("pay page lacks %s\n%s", want, body)
		}
	}
	// A single provider with its block: no chooser.
	p.Providers = p.Providers[1:]
	if body := render(t, s, "en", http.StatusOK, p).Body.String(); strings.Contains(body, "<details") {
		t.Errorf("chooser shown for the only provider")
	}
	// Received is left out when it is the zero value.
	p.Received = money.Amount{}
	if body := render(t, s, "en", http.StatusOK, p).Body.String(); strings.Contains(body, "Received so far") {
		t.Errorf("received shown while zero value")
	}
}

func TestExpiry(t *testing.T) {
	s := newSet(t, "")
	tokyo := time.FixedZone("JST", 9*3600)
	for _, tc := range []struct {
		name, lang string
		left       time.Duration
		loc        *time.Location
		want       []string
	}{
		{"en/minutes", "en", 29*time.Minute + 59*time.Second, nil, []string{
			`Pay by</span> <time datetime="2026-11-21T06:59:59Z">Nov 21, 2026, 6:59 AM UTC</time>`,
			`Time left:</span> <strong class="countdown" role="timer" data-expires="1795244399" data-now="1795242600"`,
			`>29 minutes</strong>`,
		}},
		{"ja/minutes-tokyo", "ja", 45 * time.Minute, tokyo, []string{
			`<time datetime="2026-11-21T07:15:00Z">2026年11月21日 16:15 JST</time>`,
			`残り時間：</span>`, `>45分</strong>`,
		}},
		{"en/one-minute", "en", 90 * time.Second, nil, []string{`>1 minute</strong>`}},
		{"en/under-a-minute", "en", 30 * time.Second, nil, []string{`>less than a minute</strong>`}},
		{"en/hours", "en", 5*time.Hour + 59*time.Minute, nil, []string{`>5 hours</strong>`}},
		{"ja/days", "ja", 72 * time.Hour, nil, []string{`>3日</strong>`}},
		{"en/passed", "en", -time.Minute, nil, []string{`<strong>The time to pay has run out.</strong>`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.Location = tc.loc
			p := samplePage("pay")
			p.ExpiresAt = now.Add(tc.left)
			body := render(t, s, tc.lang, http.StatusOK, p).Body.String()
			for _, want := range tc.want {
				if !strings.Contains(body, want) {
					t.Errorf("lacks %s\n%s", want, body)
				}
			}
		})
	}
	s.Location = nil
	p := samplePage("pay")
	p.ExpiresAt = time.Time{}
	if body := render(t, s, "en", http.StatusOK, p).Body.String(); strings.Contains(body, "countdown") {
		t.Errorf("countdown shown without an expiry")
	}
}

func TestProviderPage(t *testing.T) {
	s := newSet(t, "")
	p := samplePage("provider")
	p.Title = "Test payment"
	p.ProviderIntro = template.HTML(`<p class="banner">Sandbox</p>`)
	p.ProviderHTML = template.HTML(`<form class="outcome" method="post" action="/_checkout/sandbox/r_8f3k2"></form>`)
	body := render(t, s, "en", http.StatusOK, p).Body.String()
	for _, want := range []string{
		`<title>Test payment · Checkout</title>`,
		`<p class="banner">Sandbox</p>`,
		`<form class="outcome" method="post" action="/_checkout/sandbox/r_8f3k2"></form>`,
		`$1,234.50`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("provider page lacks %s\n%s", want, body)
		}
	}
	if strings.Index(body, "banner") > strings.Index(body, "$1,234.50") || strings.Index(body, "$1,234.50") > strings.Index(body, `class="outcome"`) {
		t.Errorf("provider page is not intro, summary, then the provider's part:\n%s", body)
	}
}

func TestOutcomePages(t *testing.T) {
	s := newSet(t, "")
	for _, tc := range []struct {
		name  string
		edit  func(*templates.Page)
		want  []string
		avoid []string
	}{
		{"paid", nil, []string{"Thank you for your payment", `<a class="button primary" href="/orders/1234567">Return to the shop</a>`}, []string{"after the deadline", "Try again"}},
		{"paid", func(p *templates.Page) { p.Late = true }, []string{"after the deadline"}, nil},
		{"failed", nil, []string{"Payment failed", `<a class="button primary" href="/_checkout/pay/r_8f3k2">Try again</a>`, `<a class="button" href="/orders/1234567">Return to the shop</a>`}, nil},
		{"cancelled", func(p *templates.Page) { p.RetryURL = "" }, []string{"Payment cancelled", `<a class="button primary" href="/orders/1234567">`}, []string{"Try again"}},
		{"expired", nil, []string{"Payment expired", "Try again"}, nil},
		{"already_paid", nil, []string{"already been paid", "Return to the shop"}, []string{"Try again"}},
		{"processing", nil, []string{`<meta http-equiv="refresh" content="5">`, "Confirming your payment", `<p class="back"><a href="/orders/1234567">`, `data-events="/_checkout/events/r_8f3k2"`}, []string{"Try again"}},
		{"error", func(p *templates.Page) { p.Message = `The link has expired <b>now</b>.`; p.HTTPStatus = 400 }, []string{"Error 400", "The link has expired &lt;b&gt;now&lt;/b&gt;."}, []string{"<b>now"}},
		{"error", func(p *templates.Page) { p.HTTPStatus = 404; p.Amount = money.Amount{} }, []string{"Error 404", "We could not complete this request."}, []string{"Amount"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := samplePage(tc.name)
			if tc.edit != nil {
				tc.edit(&p)
			}
			body := render(t, s, "en", 0, p).Body.String()
			for _, want := range tc.want {
				if !strings.Contains(body, want) {
					t.Errorf("lacks %s\n%s", want, body)
				}
			}
			for _, avoid := range tc.avoid {
				if strings.Contains(body, avoid) {
					t.Errorf("has %s\n%s", avoid, body)
				}
			}
		})
	}
	// Only the processing page refreshes itself.
	for _, name := range pageNames {
		body := render(t, s, "en", 0, samplePage(name)).Body.String()
		if strings.Contains(body, "http-equiv") != (name == "processing") {
			t.Errorf("%s: meta refresh present = %v", name, !(name == "processing"))
		}
	}
}

func TestRenderFailureIsPlain500(t *testing.T) {
	dir := t.TempDir()
	// Fails only at run time: the sample Ref that New checks with differs.
	writeFile(t, dir, "paid.html", `{{define "content"}}<p>start</p>{{if eq .Ref "boom"}}{{asset .Base "missing.css"}}{{end}}{{end}}`)
	s := newSet(t, dir)
	p := samplePage("paid")
	p.Ref = "boom"
	r := httptest.NewRequest("GET", "/", nil)
	w := httptest.NewRecorder()
	err := s.Render(w, r, http.StatusOK, p)
	if err == nil {
		t.Fatal("Render: no error")
	}
	if w.Code != http.StatusInternalServerError || w.Header().Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("got %d %s, want a plain 500", w.Code, w.Header().Get("Content-Type"))
	}
	if strings.Contains(w.Body.String(), "<") || strings.Contains(w.Body.String(), "start") {
		t.Errorf("half a page sent: %q", w.Body.String())
	}
	if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("500 lacks no-store/nosniff: %v", w.Header())
	}

	w = httptest.NewRecorder()
	if err := s.Render(w, r, http.StatusOK, samplePage("nonesuch")); err == nil || w.Code != http.StatusInternalServerError {
		t.Errorf("unknown page: err %v, status %d", err, w.Code)
	}
}

func writeFile(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOverride(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pay.html", `{{define "title"}}Custom{{end}}{{define "content"}}<h1>Our own pay page</h1><p>{{amount .Amount}}</p>{{end}}`)
	writeFile(t, dir, "messages.en.json", `{"action.continue": "Back to Example Shop"}`)
	writeFile(t, dir, "style.css", `body { color: teal; }`)
	writeFile(t, dir, "README.txt", `not a template; ignored`)
	s := newSet(t, dir)

	body := render(t, s, "en", http.StatusOK, samplePage("pay")).Body.String()
	if !strings.Contains(body, "<h1>Our own pay page</h1><p>$1,234.50</p>") || !strings.Contains(body, "<title>Custom · Checkout</title>") {
		t.Errorf("override not used:\n%s", body)
	}
	if strings.Contains(body, "Choose how to pay") {
		t.Errorf("embedded pay page still shown")
	}
	body = render(t, s, "en", http.StatusOK, samplePage("paid")).Body.String()
	if !strings.Contains(body, "Thank you for your payment") || !strings.Contains(body, "Back to Example Shop") {
		t.Errorf("other pages should stay embedded with the message override applied:\n%s", body)
	}
	body = render(t, s, "ja", http.StatusOK, samplePage("paid")).Body.String()
	if !strings.Contains(body, "ショップに戻る") {
		t.Errorf("ja messages changed by an en override")
	}

	w := httptest.NewRecorder()
	s.Assets().ServeHTTP(w, httptest.NewRequest("GET", "/style.css", nil))
	if w.Body.String() != `body { color: teal; }` {
		t.Errorf("style.css not overridden: %q", w.Body.String())
	}
}

func TestBrokenOverride(t *testing.T) {
	for _, tc := range []struct {
		name, file, body string
		want             []string
	}{
		{"fail/parse", "pay.html", `{{define "content"}}{{.Amount{{end}}`, []string{"pay.html"}},
		{"fail/unclosed-action", "expired.html", `{{define "content"}}{{if .Late}}{{end}`, []string{"expired.html"}},
		{"fail/escape", "paid.html", `{{define "content"}}<a href="{{.ContinueURL}}>x</a>{{end}}`, []string{"paid.html"}},
		{"fail/no-content", "failed.html", `<p>forgot the define</p>`, []string{"failed.html", "content"}},
		{"fail/unknown-func", "pay.html", `{{define "content"}}{{money .Amount}}{{end}}`, []string{"pay.html", "money"}},
		{"fail/unknown-key", "provider.html", `{{define "content"}}{{if .Late}}{{t "provider.typo"}}{{end}}{{end}}`, []string{"provider.html", "provider.typo"}},
		{"fail/layout", "layout.html", `{{define "layout"}}<html>{{template "content" .}}{{end`, []string{"layout.html"}},
		{"fail/messages-json", "messages.ja.json", `{"brand": }`, []string{"messages.ja.json"}},
		{"fail/messages-key", "messages.en.json", `{"brnad": "Pay"}`, []string{"messages.en.json", "brnad"}},
		{"fail/unknown-file", "pay.htm.html", `x`, []string{"pay.htm.html"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, tc.file, tc.body)
			_, err := templates.New(dir, nil)
			if err == nil {
				t.Fatal("New: no error")
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, tc.file)) {
				t.Errorf("error does not name the file %s: %v", filepath.Join(dir, tc.file), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
		})
	}
	if _, err := templates.New(filepath.Join(t.TempDir(), "nope"), nil); err == nil {
		t.Errorf("missing templates directory: no error")
	}
}

func TestAssets(t *testing.T) {
	s := newSet(t, "")
	body := render(t, s, "en", http.StatusOK, samplePage("pay")).Body.String()
	cssURL := regexp.MustCompile(`href="/_checkout/assets(/style\.css\?v=[0-9a-f]+)"`).FindStringSubmatch(body)
	jsURL := regexp.MustCompile(`src="/_checkout/assets(/live\.js\?v=[0-9a-f]+)"`).FindStringSubmatch(body)
	if cssURL == nil || jsURL == nil {
		t.Fatalf("asset links missing:\n%s", body)
	}
	h := s.Assets()
	for _, tc := range []struct {
		method, path string
		status       int
		ctype, cache string
	}{
		{"GET", cssURL[1], 200, "text/css; charset=utf-8", "public, max-age=31536000, immutable"},
		{"GET", jsURL[1], 200, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable"},
		{"HEAD", jsURL[1], 200, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable"},
		{"GET", "/style.css", 200, "text/css; charset=utf-8", "public, max-age=300"},
		{"GET", "/style.css?v=0000", 200, "text/css; charset=utf-8", "public, max-age=300"},
		{"GET", "/layout.html", 404, "", ""},
		{"GET", "/messages.en.json", 404, "", ""},
		{"GET", "/../templates.go", 404, "", ""},
		{"GET", "/", 404, "", ""},
		{"POST", "/style.css", 405, "", ""},
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if w.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("no nosniff")
			}
			if tc.status != 200 {
				return
			}
			if got := w.Header().Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			if got := w.Header().Get("Cache-Control"); got != tc.cache {
				t.Errorf("Cache-Control %q, want %q", got, tc.cache)
			}
			if tc.method == "GET" && w.Body.Len() < 100 {
				t.Errorf("body %d bytes", w.Body.Len())
			}
		})
	}
	// Revalidation by ETag.
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/live.js", nil))
	r := httptest.NewRequest("GET", "/live.js", nil)
	r.Header.Set("If-None-Match", w.Header().Get("ETag"))
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", w.Code)
	}
}

func TestLiveScript(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("files", "live.js"))
	if err != nil {
		t.Fatal(err)
	}
	js := string(b)
	// What the pages rely on: the attributes it reads and what it does.
	for _, want := range []string{"data-events", "data-status", "data-status-url", "data-expires", "data-now", "data-expired-text", "EventSource", "location.reload()"} {
		if !strings.Contains(js, want) {
			t.Errorf("live.js lacks %s", want)
		}
	}
	for _, avoid := range []string{"eval(", "innerHTML", "document.write", "http://", "https://"} {
		if strings.Contains(js, avoid) {
			t.Errorf("live.js uses %s", avoid)
		}
	}
}

func TestConcurrentRender(t *testing.T) {
	s := newSet(t, "")
	done := make(chan struct{})
	for i := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for j := range 20 {
				name := pageNames[(i+j)%len(pageNames)]
				lang := []string{"en", "ja"}[j%2]
				r := httptest.NewRequest("GET", "/", nil)
				r.Header.Set("Accept-Language", lang)
				w := httptest.NewRecorder()
				if err := s.Render(w, r, 0, samplePage(name)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
}
