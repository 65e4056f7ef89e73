package komojutest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/internal/komojutest"
)

// call sends an API request as a KOMOJU client does and decodes the answer.
func call(t *testing.T, s *komojutest.Server, method, path, key, idem string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.URL+"/api/v1"+path, rd)
	req.SetBasicAuth(key, "")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idem != "" {
		req.Header.Set("X-KOMOJU-IDEMPOTENCY", idem)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %v", method, path, err)
	}
	return resp.StatusCode, out
}

func sessionBody() map[string]any {
	return map[string]any{
		"mode": "payment", "amount": 1800, "currency": "JPY", "return_url": "https://shop.example/return",
		"payment_data": map[string]any{"external_order_num": "ref1"}, "metadata": map[string]any{"checkout_ref": "ref1"},
	}
}

func errCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func TestAuthAndErrors(t *testing.T) {
	s := komojutest.New(t)
	if code, out := call(t, s, "GET", "/sessions/nope", "sk_test_wrong", "", nil); code != 401 || errCode(out) != "unauthorized" {
		t.Fatalf("wrong key: %d %v", code, out)
	}
	if code, out := call(t, s, "GET", "/sessions/nope", komojutest.SecretKey, "", nil); code != 404 || errCode(out) != "not_found" {
		t.Fatalf("unknown session: %d %v", code, out)
	}
	bad := sessionBody()
	bad["currency"] = "XYZ"
	if code, out := call(t, s, "POST", "/sessions", komojutest.SecretKey, "", bad); code != 400 || errCode(out) != "bad_request" || out["error"].(map[string]any)["param"] != "currency" {
		t.Fatalf("bad currency: %d %v", code, out)
	}
	bad = sessionBody()
	bad["amout"] = 5
	if code, _ := call(t, s, "POST", "/sessions", komojutest.SecretKey, "", bad); code != 400 {
		t.Fatalf("a misspelt field was accepted: %d", code)
	}
	bad = sessionBody()
	bad["expires_in_seconds"] = 86401
	if code, _ := call(t, s, "POST", "/sessions", komojutest.SecretKey, "", bad); code != 400 {
		t.Fatalf("expires_in_seconds above 86400 accepted: %d", code)
	}
	s.FailNext(1, 503)
	if code, _ := call(t, s, "GET", "/sessions/x", komojutest.SecretKey, "", nil); code != 503 {
		t.Fatalf("outage: %d", code)
	}
}

func TestIdempotency(t *testing.T) {
	s := komojutest.New(t)
	code, first := call(t, s, "POST", "/sessions", komojutest.SecretKey, "k1", sessionBody())
	if code != 200 || first["session_url"] == "" {
		t.Fatalf("create: %d %v", code, first)
	}
	_, again := call(t, s, "POST", "/sessions", komojutest.SecretKey, "k1", sessionBody())
	if again["id"] != first["id"] {
		t.Fatalf("repeat with the same key made another session: %v vs %v", again["id"], first["id"])
	}
	other := sessionBody()
	other["amount"] = 1900
	if code, _ := call(t, s, "POST", "/sessions", komojutest.SecretKey, "k1", other); code != 422 {
		t.Fatalf("key reused with another body: %d, want 422", code)
	}
	// Many at once under one new key: one session, the rest answered with
	// it or with 409 while the first is in progress.
	var wg sync.WaitGroup
	ids := make(chan any, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, out := call(t, s, "POST", "/sessions", komojutest.SecretKey, "k2", sessionBody())
			switch code {
			case 200:
				ids <- out["id"]
			case 409:
			default:
				t.Errorf("concurrent repeat: %d %v", code, out)
			}
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[any]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != 1 {
		t.Fatalf("concurrent requests under one key made %d sessions", len(seen))
	}
}

func TestKonbiniLifecycleAndSignedWebhooks(t *testing.T) {
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := komojutest.New(t, komojutest.WithClock(clock))
	var got []*http.Request
	var bodies [][]byte
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, b)
		mu.Unlock()
	}))
	defer hook.Close()
	s.SetWebhook(hook.URL, "secret-token")
	_, sess := call(t, s, "POST", "/sessions", komojutest.SecretKey, "", sessionBody())
	id := sess["id"].(string)
	pid, err := s.Pay(id, "konbini", "")
	if err != nil {
		t.Fatal(err)
	}
	_, shown := call(t, s, "GET", "/sessions/"+id, komojutest.SecretKey, "", nil)
	pay := shown["payment"].(map[string]any)
	if shown["status"] != "completed" || pay["status"] != "authorized" || pay["payment_deadline"] != "2026-11-28T14:59:59Z" {
		t.Fatalf("konbini slip: session %v, payment %v", shown["status"], pay)
	}
	details := pay["payment_details"].(map[string]any)
	if details["type"] != "konbini" || details["confirmation_code"] == "" || details["receipt"] == "" {
		t.Fatalf("slip details %v", details)
	}
	if code, out := call(t, s, "POST", "/payments/"+pid+"/refund", komojutest.SecretKey, "", map[string]any{}); code != 422 || !strings.Contains(out["error"].(map[string]any)["message"].(string), "refund request") {
		t.Fatalf("konbini refund: %d %v", code, out)
	}
	if err := s.Capture(pid); err != nil {
		t.Fatal(err)
	}
	if err := s.Capture(pid); err == nil {
		t.Fatal("captured twice")
	}
	mu.Lock()
	defer mu.Unlock()
	var types []string
	for i, r := range got {
		types = append(types, r.Header.Get("X-Komoju-Event"))
		if sig := r.Header.Get("X-Komoju-Signature"); sig != komojutest.Sign("secret-token", bodies[i]) || r.Header.Get("X-Komoju-ID") == "" {
			t.Fatalf("delivery %d not signed as KOMOJU signs: %q", i, sig)
		}
	}
	if strings.Join(types, ",") != "ping,payment.authorized,payment.captured" {
		t.Fatalf("events %v", types)
	}
}

func TestSlipExpiresAtItsDeadline(t *testing.T) {
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := komojutest.New(t, komojutest.WithClock(clock), komojutest.WithKonbiniLife(24*time.Hour))
	_, sess := call(t, s, "POST", "/sessions", komojutest.SecretKey, "", sessionBody())
	pid, _ := s.Pay(sess["id"].(string), "konbini", "")
	mu.Lock()
	now = time.Date(2026, 11, 26, 14, 59, 58, 0, time.UTC) // 23:59:58 JST of the last day
	mu.Unlock()
	if n := s.ExpireDue(); n != 0 || s.PaymentStatus(pid) != "authorized" {
		t.Fatalf("a slip expired before 23:59:59 JST of its last day: %d, %s", n, s.PaymentStatus(pid))
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if n := s.ExpireDue(); n != 1 {
		t.Fatalf("ExpireDue expired %d slips at the deadline", n)
	}
	if st := s.PaymentStatus(pid); st != "expired" {
		t.Fatalf("slip after its deadline is %s", st)
	}
	if err := s.Capture(pid); err == nil {
		t.Fatal("an expired slip was captured")
	}
}
