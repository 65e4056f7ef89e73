// The hosted page as a customer's browser uses it.
package stripetest_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-checkout/checkout/internal/stripetest"
)

// customer is an HTTP client that, like a test looking at each step, does not
// follow redirects.
var customer = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}}

func page(t *testing.T, method, u, action string) (int, string, string) {
	t.Helper()
	var resp *http.Response
	var err error
	if method == "POST" {
		resp, err = customer.PostForm(u, url.Values{"action": {action}})
	} else {
		resp, err = customer.Get(u)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Location")
}

func TestHostedPagePay(t *testing.T) {
	srv := stripetest.New(t)
	sc := newClient(srv)
	cs := mustCreate(t, sc, sessionParams("jpy", 500, 2))

	status, body, _ := page(t, "GET", cs.URL, "")
	if status != 200 || !strings.Contains(body, "¥1000") || !strings.Contains(body, `value="pay"`) || !strings.Contains(body, `value="pay_later"`) {
		t.Errorf("open page: %d\n%s", status, body)
	}
	status, _, loc := page(t, "POST", cs.URL, "pay")
	if want := "https://shop.example/done?session=" + cs.ID; status != http.StatusSeeOther || loc != want {
		t.Errorf("paying: %d to %q, want 303 to %q", status, loc, want)
	}
	if snap, _ := srv.Session(cs.ID); snap.PaymentStatus != "paid" {
		t.Errorf("after paying on the page: %+v", snap)
	}
	status, body, _ = page(t, "GET", cs.URL, "")
	if status != 200 || !strings.Contains(body, "already paid") || strings.Contains(body, "<form") {
		t.Errorf("paid page: %d\n%s", status, body)
	}
	if status, _, _ := page(t, "POST", cs.URL, "pay"); status != 200 || len(srv.Events()) != 1 {
		t.Errorf("paying twice: %d, %d events", status, len(srv.Events()))
	}
}

func TestHostedPagePayLaterCancelExpired(t *testing.T) {
	srv := stripetest.New(t)
	sc := newClient(srv)

	later := mustCreate(t, sc, sessionParams("jpy", 500, 1))
	if status, _, loc := page(t, "POST", later.URL, "pay_later"); status != http.StatusSeeOther || !strings.Contains(loc, later.ID) {
		t.Errorf("pay later: %d to %q", status, loc)
	}
	if snap, _ := srv.Session(later.ID); snap.Status != "complete" || snap.PaymentStatus != "unpaid" {
		t.Errorf("after pay later: %+v", snap)
	}

	cancel := mustCreate(t, sc, sessionParams("jpy", 500, 1))
	if status, _, loc := page(t, "POST", cancel.URL, "cancel"); status != http.StatusSeeOther || loc != "https://shop.example/cart" {
		t.Errorf("cancel: %d to %q", status, loc)
	}
	if snap, _ := srv.Session(cancel.ID); snap.Status != "open" {
		t.Errorf("cancelling on the page changed the session: %+v", snap)
	}

	if _, err := srv.Expire(cancel.ID); err != nil {
		t.Fatal(err)
	}
	if status, body, _ := page(t, "GET", cancel.URL, ""); status != http.StatusGone || !strings.Contains(body, "expired") {
		t.Errorf("expired page: %d\n%s", status, body)
	}
	if status, _, _ := page(t, "POST", cancel.URL, "pay"); status != http.StatusGone {
		t.Errorf("paying an expired session: %d", status)
	}
	if status, _, _ := page(t, "GET", srv.URL+"/pay/cs_test_nope", ""); status != http.StatusNotFound {
		t.Errorf("unknown session page: %d", status)
	}
}
