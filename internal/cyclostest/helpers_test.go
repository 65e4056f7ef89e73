// Helpers shared by the tests: plain net/http calls to the fake's API, a
// settable clock, and a shop endpoint that records the webhook calls it
// receives.
package cyclostest_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/internal/cyclostest"
)

// clock is a settable clock for WithClock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// response is an API answer with its JSON body decoded.
type response struct {
	status int
	header http.Header
	raw    []byte
	json   map[string]any
}

// headers are the request headers of one call.
type headers map[string]string

func token(srv *cyclostest.Server) headers {
	return headers{"Access-Client-Token": srv.AccessClientToken()}
}

func basic(login, password string) headers {
	return headers{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(login+":"+password))}
}

// with is h plus more headers.
func (h headers) with(more headers) headers {
	out := headers{}
	for k, v := range h {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

// call sends one request to the fake; body is JSON-encoded unless it is a
// string, which is sent as is.
func call(t *testing.T, srv *cyclostest.Server, method, path string, h headers, body any) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.json); err != nil {
			t.Fatalf("%s %s: body is not a JSON object: %v\n%s", method, path, err, raw)
		}
	}
	return r
}

// wantStatus fails the test unless r has the status.
func (r response) wantStatus(t *testing.T, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.raw)
	}
	return r
}

// str is a string field of the JSON body, following nested objects.
func (r response) str(path ...string) string {
	var v any = r.json
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[p]
	}
	s, _ := v.(string)
	return s
}

// has reports whether the JSON body has the top-level field.
func (r response) has(field string) bool {
	_, ok := r.json[field]
	return ok
}

// createTicket creates a ticket as the shop and returns its number.
func createTicket(t *testing.T, srv *cyclostest.Server, body map[string]any) string {
	t.Helper()
	r := call(t, srv, "POST", "/api/tickets", token(srv), body).wantStatus(t, http.StatusCreated)
	return r.str("ticketNumber")
}

// approveAPI approves a ticket through the API as login.
func approveAPI(t *testing.T, srv *cyclostest.Server, number, login, password string) response {
	t.Helper()
	return call(t, srv, "POST", "/api/tickets/"+number+"/approve",
		basic(login, password).with(headers{"confirmationPassword": password}), nil)
}

// processAPI processes a ticket as the shop.
func processAPI(t *testing.T, srv *cyclostest.Server, number, orderID string) response {
	t.Helper()
	path := "/api/tickets/" + number + "/process"
	if orderID != "" {
		path += "?orderId=" + orderID
	}
	return call(t, srv, "POST", path, token(srv), nil)
}

// hookCall is one request the shop's webhook endpoint received.
type hookCall struct {
	method string
	path   string
	query  map[string][]string
}

// shop is the shop's webhook endpoint.
type shop struct {
	URL   string
	mu    sync.Mutex
	calls []hookCall
}

func newShop(t *testing.T) *shop {
	s := &shop{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls = append(s.calls, hookCall{r.Method, r.URL.Path, r.URL.Query()})
		s.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

func (s *shop) received() []hookCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]hookCall(nil), s.calls...)
}

// order is a typical TicketNew, as in the HVC guide, with the shop's
// endpoints.
func order(sh *shop) map[string]any {
	return map[string]any{
		"orderId":        "1234567",
		"amount":         "75",
		"description":    "Order 1234567",
		"successWebhook": sh.URL + "/webhook/cyclos?site=main",
		"successUrl":     "https://shop.example/success?lang=en",
		"cancelUrl":      "https://shop.example/cancel",
	}
}
