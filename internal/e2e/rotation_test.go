package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-checkout/checkout/internal/demoshop"
	"github.com/caddy-checkout/checkout/sign"
)

// capturedHook is a shop callback endpoint that keeps what it was sent,
// unverified, for the test to verify as a shop would.
type capturedHook struct {
	mu    sync.Mutex
	calls []capturedCall
}

type capturedCall struct {
	header http.Header
	body   []byte
}

func (h *capturedHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.calls = append(h.calls, capturedCall{r.Header.Clone(), body})
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *capturedHook) all() []capturedCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]capturedCall(nil), h.calls...)
}

// TestSecretRotationThroughCaddy: a site configured with a new secret and
// previous_secret until a time takes, until then, signed links and server
// API calls made with either secret, and its callbacks carry two
// signatures, each of which a shop's Standard Webhooks verifier (ours and
// the npm standardwebhooks package) accepts with its secret. Reloaded with
// the window over, the old secret opens nothing and callbacks carry the
// new signature only.
func TestSecretRotationThroughCaddy(t *testing.T) {
	oldText, curText := sign.NewSecret(), sign.NewSecret()
	oldSecret, err := sign.ParseSecret(oldText)
	if err != nil {
		t.Fatal(err)
	}
	curSecret, err := sign.ParseSecret(curText)
	if err != nil {
		t.Fatal(err)
	}
	shop, err := demoshop.New(curText)
	if err != nil {
		t.Fatal(err)
	}
	hook := &capturedHook{}
	var returns capturedHook // the shop's requests that carry signed headers
	mux := http.NewServeMux()
	mux.Handle("/payments/webhook", hook)
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Checkout-Signature") != "" {
			h := r.Header.Clone()
			h.Set(":method", r.Method)
			h.Set(":path", r.URL.EscapedPath())
			returns.mu.Lock()
			returns.calls = append(returns.calls, capturedCall{header: h})
			returns.mu.Unlock()
		}
		shop.ServeHTTP(w, r)
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	base := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	storage := filepath.Join(t.TempDir(), "checkout.db")
	config := func(until time.Time) string {
		cf := caddyfile(storage, admin, base, curText, srv.URL+"/payments/webhook", strings.TrimPrefix(srv.URL, "http://"))
		return strings.Replace(cf, "\t\tsandbox\n", "\t\tprevious_secret "+oldText+" until "+until.UTC().Format(time.RFC3339)+
			"\n\t\tintake headers signed_link api\n\t\tsandbox\n", 1)
	}
	loadCaddy(t, config(time.Now().Add(time.Hour)))
	t.Cleanup(func() { _ = caddy.Stop() })
	c := noRedirectClient()

	link := func(by sign.Secret, id string) int {
		t.Helper()
		q := url.Values{"order": {id}, "amount": {"5.00"}, "currency": {"USD"}}
		r, err := c.Get("http://" + base + "/_checkout/start?" + by.SignLink(q, time.Now().Add(time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	api := func(bearer, id string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+base+"/_checkout/api/orders",
			strings.NewReader(`{"order_id":"`+id+`","amount":"5.00","currency":"USD"}`))
		req.Header.Set("Authorization", "Bearer "+bearer)
		req.Header.Set("Content-Type", "application/json")
		r, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}

	// In the window: both secrets open links and the API.
	for name, code := range map[string]int{
		"link signed with the previous secret": link(oldSecret, "L-old"),
		"link signed with the new secret":      link(curSecret, "L-new"),
	} {
		if code != http.StatusSeeOther {
			t.Errorf("%s, in the window: %d, want 303", name, code)
		}
	}
	for name, code := range map[string]int{
		"API call with the previous secret": api(oldText, "A-old"),
		"API call with the new secret":      api(curText, "A-new"),
	} {
		if code != http.StatusCreated {
			t.Errorf("%s, in the window: %d, want 201", name, code)
		}
	}

	// A paid order's callbacks carry both signatures.
	payWithSandbox(t, c, "http://"+base, "tee", "paid")
	waitFor(t, 10*time.Second, "the order.paid callback", func() bool { return paidCallback(hook.all()) != nil })
	paid := paidCallback(hook.all())
	if n := len(strings.Fields(paid.header.Get("webhook-signature"))); n != 2 {
		t.Fatalf("callback in the window has %d signatures, want 2", n)
	}
	var cases []npmCase
	for name, s := range map[string]sign.Secret{"previous": oldSecret, "new": curSecret} {
		if _, err := s.VerifyWebhook(paid.header, paid.body, time.Now()); err != nil {
			t.Errorf("a shop verifying with the %s secret refuses the callback: %v", name, err)
		}
		text := map[string]string{"previous": oldText, "new": curText}[name]
		cases = append(cases, npmCaseOf("verified with the "+name+" secret", text, paid))
	}
	checkWithNPM(t, cases)

	// The paid return's X-Checkout-Signature is the new secret's, one v1
	// value, so that success pages written for one keep working: the
	// shop checks it with either secret in the window.
	back := returns.all()
	if len(back) == 0 {
		t.Fatal("the shop got no return with signed headers")
	}
	if sig := back[0].header.Get("X-Checkout-Signature"); strings.Count(sig, "v1=") != 1 ||
		curSecret.VerifyHeaders(sig, shopFields(back[0].header), time.Now(), 5*time.Minute) != nil {
		t.Errorf("return headers in the window %q: want one v1 value, the new secret's", sig)
	}

	// The window is over: the previous secret opens nothing.
	loadCaddy(t, config(time.Now().Add(-time.Second)))
	if code := link(oldSecret, "L-old-2"); code == http.StatusSeeOther {
		t.Errorf("a link signed with the previous secret after the window: %d, want refused", code)
	}
	if code := api(oldText, "A-old-2"); code != http.StatusUnauthorized {
		t.Errorf("an API call with the previous secret after the window: %d, want 401", code)
	}
	if code := link(curSecret, "L-new-2"); code != http.StatusSeeOther {
		t.Errorf("a link signed with the new secret after the window: %d, want 303", code)
	}
	before := len(hook.all())
	payWithSandbox(t, c, "http://"+base, "mug", "paid")
	waitFor(t, 10*time.Second, "the second order.paid callback", func() bool { return paidCallback(hook.all()[before:]) != nil })
	late := paidCallback(hook.all()[before:])
	if n := len(strings.Fields(late.header.Get("webhook-signature"))); n != 1 {
		t.Fatalf("callback after the window has %d signatures, want 1", n)
	}
	if _, err := oldSecret.VerifyWebhook(late.header, late.body, time.Now()); err == nil {
		t.Errorf("a callback after the window verifies with the previous secret")
	}
	checkWithNPM(t, []npmCase{npmCaseOf("after the window, verified with the new secret", curText, late)})
	back = returns.all()[len(back):]
	if len(back) == 0 {
		t.Fatal("the shop got no second return with signed headers")
	}
	sig := back[0].header.Get("X-Checkout-Signature")
	if curSecret.VerifyHeaders(sig, shopFields(back[0].header), time.Now(), 5*time.Minute) != nil ||
		oldSecret.VerifyHeaders(sig, shopFields(back[0].header), time.Now(), 5*time.Minute) == nil {
		t.Errorf("return headers after the window %q: want verified by the new secret only", sig)
	}
}

// shopFields are the signed fields of a captured shop request.
func shopFields(h http.Header) sign.Fields {
	return sign.Fields{Method: h.Get(":method"), Path: h.Get(":path"), Order: h.Get("X-Checkout-Order"),
		Status: h.Get("X-Checkout-Status"), Amount: h.Get("X-Checkout-Amount"),
		Currency: h.Get("X-Checkout-Currency"), Transaction: h.Get("X-Checkout-Transaction")}
}

// TestRotationKeepsReceiptsUntilTheEnd: a paywall receipt bought before
// the secret was rotated still opens its path while previous_secret
// holds the old secret, and opens nothing once its window is over; one
// bought in the window lasts past it.
func TestRotationKeepsReceiptsUntilTheEnd(t *testing.T) {
	oldText, curText := sign.NewSecret(), sign.NewSecret()
	cb := newShopRecorder(t, curText)
	hook := httptest.NewServer(cb)
	t.Cleanup(hook.Close)
	base := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	storage := "storage bolt " + filepath.Join(t.TempDir(), "checkout.db")
	root := paywallFiles(t)
	config := func(secret, previous string) string {
		cf := paywallCaddyfile(storage, admin, base, root, secret, hook.URL)
		if previous != "" {
			cf = strings.Replace(cf, "\t\tsandbox\n", "\t\tprevious_secret "+previous+"\n\t\tsandbox\n", 1)
		}
		return cf
	}
	prog := noRedirectClient()
	buy := func(path string) string {
		t.Helper()
		r, body := visit(t, prog, "http://"+base+path)
		pr := jsonOf[price402](t, r, body)
		if r.StatusCode != http.StatusPaymentRequired || pr.PayURL == "" {
			t.Fatalf("%s without a receipt: %d %+v", path, r.StatusCode, pr)
		}
		payAtPayURL(t, noRedirectClient(), base, pr.PayURL)
		r, body = visit(t, prog, pr.ReceiptURL)
		rc := jsonOf[receiptJSON](t, r, body)
		if r.StatusCode != http.StatusOK || rc.Receipt == "" {
			t.Fatalf("receipt_url once paid: %d %+v", r.StatusCode, rc)
		}
		return rc.Receipt
	}
	opens := func(path, receipt string) (bool, string) {
		t.Helper()
		r, body := visit(t, prog, "http://"+base+path, "Authorization", "Bearer "+receipt)
		if r.StatusCode == http.StatusOK && strings.HasPrefix(body, "%PDF") {
			return true, ""
		}
		return false, fmt.Sprintf("%d %s", r.StatusCode, body)
	}

	loadCaddy(t, config(oldText, ""))
	t.Cleanup(func() { _ = caddy.Stop() })
	before := buy("/downloads/ebook.pdf")

	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	loadCaddy(t, config(curText, oldText+" until "+until))
	if ok, why := opens("/downloads/ebook.pdf", before); !ok {
		t.Errorf("a receipt from before the rotation, in the window: %s, want the file", why)
	}
	during := buy("/reports/q3.pdf")

	loadCaddy(t, config(curText, oldText+" until "+time.Now().Add(-time.Second).UTC().Format(time.RFC3339)))
	if ok, why := opens("/downloads/ebook.pdf", before); ok || !strings.Contains(why, "not valid") {
		t.Errorf("a receipt from before the rotation, after the window: %s, want 402 not valid", why)
	}
	if ok, why := opens("/reports/q3.pdf", during); !ok {
		t.Errorf("a receipt bought in the window, after it: %s, want the file", why)
	}
}

// paidCallback is the first order.paid callback of calls, or nil.
func paidCallback(calls []capturedCall) *capturedCall {
	for i := range calls {
		var ev struct{ Type string }
		if json.Unmarshal(calls[i].body, &ev) == nil && ev.Type == "order.paid" {
			return &calls[i]
		}
	}
	return nil
}

// npmCase is one callback for internal/interop/node/verify.js, which
// checks it with the standardwebhooks npm package and must accept it.
type npmCase struct {
	Name    string            `json:"name"`
	Secret  string            `json:"secret"`
	Headers map[string]string `json:"headers"`
	BodyB64 string            `json:"body_b64"`
}

func npmCaseOf(name, secret string, c *capturedCall) npmCase {
	hs := map[string]string{}
	for _, k := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		hs[k] = c.header.Get(k)
	}
	return npmCase{Name: name, Secret: secret, Headers: hs, BodyB64: base64.StdEncoding.EncodeToString(c.body)}
}

// checkWithNPM runs the npm standardwebhooks verifier over cases; every
// one must be accepted. Without node or the package (installed by
// scripts/test.sh) it is skipped, except in CI.
func checkWithNPM(t *testing.T, cases []npmCase) {
	t.Helper()
	dir, err := filepath.Abs("../interop/node")
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "standardwebhooks", "package.json"))
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node and the standardwebhooks package (npm ci in internal/interop/node) are needed in CI: %v", err)
		}
		t.Logf("skipping the npm verifier: %v (run scripts/test.sh, or npm ci in internal/interop/node)", err)
		return
	}
	in, _ := json.Marshal(cases)
	cmd := exec.Command(node, "verify.js")
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node verify.js: %v", err)
	}
	var verdicts []struct {
		Name  string `json:"name"`
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &verdicts); err != nil || len(verdicts) != len(cases) {
		t.Fatalf("node verify.js printed %q: %v", out, err)
	}
	for _, v := range verdicts {
		if !v.OK {
			t.Errorf("the npm standardwebhooks verifier refuses the callback %s: %s", v.Name, v.Error)
		}
	}
}
