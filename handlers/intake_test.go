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
	"github.com/caddy-checkout/checkout/handlers/handlerstest"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
)

func TestAPICreateAndGet(t *testing.T) {
	e := handlerstest.New(t)
	body := `{"order_id":"API-1","amount":"9.99","currency":"USD","description":"E-book","metadata":{"sku":"eb"},"expires_in":"1h"}`
	r := e.API("POST", "/_checkout/api/orders", e.SecretText, body)
	if r.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Code, r.Body)
	}
	var out struct {
		PayURL string `json:"pay_url"`
		Order  struct {
			OrderID  string            `json:"order_id"`
			Status   string            `json:"status"`
			Metadata map[string]string `json:"metadata"`
		} `json:"order"`
	}
	if err := json.Unmarshal([]byte(r.Body), &out); err != nil || out.Order.Status != "pending" || out.Order.Metadata["sku"] != "eb" ||
		!strings.HasPrefix(out.PayURL, e.Srv.URL+"/_checkout/pay/") {
		t.Fatalf("create body: %s", r.Body)
	}
	if p := e.Get(nil, out.PayURL); p.Code != 200 || !strings.Contains(p.Body, "9.99") {
		t.Fatalf("pay_url: %d", p.Code)
	}
	// The same order again is the same order (200, not a second one).
	if r := e.API("POST", "/_checkout/api/orders", e.SecretText, body); r.Code != http.StatusOK || !strings.Contains(r.Body, out.PayURL) {
		t.Fatalf("same order again: %d %s", r.Code, r.Body)
	}
	if r := e.API("GET", "/_checkout/api/orders/API-1", e.SecretText, ""); r.Code != 200 || !strings.Contains(r.Body, `"order_id": "API-1"`) {
		t.Fatalf("get: %d %s", r.Code, r.Body)
	}
	if r := e.API("GET", "/_checkout/api/orders/nope", e.SecretText, ""); r.Code != 404 {
		t.Fatalf("get unknown: %d", r.Code)
	}
	if e.OrderCount() != 1 {
		t.Fatalf("%d orders, want 1", e.OrderCount())
	}
}

func TestAPIRefusesBadCallersAndBodies(t *testing.T) {
	e := handlerstest.New(t)
	good := `{"order_id":"API-2","amount":"9.99","currency":"USD"}`
	cases := map[string]struct {
		token, body string
		want        int
	}{
		"fail/no-token":        {"", good, 401},
		"fail/wrong-token":     {"whsec_" + strings.Repeat("A", 44), good, 401},
		"fail/not-a-secret":    {"hunter2", good, 401},
		"fail/not-json":        {e.SecretText, `order_id=1`, 400},
		"fail/unknown-field":   {e.SecretText, `{"order_id":"x","amount":"1.00","currency":"USD","price":"1"}`, 400},
		"fail/float-amount":    {e.SecretText, `{"order_id":"x","amount":1.005,"currency":"USD"}`, 422},
		"fail/bad-currency":    {e.SecretText, `{"order_id":"x","amount":"1.00","currency":"usd"}`, 422},
		"fail/missing-id":      {e.SecretText, `{"amount":"1.00","currency":"USD"}`, 422},
		"fail/unknown-prov":    {e.SecretText, `{"order_id":"x","amount":"1.00","currency":"USD","provider":"paypal"}`, 422},
		"fail/expiry-too-long": {e.SecretText, `{"order_id":"x","amount":"1.00","currency":"USD","expires_in":99999999}`, 422},
		"fail/too-large":       {e.SecretText, `{"order_id":"x","description":"` + strings.Repeat("a", 70<<10) + `"}`, 413},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := e.API("POST", "/_checkout/api/orders", tc.token, tc.body)
			if r.Code != tc.want || !strings.Contains(r.Header.Get("Content-Type"), "json") {
				t.Fatalf("got %d (%s), want %d JSON", r.Code, r.Body, tc.want)
			}
			if strings.Contains(r.Body, e.SecretText) {
				t.Fatal("error body echoes the secret")
			}
		})
	}
	if e.OrderCount() != 0 {
		t.Fatalf("refused calls stored %d orders", e.OrderCount())
	}
}

func TestAPIAllowAndIntakeOff(t *testing.T) {
	e := handlerstest.New(t, func(c *handlers.Config) { c.APIAllow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
	r := e.API("POST", "/_checkout/api/orders", e.SecretText, `{"order_id":"x","amount":"1.00","currency":"USD"}`)
	if r.Code != http.StatusForbidden {
		t.Fatalf("caller outside api_allow: %d", r.Code)
	}
	off := handlerstest.New(t, func(c *handlers.Config) { c.Intake = handlers.Intakes{Headers: true} })
	if r := off.API("POST", "/_checkout/api/orders", off.SecretText, `{}`); r.Code != 404 {
		t.Fatalf("api off: %d", r.Code)
	}
	if r := off.Get(nil, "/_checkout/start?order=1&amount=1.00&currency=USD&exp=9999999999&sig=00"); r.Code != 404 {
		t.Fatalf("signed links off: %d", r.Code)
	}
}

func TestAPIIdempotencyKey(t *testing.T) {
	e := handlerstest.New(t)
	body := `{"order_id":"IK-1","amount":"5.00","currency":"USD"}`
	r1 := e.API("POST", "/_checkout/api/orders", e.SecretText, body, "Idempotency-Key", `"k-1"`)
	r2 := e.API("POST", "/_checkout/api/orders", e.SecretText, body, "Idempotency-Key", `"k-1"`)
	if r1.Code != 201 || r2.Code != 201 || r1.Body != r2.Body || r2.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d/%d replayed=%q", r1.Code, r2.Code, r2.Header.Get("Idempotent-Replayed"))
	}
	r3 := e.API("POST", "/_checkout/api/orders", e.SecretText, `{"order_id":"IK-2","amount":"5.00","currency":"USD"}`, "Idempotency-Key", `"k-1"`)
	if r3.Code != http.StatusUnprocessableEntity {
		t.Fatalf("same key, other body: %d", r3.Code)
	}
	if r := e.API("POST", "/_checkout/api/orders", e.SecretText, body, "Idempotency-Key", `"`+strings.Repeat("k", 256)+`"`); r.Code != 400 {
		t.Fatalf("malformed key: %d", r.Code)
	}
	// In flight: a key begun but not finished answers 409.
	if _, err := e.Store.BeginIdempotent(context.Background(), "shop\x00k-busy", store.Idempotent{Fingerprint: fingerprint(body), CreatedAt: time.Now()}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if r := e.API("POST", "/_checkout/api/orders", e.SecretText, body, "Idempotency-Key", `"k-busy"`); r.Code != http.StatusConflict {
		t.Fatalf("in flight: %d %s", r.Code, r.Body)
	}
	if e.OrderCount() != 1 {
		t.Fatalf("%d orders", e.OrderCount())
	}
}

func TestAPIConcurrentSameKeyOneOrder(t *testing.T) {
	e := handlerstest.New(t)
	body := `{"order_id":"IK-C","amount":"5.00","currency":"USD"}`
	var wg sync.WaitGroup
	codes := make(chan int, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- e.API("POST", "/_checkout/api/orders", e.SecretText, body, "Idempotency-Key", `"same"`).Code
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 201 && c != 409 {
			t.Fatalf("concurrent same key: %d, want 201 or 409", c)
		}
	}
	o, err := e.Store.Get(context.Background(), order.Key{Site: "shop", ID: "IK-C"})
	if err != nil || len(o.Attempts) != 1 || e.OrderCount() != 1 {
		t.Fatalf("one order with one attempt expected: %v %d", err, e.OrderCount())
	}
}

func fingerprint(body string) string {
	return sha256hex([]byte(body))
}

func TestSignedLinks(t *testing.T) {
	e := handlerstest.New(t)
	q := url.Values{"order": {"L-1"}, "amount": {"1800"}, "currency": {"JPY"}, "description": {"お茶 100 g"}}
	link := "/_checkout/start?" + e.Secret.SignLink(q, e.Clock.Now().Add(time.Hour))
	r := e.Get(nil, link)
	if r.Code != 303 || !strings.Contains(r.Location, "/_checkout/sandbox/") {
		t.Fatalf("good link: %d %q\n%s", r.Code, r.Location, r.Body)
	}
	if o := e.OrderByRef(handlerstest.RefOf(r.Location)); o.Description != "お茶 100 g" || o.Amount.String() != "1800" {
		t.Fatalf("order from link: %+v", o)
	}
	tampered := strings.Replace(link, "amount=1800", "amount=1", 1)
	expired := "/_checkout/start?" + e.Secret.SignLink(url.Values{"order": {"L-2"}, "amount": {"1"}, "currency": {"USD"}}, e.Clock.Now().Add(-time.Second))
	badParams := "/_checkout/start?" + e.Secret.SignLink(url.Values{"order": {"L-3"}, "amount": {"1.5"}, "currency": {"JPY"}}, e.Clock.Now().Add(time.Hour))
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
			r := e.Get(nil, tc.link)
			if r.Code != tc.want || !strings.Contains(r.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("got %d, want a %d page", r.Code, tc.want)
			}
		})
	}
	if e.OrderCount() != 1 {
		t.Fatalf("bad links stored orders: %d", e.OrderCount())
	}
}

func TestEventsStreamLiveStatus(t *testing.T) {
	e := handlerstest.New(t)
	c := e.Client()
	sb := e.Buy(c, "mug")
	ref := handlerstest.RefOf(sb)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.Abs("/_checkout/events/"+ref), nil)
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
	e.PaySandbox(c, sb, "paid")
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
	e := handlerstest.New(t, func(c *handlers.Config) { c.Logger = handlerstest.BufferLogger(&logs, &mu) })
	c := e.Client()
	sb := e.Buy(c, "mug")
	e.PaySandbox(c, sb, "paid")
	e.Get(c, "/_checkout/webhook/sandbox") // unsigned
	e.API("POST", "/_checkout/api/orders", "whsec_wrongwrongwrongwrongwrongwrongwrongwrong", `{}`)
	bad := e.SignedWebhook("evt_bad", `{"id":"evt_bad","type":"payment.paid","ref":"x","amount":"zz","currency":"USD"}`)
	sig := bad.Header["webhook-signature"][0]
	e.Do(nil, bad)
	e.SetUpstream(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Checkout-Order", "Z")
		w.Header().Set("X-Checkout-Amount", "nope")
		w.Header().Set("X-Checkout-Currency", "USD")
	}))
	e.Get(nil, "/x")
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if out == "" {
		t.Fatal("no logs captured")
	}
	key := strings.TrimPrefix(e.SecretText, "whsec_")
	for _, secret := range []string{e.SecretText, key, key[:16], sig, sig[3:]} {
		if strings.Contains(out, secret) {
			t.Fatalf("logs contain a secret or signature %q:\n%s", secret, out)
		}
	}
}

var _ = httptest.NewRecorder
