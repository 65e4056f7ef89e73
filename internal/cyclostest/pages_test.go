// The payer's approval page, clicked through as a browser would, and the
// Go controls that stand in for the customer and the administrator.
package cyclostest_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/internal/cyclostest"
)

// page is a page answer; redirects are not followed.
type page struct {
	status   int
	location string
	body     string
}

var browser = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func pageGet(t *testing.T, u string) page {
	t.Helper()
	resp, err := browser.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return readPage(t, resp)
}

func pagePost(t *testing.T, u string, form url.Values) page {
	t.Helper()
	resp, err := browser.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	return readPage(t, resp)
}

func readPage(t *testing.T, resp *http.Response) page {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{resp.StatusCode, resp.Header.Get("Location"), string(b)}
}

func approveForm(login, password string) url.Values {
	return url.Values{"username": {login}, "password": {password}, "action": {"approve"}}
}

func TestApprovalPage(t *testing.T) {
	for _, tt := range []struct {
		name   string
		method string
		path   func(srv *cyclostest.Server, num string) string
	}{
		{"classic-pay-path/post-webhook", "POST", func(srv *cyclostest.Server, num string) string { return srv.URL + "/pay/" + num }},
		{"approveUrl/get-webhook", "GET", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := cyclostest.New(t, cyclostest.WithWebhookMethod(tt.method))
			srv.AddUser("alice", "pw", "100")
			sh := newShop(t)
			created := call(t, srv, "POST", "/api/tickets", token(srv), order(sh)).wantStatus(t, http.StatusCreated)
			num := created.str("ticketNumber")
			payURL := created.str("approveUrl")
			if tt.path != nil {
				payURL = tt.path(srv, num)
			}

			form := pageGet(t, payURL)
			if form.status != 200 || !strings.Contains(form.body, "75.00") || !strings.Contains(form.body, "Order 1234567") ||
				!strings.Contains(form.body, `name="username"`) || !strings.Contains(form.body, `value="approve"`) || !strings.Contains(form.body, `value="cancel"`) {
				t.Fatalf("form page: %d\n%s", form.status, form.body)
			}

			bad := pagePost(t, payURL, approveForm("alice", "wrong"))
			if bad.status != http.StatusUnauthorized || !strings.Contains(bad.body, `name="password"`) || strings.Contains(bad.body, "wrong") {
				t.Errorf("bad credentials: %d\n%s", bad.status, bad.body)
			}
			if tk, _ := srv.Ticket(num); tk.Status != cyclostest.StatusOpen {
				t.Fatalf("status after bad credentials = %s", tk.Status)
			}

			ok := pagePost(t, payURL, approveForm("alice", "pw"))
			want := "https://shop.example/success?lang=en&orderId=1234567&ticketNumber=" + num
			if ok.status != http.StatusSeeOther || ok.location != want {
				t.Fatalf("approve: %d → %q, want 303 → %q", ok.status, ok.location, want)
			}
			srv.WaitWebhooks()
			calls := sh.received()
			if len(calls) != 1 || calls[0].method != tt.method || url.Values(calls[0].query).Get("ticketNumber") != num ||
				url.Values(calls[0].query).Get("orderId") != "1234567" {
				t.Errorf("webhook calls = %+v", calls)
			}
			if tk, _ := srv.Ticket(num); tk.Status != cyclostest.StatusApproved || tk.ApprovedBy != "alice" || srv.Payments() != 0 {
				t.Errorf("after approval: %+v, %d payments", tk, srv.Payments())
			}

			again := pageGet(t, payURL)
			if again.status != 200 || !strings.Contains(again.body, "already approved") {
				t.Errorf("page of an approved ticket: %d\n%s", again.status, again.body)
			}
		})
	}
}

func TestApprovalPageCancel(t *testing.T) {
	srv := cyclostest.New(t)
	sh := newShop(t)
	num := createTicket(t, srv, order(sh))
	p := pagePost(t, srv.URL+"/pay/"+num, url.Values{"action": {"cancel"}})
	want := "https://shop.example/cancel?orderId=1234567&ticketNumber=" + num
	if p.status != http.StatusSeeOther || p.location != want {
		t.Errorf("cancel: %d → %q, want 303 → %q", p.status, p.location, want)
	}
	if tk, _ := srv.Ticket(num); tk.Status != cyclostest.StatusOpen {
		t.Errorf("status after the customer's cancel = %s, want open (only the shop cancels)", tk.Status)
	}
	if len(sh.received()) != 0 {
		t.Error("the customer's cancel called the webhook")
	}
}

func TestApprovalPageRefusals(t *testing.T) {
	clk := newClock()
	srv := cyclostest.New(t, cyclostest.WithClock(clk.Now))
	srv.AddUser("poor", "pw", "1")
	srv.AddUser("alice", "pw", "100")
	sh := newShop(t)

	num := createTicket(t, srv, order(sh))
	p := pagePost(t, srv.URL+"/pay/"+num, approveForm("poor", "pw"))
	if p.status != http.StatusPaymentRequired || !strings.Contains(p.body, "enough balance") || !strings.Contains(p.body, `name="password"`) {
		t.Errorf("insufficient balance: %d\n%s", p.status, p.body)
	}
	if tk, _ := srv.Ticket(num); tk.Status != cyclostest.StatusOpen || srv.Balance("poor") != "1.00" {
		t.Errorf("after a refused payment: %+v, balance %s", tk, srv.Balance("poor"))
	}
	if p := pagePost(t, srv.URL+"/pay/"+num, approveForm("shop", "1234")); p.status != http.StatusForbidden {
		t.Errorf("the shop approving its own ticket: %d", p.status)
	}

	canceled := createTicket(t, srv, order(sh))
	call(t, srv, "POST", "/api/tickets/"+canceled+"/cancel", token(srv), nil).wantStatus(t, http.StatusNoContent)
	for _, p := range []page{pageGet(t, srv.URL+"/pay/"+canceled), pagePost(t, srv.URL+"/pay/"+canceled, approveForm("alice", "pw"))} {
		if p.status != http.StatusGone || !strings.Contains(p.body, "canceled") {
			t.Errorf("canceled ticket page: %d\n%s", p.status, p.body)
		}
	}

	clk.Advance(25 * time.Hour)
	if p := pageGet(t, srv.URL+"/pay/"+num); p.status != http.StatusGone || !strings.Contains(p.body, "expired") {
		t.Errorf("expired ticket page: %d\n%s", p.status, p.body)
	}
	if p := pageGet(t, srv.URL+"/pay/nosuchticket"); p.status != http.StatusNotFound {
		t.Errorf("unknown ticket page: %d", p.status)
	}
	if len(sh.received()) != 0 || srv.Payments() != 0 {
		t.Errorf("refusals called the webhook or paid")
	}
}

// Without successUrl the page says the payment is done; without successUrl
// and successWebhook the approval is the payment.
func TestApprovalPageWithoutSuccessURL(t *testing.T) {
	srv := cyclostest.New(t)
	srv.AddUser("alice", "pw", "100")
	num := createTicket(t, srv, map[string]any{"amount": "20"})
	p := pagePost(t, srv.URL+"/pay/"+num, approveForm("alice", "pw"))
	if p.status != http.StatusOK || !strings.Contains(p.body, "approved") {
		t.Errorf("done page: %d\n%s", p.status, p.body)
	}
	if tk, _ := srv.Ticket(num); tk.Status != cyclostest.StatusProcessed || srv.Balance("shop") != "20.00" {
		t.Errorf("after approval: %+v, shop %s", tk, srv.Balance("shop"))
	}
}

func TestControls(t *testing.T) {
	srv := cyclostest.New(t)
	srv.AddUser("alice", "pw", "100")
	sh := newShop(t)

	t.Run("Approve", func(t *testing.T) {
		num := createTicket(t, srv, order(sh))
		redirect, err := srv.Approve(num, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if want := "https://shop.example/success?lang=en&orderId=1234567&ticketNumber=" + num; redirect != want {
			t.Errorf("redirect = %q, want %q", redirect, want)
		}
		// The webhook was called before Approve returned.
		if calls := sh.received(); len(calls) != 1 || url.Values(calls[0].query).Get("ticketNumber") != num {
			t.Errorf("webhook calls = %+v", calls)
		}
		if _, err := srv.Approve(num, "alice"); err == nil {
			t.Error("approving twice succeeded")
		}
	})
	t.Run("ApproveNoCallbacks", func(t *testing.T) {
		before := len(sh.received())
		num := createTicket(t, srv, order(sh))
		if err := srv.ApproveNoCallbacks(num, "alice"); err != nil {
			t.Fatal(err)
		}
		srv.WaitWebhooks()
		if len(sh.received()) != before {
			t.Error("ApproveNoCallbacks called the webhook")
		}
		if tk, _ := srv.Ticket(num); tk.Status != cyclostest.StatusApproved {
			t.Errorf("status = %s, want approved", tk.Status)
		}
		processAPI(t, srv, num, "1234567").wantStatus(t, http.StatusOK)
	})
	t.Run("AdminCancel", func(t *testing.T) {
		num := createTicket(t, srv, order(sh))
		if err := srv.AdminCancel(num); err != nil {
			t.Fatal(err)
		}
		v := call(t, srv, "GET", "/api/tickets/"+num, token(srv), nil)
		if v.str("ticketStatus") != "canceled" {
			t.Errorf("view after admin cancel: %s", v.raw)
		}
		if err := srv.AdminCancel(num); err == nil {
			t.Error("canceling a canceled ticket succeeded")
		}
		if err := srv.AdminCancel("nosuchticket"); err == nil {
			t.Error("canceling an unknown ticket succeeded")
		}
	})
	t.Run("errors", func(t *testing.T) {
		num := createTicket(t, srv, order(sh))
		if _, err := srv.Approve(num, "nobody"); err == nil {
			t.Error("approving as an unknown user succeeded")
		}
		if _, err := srv.Approve("nosuchticket", "alice"); err == nil {
			t.Error("approving an unknown ticket succeeded")
		}
		if _, ok := srv.Ticket("nosuchticket"); ok {
			t.Error("Ticket found an unknown ticket")
		}
	})
	if n := len(srv.Tickets()); n != 4 {
		t.Errorf("Tickets() lists %d, want 4", n)
	}
}
