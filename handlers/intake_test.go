package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
)

func (e *testEnv) api(method, path, token, body string, hdr ...string) resp {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.abs(path), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return e.do(nil, req)
}

func (e *testEnv) orderCount() int {
	list, err := e.store.List(context.Background(), store.ListFilter{})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(list)
}

func TestAPICreateAndGet(t *testing.T) {
	e := newEnv(t)
	body := `{"order_id":"API-1","amount":"9.99","currency":"USD","description":"E-book","metadata":{"sku":"eb"},"expires_in":"1h"}`
	r := e.api("POST", "/_checkout/api/orders", e.secretText, body)
	if r.code != http.StatusCreated {
		t.Fatalf("create: %d %s", r.code, r.body)
	}
	var out struct {
		PayURL string `json:"pay_url"`
		Order  struct {
			OrderID  string            `json:"order_id"`
			Status   string            `json:"status"`
			Metadata map[string]string `json:"metadata"`
		} `json:"order"`
	}
	if err := json.Unmarshal([]byte(r.body), &out); err != nil || out.Order.Status != "pending" || out.Order.Metadata["sku"] != "eb" ||
		!strings.HasPrefix(out.PayURL, e.srv.URL+"/_checkout/pay/") {
		t.Fatalf("create body: %s", r.body)
	}
	if p := e.get(nil, out.PayURL); p.code != 200 || !strings.Contains(p.body, "9.99") {
		t.Fatalf("pay_url: %d", p.code)
	}
	// The same order again is the same order (200, not a second one).
	if r := e.api("POST", "/_checkout/api/orders", e.secretText, body); r.code != http.StatusOK || !strings.Contains(r.body, out.PayURL) {
		t.Fatalf("same order again: %d %s", r.code, r.body)
	}
	if r := e.api("GET", "/_checkout/api/orders/API-1", e.secretText, ""); r.code != 200 || !strings.Contains(r.body, `"order_id": "API-1"`) {
		t.Fatalf("get: %d %s", r.code, r.body)
	}
	if r := e.api("GET", "/_checkout/api/orders/nope", e.secretText, ""); r.code != 404 {
		t.Fatalf("get unknown: %d", r.code)
	}
	if e.orderCount() != 1 {
		t.Fatalf("%d orders, want 1", e.orderCount())
	}
}

func TestAPIRefusesBadCallersAndBodies(t *testing.T) {
	e := newEnv(t)
	good := `{"order_id":"API-2","amount":"9.99","currency":"USD"}`
	cases := map[string]struct {
		token, body string
		want        int
	}{
		"fail/no-token":        {"", good, 401},
		"fail/wrong-token":     {"whsec_" + strings.Repeat("A", 44), good, 401},
		"fail/not-a-secret":    {"hunter2", good, 401},
		"fail/not-json":        {e.secretText, `order_id=1`, 400},
		"fail/unknown-field":   {e.secretText, `{"order_id":"x","amount":"1.00","currency":"USD","price":"1"}`, 400},
		"fail/float-amount":    {e.secretText, `{"order_id":"x","amount":1.005,"currency":"USD"}`, 422},
		"fail/bad-currency":    {e.secretText, `{"order_id":"x","amount":"1.00","currency":"usd"}`, 422},
		"fail/missing-id":      {e.secretText, `{"amount":"1.00","currency":"USD"}`, 422},
		"fail/unknown-prov":    {e.secretText, `{"order_id":"x","amount":"1.00","currency":"USD","provider":"paypal"}`, 422},
		"fail/expiry-too-long": {e.secretText, `{"order_id":"x","amount":"1.00","currency":"USD","expires_in":99999999}`, 422},
		"fail/too-large":       {e.secretText, `{"order_id":"x","description":"` + strings.Repeat("a", 70<<10) + `"}`, 413},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := e.api("POST", "/_checkout/api/orders", tc.token, tc.body)
			if r.code != tc.want || !strings.Contains(r.header.Get("Content-Type"), "json") {
				t.Fatalf("got %d (%s), want %d JSON", r.code, r.body, tc.want)
			}
			if strings.Contains(r.body, e.secretText) {
				t.Fatal("error body echoes the secret")
			}
		})
	}
	if e.orderCount() != 0 {
		t.Fatalf("refused calls stored %d orders", e.orderCount())
	}
}

func TestAPIAllowAndIntakeOff(t *testing.T) {
	e := newEnv(t, func(c *handlers.Config) { c.APIAllow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
	r := e.api("POST", "/_checkout/api/orders", e.secretText, `{"order_id":"x","amount":"1.00","currency":"USD"}`)
	if r.code != http.StatusForbidden {
		t.Fatalf("caller outside api_allow: %d", r.code)
	}
	off := newEnv(t, func(c *handlers.Config) { c.Intake = handlers.Intakes{Headers: true} })
	if r := off.api("POST", "/_checkout/api/orders", off.secretText, `{}`); r.code != 404 {
		t.Fatalf("api off: %d", r.code)
	}
	if r := off.get(nil, "/_checkout/start?order=1&amount=1.00&currency=USD&exp=9999999999&sig=00"); r.code != 404 {
		t.Fatalf("signed links off: %d", r.code)
	}
}

func TestAPIIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	body := `{"order_id":"IK-1","amount":"5.00","currency":"USD"}`
	r1 := e.api("POST", "/_checkout/api/orders", e.secretText, body, "Idempotency-Key", `"k-1"`)
	r2 := e.api("POST", "/_checkout/api/orders", e.secretText, body, "Idempotency-Key", `"k-1"`)
	if r1.code != 201 || r2.code != 201 || r1.body != r2.body || r2.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d/%d replayed=%q", r1.code, r2.code, r2.header.Get("Idempotent-Replayed"))
	}
	r3 := e.api("POST", "/_checkout/api/orders", e.secretText, `{"order_id":"IK-2","amount":"5.00","currency":"USD"}`, "Idempotency-Key", `"k-1"`)
	if r3.code != http.StatusUnprocessableEntity {
		t.Fatalf("same key, other body: %d", r3.code)
	}
	if r := e.api("POST", "/_checkout/api/orders", e.secretText, body, "Idempotency-Key", `"`+strings.Repeat("k", 256)+`"`); r.code != 400 {
		t.Fatalf("malformed key: %d", r.code)
	}
	// In flight: a key begun but not finished answers 409.
	if _, err := e.store.BeginIdempotent(context.Background(), "shop\x00k-busy", store.Idempotent{Fingerprint: fingerprint(body), CreatedAt: time.Now()}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if r := e.api("POST", "/_checkout/api/orders", e.secretText, body, "Idempotency-Key", `"k-busy"`); r.code != http.StatusConflict {
		t.Fatalf("in flight: %d %s", r.code, r.body)
	}
	if e.orderCount() != 1 {
		t.Fatalf("%d orders", e.orderCount())
	}
}

func TestAPIConcurrentSameKeyOneOrder(t *testing.T) {
	e := newEnv(t)
	body := `{"order_id":"IK-C","amount":"5.00","currency":"USD"}`
	var wg sync.WaitGroup
	codes := make(chan int, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- e.api("POST", "/_checkout/api/orders", e.secretText, body, "Idempotency-Key", `"same"`).code
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 201 && c != 409 {
			t.Fatalf("concurrent same key: %d, want 201 or 409", c)
		}
	}
	o, err := e.store.Get(context.Background(), order.Key{Site: "shop", ID: "IK-C"})
	if err != nil || len(o.Attempts) != 1 || e.orderCount() != 1 {
		t.Fatalf("one order with one attempt expected: %v %d", err, e.orderCount())
	}
}

func fingerprint(body string) string {
	return sha256hex([]byte(body))
}

func TestSignedLinks(t *testing.T) {
	e := newEnv(t)
	q := url.Values{"order": {"L-1"}, "amount": {"1800"}, "currency": {"JPY"}, "description": {"お茶 100 g"}}
	link := "/_checkout/start?" + e.secret.SignLink(q, e.clock.Now().Add(time.Hour))
	r := e.get(nil, link)
	if r.code != 303 || !strings.Contains(r.location, "/_checkout/sandbox/") {
		t.Fatalf("good link: %d %q\n%s", r.code, r.location, r.body)
	}
	if o := e.orderByRef(refOf(r.location)); o.Description != "お茶 100 g" || o.Amount.String() != "1800" {
		t.Fatalf("order from link: %+v", o)
	}
	tampered := strings.Replace(link, "amount=1800", "amount=1", 1)
	expired := "/_checkout/start?" + e.secret.SignLink(url.Values{"order": {"L-2"}, "amount": {"1"}, "currency": {"USD"}}, e.clock.Now().Add(-time.Second))
	badParams := "/_checkout/start?" + e.secret.SignLink(url.Values{"order": {"L-3"}, "amount": {"1.5"}, "currency": {"JPY"}}, e.clock.Now().Add(time.Hour))
	for name, tc := range map[string]struct {
		link string
		want int
	}{
		"fail/tampered":   {tampered, 403},
		"fail/unsigned":   {"/_checkout/start?order=L-4&amount=1.00&currency=USD", 403},
		"fail/expired":    {expired, 410},
		"fail/bad-amount": {badParams, 400},
	} {
		t.Run(name, func(t *testing.T) {
			r := e.get(nil, tc.link)
			if r.code != tc.want || !strings.Contains(r.header.Get("Content-Type"), "text/html") {
				t.Fatalf("got %d, want a %d page", r.code, tc.want)
			}
		})
	}
	if e.orderCount() != 1 {
		t.Fatalf("bad links stored orders: %d", e.orderCount())
	}
}

func TestEventsStreamLiveStatus(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	sb := e.buy(c, "mug")
	ref := refOf(sb)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.abs("/_checkout/events/"+ref), nil)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if r.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", r.Header.Get("Content-Type"))
	}
	events := make(chan string, 10)
	go func() {
		buf := make([]byte, 4096)
		var acc bytes.Buffer
		for {
			n, err := r.Body.Read(buf)
			acc.Write(buf[:n])
			for {
				i := bytes.Index(acc.Bytes(), []byte("\n\n"))
				if i < 0 {
					break
				}
				events <- string(acc.Next(i + 2))
			}
			if err != nil {
				close(events)
				return
			}
		}
	}()
	first := <-events
	if !strings.Contains(first, `"status":"pending"`) {
		t.Fatalf("first event %q", first)
	}
	e.paySandbox(c, sb, "paid")
	for ev := range events {
		if strings.Contains(ev, `"status":"paid"`) {
			return
		}
	}
	t.Fatal("no paid event on the stream")
}

func TestLogsHoldNoSecrets(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	e := newEnv(t, func(c *handlers.Config) { c.Logger = bufferLogger(&logs, &mu) })
	c := e.client()
	sb := e.buy(c, "mug")
	e.paySandbox(c, sb, "paid")
	e.get(c, "/_checkout/webhook/sandbox") // unsigned
	e.api("POST", "/_checkout/api/orders", "whsec_wrongwrongwrongwrongwrongwrongwrongwrong", `{}`)
	bad := e.signedWebhook("evt_bad", `{"id":"evt_bad","type":"payment.paid","ref":"x","amount":"zz","currency":"USD"}`)
	sig := bad.Header["webhook-signature"][0]
	e.do(nil, bad)
	e.setUpstream(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Checkout-Order", "Z")
		w.Header().Set("X-Checkout-Amount", "nope")
		w.Header().Set("X-Checkout-Currency", "USD")
	}))
	e.get(nil, "/x")
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if out == "" {
		t.Fatal("no logs captured")
	}
	key := strings.TrimPrefix(e.secretText, "whsec_")
	for _, secret := range []string{e.secretText, key, key[:16], sig, sig[3:]} {
		if strings.Contains(out, secret) {
			t.Fatalf("logs contain a secret or signature %q:\n%s", secret, out)
		}
	}
}

var _ = httptest.NewRecorder
