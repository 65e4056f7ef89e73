// The ticket's life through the API: approval by the payer, processing by
// the shop (once, however often it is called), cancellation, expiry, and
// the errors that leave the money where it was.
package cyclostest_test

import (
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/internal/cyclostest"
)

func TestApproveWithCallbacksMovesNoMoney(t *testing.T) {
	for _, method := range []string{"POST", "GET"} {
		t.Run(method, func(t *testing.T) {
			srv := cyclostest.New(t, cyclostest.WithWebhookMethod(method))
			srv.AddUser("alice", "pw", "100")
			sh := newShop(t)
			num := createTicket(t, srv, order(sh))

			r := approveAPI(t, srv, num, "alice", "pw").wantStatus(t, http.StatusOK)
			if r.str("ticketStatus") != "approved" || r.str("ticketNumber") != num || r.has("transaction") ||
				r.str("successUrl") != "https://shop.example/success?lang=en" {
				t.Errorf("approval result: %s", r.raw)
			}
			if srv.Balance("alice") != "100.00" || srv.Balance("shop") != "0.00" || srv.Payments() != 0 {
				t.Errorf("money moved on approval: alice %s, shop %s, %d payments", srv.Balance("alice"), srv.Balance("shop"), srv.Payments())
			}

			srv.WaitWebhooks()
			calls := sh.received()
			if len(calls) != 1 {
				t.Fatalf("webhook received %d calls, want 1", len(calls))
			}
			c := calls[0]
			q := url.Values(c.query)
			if c.method != method || c.path != "/webhook/cyclos" || q.Get("site") != "main" || q.Get("orderId") != "1234567" || q.Get("ticketNumber") != num {
				t.Errorf("webhook call = %+v", c)
			}
			hooks := srv.Webhooks()
			if len(hooks) != 1 || hooks[0].Status != 200 || hooks[0].Err != nil || hooks[0].Method != method || hooks[0].Ticket != num {
				t.Errorf("Webhooks() = %+v", hooks)
			}
		})
	}
}

// Without successUrl and successWebhook nobody would process the ticket, so
// approving pays at once.
func TestApproveWithoutCallbacksPays(t *testing.T) {
	srv := cyclostest.New(t)
	srv.AddUser("alice", "pw", "100")
	num := createTicket(t, srv, map[string]any{"amount": "30.25", "description": "Counter sale"})

	r := approveAPI(t, srv, num, "alice", "pw").wantStatus(t, http.StatusOK)
	if r.str("ticketStatus") != "processed" || r.str("transaction", "amount") != "30.25" || r.str("transaction", "kind") != "payment" {
		t.Errorf("approval result: %s", r.raw)
	}
	if srv.Balance("alice") != "69.75" || srv.Balance("shop") != "30.25" || srv.Payments() != 1 {
		t.Errorf("alice %s, shop %s, %d payments", srv.Balance("alice"), srv.Balance("shop"), srv.Payments())
	}
}

func TestApproveErrors(t *testing.T) {
	srv := cyclostest.New(t)
	srv.AddUser("alice", "pw", "100")
	srv.AddUser("bob", "pw2", "100")
	srv.AddUser("poor", "pw3", "10")
	sh := newShop(t)

	num := createTicket(t, srv, order(sh))
	fixed := order(sh)
	fixed["payer"] = "alice"
	fixedNum := createTicket(t, srv, fixed)

	tests := []struct {
		name   string
		number string
		h      headers
		status int
		code   string
	}{
		{"confirmation/missing", num, basic("alice", "pw"), 403, "invalidPassword"},
		{"confirmation/wrong", num, basic("alice", "pw").with(headers{"confirmationPassword": "nope"}), 403, "invalidPassword"},
		{"fixed-payer/other-user", fixedNum, basic("bob", "pw2").with(headers{"confirmationPassword": "pw2"}), 403, "permissionDenied"},
		{"own-ticket", num, token(srv).with(headers{"confirmationPassword": "1234"}), 403, "illegalAction"},
		{"balance", num, basic("poor", "pw3").with(headers{"confirmationPassword": "pw3"}), 500, "insufficientBalance"},
		{"unknown-ticket", "nosuchticket", basic("alice", "pw").with(headers{"confirmationPassword": "pw"}), 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, srv, "POST", "/api/tickets/"+tt.number+"/approve", tt.h, nil).wantStatus(t, tt.status)
			if tt.code != "" && r.str("code") != tt.code {
				t.Errorf("code = %q, want %q; body %s", r.str("code"), tt.code, r.raw)
			}
			if tt.status == 500 && (r.str("kind") != "payment" || r.str("exceptionType") == "") {
				t.Errorf("PaymentError shape: %s", r.raw)
			}
		})
	}
	for _, n := range []string{num, fixedNum} {
		if tk, _ := srv.Ticket(n); tk.Status != cyclostest.StatusOpen {
			t.Errorf("ticket %s is %s after refused approvals, want open", n, tk.Status)
		}
	}

	approveAPI(t, srv, fixedNum, "alice", "pw").wantStatus(t, http.StatusOK)
	r := approveAPI(t, srv, fixedNum, "alice", "pw").wantStatus(t, http.StatusForbidden)
	if r.str("code") != "illegalAction" {
		t.Errorf("second approval: %s", r.raw)
	}
	srv.WaitWebhooks()
}

func TestProcessPaysOnce(t *testing.T) {
	srv := cyclostest.New(t)
	srv.AddUser("alice", "pw", "100")
	sh := newShop(t)
	num := createTicket(t, srv, order(sh))
	approveAPI(t, srv, num, "alice", "pw").wantStatus(t, http.StatusOK)

	const n = 20
	results := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = processAPI(t, srv, num, "1234567") })
	}
	wg.Wait()

	actually, txNumber := 0, ""
	for _, r := range results {
		r.wantStatus(t, http.StatusOK)
		if r.json["actuallyProcessed"] == true {
			actually++
		}
		tn := r.str("transaction", "transactionNumber")
		if tn == "" || (txNumber != "" && tn != txNumber) {
			t.Fatalf("transaction numbers differ or are missing: %q vs %q", tn, txNumber)
		}
		txNumber = tn
		if r.str("transaction", "amount") != "75.00" || r.str("ticketNumber") != num {
			t.Errorf("result: %s", r.raw)
		}
	}
	if actually != 1 {
		t.Errorf("%d results with actuallyProcessed true, want 1", actually)
	}
	if srv.Payments() != 1 || srv.Balance("alice") != "25.00" || srv.Balance("shop") != "75.00" {
		t.Errorf("%d payments, alice %s, shop %s", srv.Payments(), srv.Balance("alice"), srv.Balance("shop"))
	}
	if loc := results[0].header.Get("Location"); loc == "" {
		t.Error("process answered no Location")
	}

	v := call(t, srv, "GET", "/api/tickets/"+num, token(srv), nil).wantStatus(t, http.StatusOK)
	if v.str("ticketStatus") != "processed" || v.str("transaction", "transactionNumber") != txNumber ||
		v.str("transaction", "from", "user", "display") != "alice" || v.str("processDate") == "" || v.has("approveUrl") {
		t.Errorf("view after processing: %s", v.raw)
	}
	tk, _ := srv.Ticket(num)
	if tk.Status != cyclostest.StatusProcessed || tk.ProcessCount != n || tk.TransactionNumber != txNumber || tk.ApprovedBy != "alice" {
		t.Errorf("snapshot = %+v", tk)
	}
	srv.WaitWebhooks()
}

func TestProcessRefusals(t *testing.T) {
	srv := cyclostest.New(t)
	srv.AddUser("alice", "pw", "100")
	srv.AddUser("bob", "pw2", "100")
	sh := newShop(t)
	num := createTicket(t, srv, order(sh))

	t.Run("open", func(t *testing.T) {
		r := processAPI(t, srv, num, "1234567").wantStatus(t, http.StatusForbidden)
		if r.str("code") != "illegalAction" {
			t.Errorf("body: %s", r.raw)
		}
	})
	approveAPI(t, srv, num, "alice", "pw").wantStatus(t, http.StatusOK)
	for name, orderID := range map[string]string{"order/wrong": "7654321", "order/missing": ""} {
		t.Run(name, func(t *testing.T) {
			r := processAPI(t, srv, num, orderID).wantStatus(t, http.StatusUnprocessableEntity)
			errs, _ := r.json["propertyErrors"].(map[string]any)
			if r.str("code") != "validation" || errs["orderId"] == nil {
				t.Errorf("body: %s", r.raw)
			}
		})
	}
	t.Run("not-the-receiver", func(t *testing.T) {
		r := call(t, srv, "POST", "/api/tickets/"+num+"/process?orderId=1234567", basic("bob", "pw2"), nil).wantStatus(t, http.StatusForbidden)
		if r.str("code") != "permissionDenied" {
			t.Errorf("body: %s", r.raw)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		processAPI(t, srv, "nosuchticket", "1").wantStatus(t, http.StatusNotFound)
	})
	if srv.Payments() != 0 || srv.Balance("alice") != "100.00" {
		t.Fatalf("refused process calls moved money: %d payments, alice %s", srv.Payments(), srv.Balance("alice"))
	}
	if tk, _ := srv.Ticket(num); tk.Status != cyclostest.StatusApproved || tk.ProcessCount != 0 {
		t.Fatalf("snapshot after refusals = %+v", tk)
	}
	processAPI(t, srv, num, "1234567").wantStatus(t, http.StatusOK)

	noOrder := createTicket(t, srv, map[string]any{"amount": "1", "successUrl": "https://shop.example/ok"})
	approveAPI(t, srv, noOrder, "alice", "pw").wantStatus(t, http.StatusOK)
	processAPI(t, srv, noOrder, "invented").wantStatus(t, http.StatusUnprocessableEntity)
	processAPI(t, srv, noOrder, "").wantStatus(t, http.StatusOK)
	srv.WaitWebhooks()
}

// The balance is checked again when the shop processes: the payer may have
// spent it since approving.
func TestProcessInsufficientBalance(t *testing.T) {
	srv := cyclostest.New(t)
	srv.AddUser("alice", "pw", "100")
	first := createTicket(t, srv, map[string]any{"amount": "60", "successUrl": "https://shop.example/ok"})
	second := createTicket(t, srv, map[string]any{"amount": "60", "successUrl": "https://shop.example/ok"})
	approveAPI(t, srv, first, "alice", "pw").wantStatus(t, http.StatusOK)
	approveAPI(t, srv, second, "alice", "pw").wantStatus(t, http.StatusOK)

	processAPI(t, srv, first, "").wantStatus(t, http.StatusOK)
	r := processAPI(t, srv, second, "").wantStatus(t, http.StatusInternalServerError)
	if r.str("code") != "insufficientBalance" || r.str("kind") != "payment" {
		t.Errorf("body: %s", r.raw)
	}
	if tk, _ := srv.Ticket(second); tk.Status != cyclostest.StatusApproved {
		t.Errorf("second ticket is %s, want still approved", tk.Status)
	}
	if srv.Payments() != 1 || srv.Balance("alice") != "40.00" || srv.Balance("shop") != "60.00" {
		t.Errorf("%d payments, alice %s, shop %s", srv.Payments(), srv.Balance("alice"), srv.Balance("shop"))
	}
}

func TestCancel(t *testing.T) {
	srv := cyclostest.New(t)
	srv.AddUser("alice", "pw", "100")
	cancel := func(num string, h headers) response {
		return call(t, srv, "POST", "/api/tickets/"+num+"/cancel", h, nil)
	}
	body := map[string]any{"amount": "5", "successUrl": "https://shop.example/ok"}

	open := createTicket(t, srv, body)
	r := cancel(open, basic("alice", "pw")).wantStatus(t, http.StatusForbidden)
	if r.str("code") != "permissionDenied" {
		t.Errorf("cancel by another user: %s", r.raw)
	}
	r = cancel(open, token(srv)).wantStatus(t, http.StatusNoContent)
	if len(r.raw) != 0 {
		t.Errorf("204 with body %s", r.raw)
	}
	if tk, _ := srv.Ticket(open); tk.Status != cyclostest.StatusCanceled {
		t.Errorf("status = %s, want canceled", tk.Status)
	}
	if r := cancel(open, token(srv)).wantStatus(t, http.StatusForbidden); r.str("code") != "illegalAction" {
		t.Errorf("second cancel: %s", r.raw)
	}
	if r := approveAPI(t, srv, open, "alice", "pw").wantStatus(t, http.StatusForbidden); r.str("code") != "illegalAction" {
		t.Errorf("approving a canceled ticket: %s", r.raw)
	}

	approved := createTicket(t, srv, body)
	approveAPI(t, srv, approved, "alice", "pw").wantStatus(t, http.StatusOK)
	cancel(approved, token(srv)).wantStatus(t, http.StatusForbidden)

	processed := createTicket(t, srv, map[string]any{"amount": "5"})
	approveAPI(t, srv, processed, "alice", "pw").wantStatus(t, http.StatusOK)
	cancel(processed, token(srv)).wantStatus(t, http.StatusForbidden)
	cancel("nosuchticket", token(srv)).wantStatus(t, http.StatusNotFound)
}

func TestExpiry(t *testing.T) {
	clk := newClock()
	srv := cyclostest.New(t, cyclostest.WithClock(clk.Now))
	srv.AddUser("alice", "pw", "100")
	day := createTicket(t, srv, map[string]any{"amount": "5", "successUrl": "https://shop.example/ok"})
	short := createTicket(t, srv, map[string]any{"amount": "5", "successUrl": "https://shop.example/ok",
		"expiresAfter": map[string]any{"amount": 2, "field": "hours"}})
	approvedEarly := createTicket(t, srv, map[string]any{"amount": "5", "successUrl": "https://shop.example/ok"})
	approveAPI(t, srv, approvedEarly, "alice", "pw").wantStatus(t, http.StatusOK)

	clk.Advance(2 * time.Hour)
	if v := call(t, srv, "GET", "/api/tickets/"+short, token(srv), nil); v.str("ticketStatus") != "expired" || v.has("approveUrl") {
		t.Errorf("2h ticket at 2h: %s", v.raw)
	}
	if v := call(t, srv, "GET", "/api/tickets/"+day, token(srv), nil); v.str("ticketStatus") != "open" {
		t.Errorf("1 day ticket at 2h: %s", v.raw)
	}

	clk.Advance(22 * time.Hour)
	if tk, _ := srv.Ticket(day); tk.Status != cyclostest.StatusExpired {
		t.Errorf("1 day ticket at 24h is %s, want expired", tk.Status)
	}
	approveAPI(t, srv, day, "alice", "pw").wantStatus(t, http.StatusForbidden)
	call(t, srv, "POST", "/api/tickets/"+day+"/cancel", token(srv), nil).wantStatus(t, http.StatusForbidden)
	processAPI(t, srv, day, "").wantStatus(t, http.StatusForbidden)

	// An approved ticket waits for the shop: only open tickets expire.
	processAPI(t, srv, approvedEarly, "").wantStatus(t, http.StatusOK)
}
