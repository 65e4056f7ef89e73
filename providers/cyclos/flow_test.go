// The Cyclos provider driven through the site against the fake Cyclos
// (internal/cyclostest): the customer approves the ticket on Cyclos's
// page, Cyclos calls the webhook and redirects to the success URL at the
// same time, and only processing the ticket with the shop's credentials
// pays the order.
package cyclos_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/handlers/handlerstest"
	"github.com/caddy-checkout/checkout/internal/cyclostest"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/cyclos"
)

type cyclosEnv struct {
	*handlerstest.Env
	fake *cyclostest.Server
	prov *cyclos.Cyclos
}

type cyclosOption struct {
	fake []cyclostest.Option
	prov func(*cyclos.Cyclos)
	site func(*handlers.Config)
}

// newCyclosEnv is the harness's site with Cyclos as its only provider and
// a fake Cyclos where "alice" (password "alice-pw") has 100.00.
func newCyclosEnv(t *testing.T, opts ...cyclosOption) *cyclosEnv {
	t.Helper()
	ce := &cyclosEnv{}
	ce.Env = handlerstest.New(t, func(c *handlers.Config) {
		now := c.Now
		fakeOpts := []cyclostest.Option{cyclostest.WithClock(func() time.Time { return now() })}
		for _, o := range opts {
			fakeOpts = append(fakeOpts, o.fake...)
		}
		ce.fake = cyclostest.New(t, fakeOpts...)
		ce.fake.AddUser("alice", "alice-pw", "100.00")
		ce.prov = &cyclos.Cyclos{URL: ce.fake.URL, AccessClientToken: ce.fake.AccessClientToken()}
		for _, o := range opts {
			if o.prov != nil {
				o.prov(ce.prov)
			}
			if o.site != nil {
				o.site(c)
			}
		}
		c.Providers = []provider.Provider{ce.prov}
	})
	return ce
}

// buyCyclos has the demo shop announce an order and returns where the
// customer is sent to approve the ticket, and the ticket number.
func (ce *cyclosEnv) buyCyclos(c *http.Client, product string) (approve, ticket string) {
	ce.T.Helper()
	r := ce.Post(c, "/buy", url.Values{"product": {product}})
	if r.Code != http.StatusSeeOther || !strings.HasPrefix(r.Location, ce.fake.URL+"/") {
		ce.T.Fatalf("buy: %d %q, want 303 to Cyclos:\n%s", r.Code, r.Location, r.Body)
	}
	return r.Location, r.Location[strings.LastIndex(r.Location, "/")+1:]
}

func (ce *cyclosEnv) refOfTicket(ticket string) string {
	ce.T.Helper()
	tk, ok := ce.fake.Ticket(ticket)
	if !ok {
		ce.T.Fatalf("no ticket %s at Cyclos", ticket)
	}
	return tk.OrderID
}

// approveOnPage is the customer approving on Cyclos's page; it returns
// where Cyclos sends the browser.
func (ce *cyclosEnv) approveOnPage(c *http.Client, page, login, password string) handlerstest.Resp {
	ce.T.Helper()
	if r := ce.Get(c, page); r.Code != http.StatusOK {
		ce.T.Fatalf("Cyclos page: %d", r.Code)
	}
	return ce.Post(c, page, url.Values{"username": {login}, "password": {password}, "action": {"approve"}})
}

func TestCyclosPaidEndToEnd(t *testing.T) {
	ce := newCyclosEnv(t)
	for round := 0; round < 5; round++ { // webhook and success redirect race each time
		c := ce.Client()
		page, ticket := ce.buyCyclos(c, "mug")
		ref := ce.refOfTicket(ticket)
		back := ce.approveOnPage(c, page, "alice", "alice-pw")
		want := ce.Srv.URL + "/_checkout/return/cyclos/" + ref + "?"
		if back.Code != http.StatusSeeOther || !strings.HasPrefix(back.Location, want) ||
			!strings.Contains(back.Location, "ticketNumber="+ticket) || !strings.Contains(back.Location, "orderId="+ref) {
			t.Fatalf("after approving: %d %q, want the success URL with orderId and ticketNumber", back.Code, back.Location)
		}
		ret := ce.Get(c, back.Location)
		if ret.Code != http.StatusSeeOther || !strings.Contains(ret.Location, "checkout_token=") {
			t.Fatalf("return: %d %q\n%s", ret.Code, ret.Location, ret.Body)
		}
		thanks := ce.Get(c, ret.Location)
		if !strings.Contains(thanks.Body, "<strong>paid</strong>: 12.50 USD") {
			t.Fatalf("shop did not see verified paid headers:\n%s", thanks.Body)
		}
		ce.fake.WaitWebhooks()
		o := ce.OrderByRef(ref)
		tk, _ := ce.fake.Ticket(ticket)
		if o.Status != order.Paid || o.PaidWith != "cyclos" || o.Transaction == "" || o.Transaction != tk.TransactionNumber {
			t.Fatalf("order %s via %q txn %q (Cyclos transaction %q)", o.Status, o.PaidWith, o.Transaction, tk.TransactionNumber)
		}
	}
	if n := ce.fake.Payments(); n != 5 {
		t.Fatalf("%d payments at Cyclos for 5 orders", n)
	}
	if b := ce.fake.Balance("alice"); b != "37.50" {
		t.Fatalf("alice has %s, want 37.50", b)
	}
	types := ce.CallbackTypes()
	if len(types) != 5 {
		t.Fatalf("callbacks %v, want one order.paid per order", types)
	}
	for _, w := range ce.fake.Webhooks() {
		if w.Status != http.StatusOK {
			t.Fatalf("Cyclos's webhook call answered %d", w.Status)
		}
	}
}

func TestCyclosTicketRequest(t *testing.T) {
	ce := newCyclosEnv(t, cyclosOption{
		fake: []cyclostest.Option{cyclostest.WithChannel("webshop"), cyclostest.WithCustomFields("invoice_nr", "date")},
		prov: func(p *cyclos.Cyclos) {
			p.Channel, p.PaymentType, p.Payer = "webshop", "member.webshop", "{email}"
			p.CustomValues = map[string]string{"invoice_nr": "INV-{order_id}", "date": "{date}"}
		},
	})
	ce.fake.AddUser("bob@example.com", "bob-pw", "50.00")
	r := ce.API(http.MethodPost, "/_checkout/api/orders", ce.SecretText,
		`{"order_id":"T-1","amount":"20.00","currency":"USD","description":"Tea","email":"bob@example.com","expires_in":"2h"}`)
	if r.Code != http.StatusCreated {
		t.Fatalf("api: %d %s", r.Code, r.Body)
	}
	o, err := ce.Store.Get(context.Background(), order.Key{Site: "shop", ID: "T-1"})
	if err != nil {
		t.Fatal(err)
	}
	ref := o.Current().Ref
	c := ce.Client()
	page := ce.Get(c, "/_checkout/pay/"+ref)
	next := ce.Post(c, "/_checkout/pay/"+ref, url.Values{"csrf": {handlerstest.CSRFOf(t, page.Body)}, "provider": {"cyclos"}}, "Origin", ce.Srv.URL)
	tickets := ce.fake.Tickets()
	if len(tickets) != 1 {
		t.Fatalf("%d tickets", len(tickets))
	}
	tk := tickets[0]
	if !strings.Contains(next.Location, tk.Number) {
		t.Fatalf("customer sent to %q, not to ticket %s", next.Location, tk.Number)
	}
	if tk.Amount != "20.00" || tk.OrderID != ref || tk.Payer != "bob@example.com" || tk.Type != "member.webshop" ||
		tk.SuccessURL != ce.Srv.URL+"/_checkout/return/cyclos/"+ref ||
		tk.SuccessWebhook != ce.Srv.URL+"/_checkout/webhook/cyclos" ||
		tk.CancelURL != ce.Srv.URL+"/_checkout/cyclos/cancel/"+ref ||
		tk.CustomValues["invoice_nr"] != "INV-T-1" || tk.CustomValues["date"] != ce.Clock.Now().UTC().Format(time.RFC3339) {
		t.Fatalf("ticket %+v", tk)
	}
	if d := tk.ExpiresAt.Sub(o.ExpiresAt); d < 0 || d > time.Second {
		t.Fatalf("ticket expires %v, order %v", tk.ExpiresAt, o.ExpiresAt)
	}
	for _, rq := range ce.fake.Requests() {
		if !rq.AccessClientToken || rq.Basic || rq.Channel != "webshop" {
			t.Fatalf("%s %s: token %v basic %v channel %q", rq.Method, rq.Path, rq.AccessClientToken, rq.Basic, rq.Channel)
		}
	}
	// Coming back to the pay page and choosing Cyclos again reuses the ticket.
	page = ce.Get(c, "/_checkout/pay/"+ref)
	again := ce.Post(c, "/_checkout/pay/"+ref, url.Values{"csrf": {handlerstest.CSRFOf(t, page.Body)}, "provider": {"cyclos"}}, "Origin", ce.Srv.URL)
	if again.Location != next.Location || len(ce.fake.Tickets()) != 1 {
		t.Fatalf("second choice went to %q with %d tickets", again.Location, len(ce.fake.Tickets()))
	}
}

func TestCyclos412ServerAndBasicAuth(t *testing.T) {
	ce := newCyclosEnv(t, cyclosOption{
		fake: []cyclostest.Option{cyclostest.WithVersion("4.12")},
		prov: func(p *cyclos.Cyclos) { p.AccessClientToken, p.Username, p.Password = "", "shop", "1234" },
	})
	c := ce.Client()
	page, ticket := ce.buyCyclos(c, "tee")
	if page != ce.fake.URL+"/pay/"+ticket {
		t.Fatalf("customer sent to %q, want the classic <root>/pay/<ticket>", page)
	}
	ce.buyCyclos(ce.Client(), "mug")
	var paths []string
	for _, rq := range ce.fake.Requests() {
		if rq.Method == http.MethodPost {
			paths = append(paths, rq.Path)
		}
		if rq.AccessClientToken || !rq.Basic {
			t.Fatalf("%s %s not with Basic auth", rq.Method, rq.Path)
		}
	}
	if strings.Join(paths, " ") != "/api/self/tickets /api/tickets /api/tickets" {
		t.Fatalf("create requests %v: want one try of the 4.16 path, then the old path only", paths)
	}
	if _, err := ce.fake.Approve(ticket, "alice"); err != nil {
		t.Fatal(err)
	}
	if o := ce.OrderByRef(ce.refOfTicket(ticket)); o.Status != order.Paid {
		t.Fatalf("after approval on a 4.12 server: %s", o.Status)
	}
}

func TestCyclosInsufficientBalance(t *testing.T) {
	ce := newCyclosEnv(t)
	ce.fake.AddUser("carol", "carol-pw", "5.00")
	c := ce.Client()
	page, ticket := ce.buyCyclos(c, "tee") // 25.00
	r := ce.approveOnPage(c, page, "carol", "carol-pw")
	if r.Code == http.StatusSeeOther {
		t.Fatalf("approval without the balance went on to %q", r.Location)
	}
	if !strings.Contains(strings.ToLower(r.Body), "balance") {
		t.Fatalf("Cyclos's page does not say why:\n%s", r.Body)
	}
	ce.fake.WaitWebhooks()
	if o := ce.OrderByRef(ce.refOfTicket(ticket)); o.Status != order.Pending || ce.fake.Payments() != 0 || len(ce.Deliveries()) != 0 {
		t.Fatalf("order %s, %d payments, %d callbacks", o.Status, ce.fake.Payments(), len(ce.Deliveries()))
	}
}

func TestCyclosCallbacksAreOnlyHints(t *testing.T) {
	ce := newCyclosEnv(t)
	_, ticket := ce.buyCyclos(ce.Client(), "mug")
	ref := ce.refOfTicket(ticket)
	_, other := ce.buyCyclos(ce.Client(), "tee")
	otherRef := ce.refOfTicket(other)
	hook := func(method string, q url.Values) int {
		req, _ := http.NewRequest(method, ce.Srv.URL+"/_checkout/webhook/cyclos?"+q.Encode(), nil)
		return ce.Do(nil, req).Code
	}
	for name, q := range map[string]url.Values{
		"unknown ticket":            {"orderId": {ref}, "ticketNumber": {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
		"another order's ticket":    {"orderId": {ref}, "ticketNumber": {other}},
		"another order's reference": {"orderId": {otherRef}, "ticketNumber": {ticket}},
		"ticket still open":         {"orderId": {ref}, "ticketNumber": {ticket}},
	} {
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			if code := hook(m, q); code != http.StatusOK {
				t.Errorf("%s (%s): %d, want 200 and nothing done", name, m, code)
			}
		}
	}
	if code := hook(http.MethodPost, url.Values{"orderId": {ref}}); code != http.StatusBadRequest {
		t.Errorf("webhook without ticketNumber: %d, want 400", code)
	}
	r := ce.Get(ce.Client(), "/_checkout/return/cyclos/"+ref+"?orderId="+ref+"&ticketNumber="+other)
	if r.Code != http.StatusBadRequest {
		t.Errorf("return with another order's ticket: %d, want 400", r.Code)
	}
	r = ce.Get(ce.Client(), "/_checkout/return/cyclos/"+ref+"?orderId="+ref+"&ticketNumber="+ticket)
	if r.Code != http.StatusOK || strings.Contains(r.Location, "checkout_token") {
		t.Errorf("return while the ticket is open: %d %q, want the processing page", r.Code, r.Location)
	}
	for _, rf := range []string{ref, otherRef} {
		if o := ce.OrderByRef(rf); o.Status != order.Pending {
			t.Fatalf("an unverified callback moved an order to %s", o.Status)
		}
	}
	if ce.fake.Payments() != 0 {
		t.Fatal("money moved")
	}
}

func TestCyclosWebhookAndSuccessTogetherPayOnce(t *testing.T) {
	ce := newCyclosEnv(t, cyclosOption{fake: []cyclostest.Option{cyclostest.WithWebhookMethod(http.MethodGet)}})
	_, ticket := ce.buyCyclos(ce.Client(), "mug")
	ref := ce.refOfTicket(ticket)
	if err := ce.fake.ApproveNoCallbacks(ticket, "alice"); err != nil {
		t.Fatal(err)
	}
	q := "?orderId=" + ref + "&ticketNumber=" + ticket
	var wg sync.WaitGroup
	codes := make([]int, 20)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				req, _ := http.NewRequest(http.MethodPost, ce.Srv.URL+"/_checkout/webhook/cyclos"+q, nil)
				codes[i] = ce.Do(nil, req).Code
			} else {
				codes[i] = ce.Get(ce.Client(), "/_checkout/return/cyclos/"+ref+q).Code
			}
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK && c != http.StatusSeeOther {
			t.Fatalf("call %d answered %d", i, c)
		}
	}
	if ce.fake.Payments() != 1 {
		t.Fatalf("%d payments", ce.fake.Payments())
	}
	if types := ce.CallbackTypes(); len(types) != 1 || types[0] != "order.paid" {
		t.Fatalf("callbacks %v, want one order.paid", types)
	}
}

func TestCyclosCustomerCancels(t *testing.T) {
	ce := newCyclosEnv(t)
	c := ce.Client()
	page, ticket := ce.buyCyclos(c, "mug")
	ref := ce.refOfTicket(ticket)
	ce.Get(c, page)
	r := ce.Post(c, page, url.Values{"action": {"cancel"}})
	if r.Code != http.StatusSeeOther || !strings.HasPrefix(r.Location, ce.Srv.URL+"/_checkout/cyclos/cancel/"+ref) {
		t.Fatalf("cancel at Cyclos: %d %q", r.Code, r.Location)
	}
	back := ce.Get(c, r.Location)
	if back.Code != http.StatusSeeOther {
		t.Fatalf("our cancel route: %d\n%s", back.Code, back.Body)
	}
	end := ce.Get(c, back.Location)
	if o := ce.OrderByRef(ref); o.Status != order.Cancelled || !strings.Contains(end.Body, "cancelled") {
		t.Fatalf("order %s after the customer cancelled; page:\n%s", o.Status, end.Body)
	}
	if tk, _ := ce.fake.Ticket(ticket); tk.Status != "canceled" {
		t.Fatalf("ticket %s at Cyclos", tk.Status)
	}
	if types := ce.CallbackTypes(); len(types) != 1 || types[0] != "order.cancelled" {
		t.Fatalf("callbacks %v", types)
	}
}

func TestCyclosReconciler(t *testing.T) {
	ce := newCyclosEnv(t)
	_, lost := ce.buyCyclos(ce.Client(), "mug")
	_, cancelled := ce.buyCyclos(ce.Client(), "tee")
	_, open := ce.buyCyclos(ce.Client(), "mug")
	if err := ce.fake.ApproveNoCallbacks(lost, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := ce.fake.AdminCancel(cancelled); err != nil {
		t.Fatal(err)
	}
	ce.Clock.Add(11 * time.Minute)
	if n, err := ce.Site().Reconcile(context.Background(), 10*time.Minute, 100); err != nil || n != 2 {
		t.Fatalf("reconcile: %d changed, %v; want 2", n, err)
	}
	for ticket, want := range map[string]order.State{lost: order.Paid, cancelled: order.Cancelled, open: order.Pending} {
		if o := ce.OrderByRef(ce.refOfTicket(ticket)); o.Status != want {
			t.Errorf("ticket %s: order %s, want %s", ticket, o.Status, want)
		}
	}
	// The open one runs out of time with its ticket (both end at the
	// order's deadline): the order expires.
	ce.Clock.Add(30 * time.Minute)
	if _, err := ce.Site().Expire(context.Background(), 100); err != nil {
		t.Fatal(err)
	}
	if o := ce.OrderByRef(ce.refOfTicket(open)); o.Status != order.Expired {
		t.Fatalf("after its deadline: %s", o.Status)
	}
}

func TestCyclosNewAmountCancelsTheOldTicket(t *testing.T) {
	ce := newCyclosEnv(t)
	announce := func(amount string) {
		r := ce.API(http.MethodPost, "/_checkout/api/orders", ce.SecretText, `{"order_id":"N-1","amount":"`+amount+`","currency":"USD","provider":"cyclos"}`)
		if r.Code != http.StatusCreated && r.Code != http.StatusOK {
			t.Fatalf("api: %d %s", r.Code, r.Body)
		}
	}
	announce("10.00")
	o, _ := ce.Store.Get(context.Background(), order.Key{Site: "shop", ID: "N-1"})
	c := ce.Client()
	page := ce.Get(c, "/_checkout/pay/"+o.Current().Ref)
	ce.Post(c, "/_checkout/pay/"+o.Current().Ref, url.Values{"csrf": {handlerstest.CSRFOf(t, page.Body)}, "provider": {"cyclos"}}, "Origin", ce.Srv.URL)
	old := ce.fake.Tickets()[0].Number
	announce("12.00")
	if tk, _ := ce.fake.Ticket(old); tk.Status != "canceled" {
		t.Fatalf("the replaced attempt's ticket is %s at Cyclos, want canceled", tk.Status)
	}
	if _, err := ce.fake.Approve(old, "alice"); err == nil {
		t.Fatal("the customer could still approve the old amount")
	}
}

func TestCyclosErrorsAreClearAndSecretsStayOut(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	ce := newCyclosEnv(t, cyclosOption{
		fake: []cyclostest.Option{cyclostest.WithCustomFields("invoice_nr")},
		prov: func(p *cyclos.Cyclos) { p.CustomValues = map[string]string{"no_such_field": "{order_id}"} },
		site: func(c *handlers.Config) { c.Logger = handlerstest.BufferLogger(&logs, &mu) },
	})
	r := ce.Post(ce.Client(), "/buy", url.Values{"product": {"mug"}})
	if r.Code != http.StatusBadGateway || !strings.Contains(r.Body, "Cyclos refused to set up this payment") {
		t.Fatalf("a ticket Cyclos refuses: %d, want 502 with a clear page:\n%s", r.Code, r.Body)
	}
	ce.fake.FailNext(1, http.StatusInternalServerError)
	r = ce.Post(ce.Client(), "/buy", url.Values{"product": {"mug"}})
	if r.Code != http.StatusServiceUnavailable {
		t.Fatalf("Cyclos failing: %d, want 503", r.Code)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if !strings.Contains(out, "no_such_field") {
		t.Fatalf("the operator's log does not say which field Cyclos refused:\n%s", out)
	}
	if strings.Contains(out, ce.fake.AccessClientToken()) {
		t.Fatal("the access client token is in the logs")
	}
}

// TestCyclosPaymentRefusedAtProcessFailsTheAttempt: a payment Cyclos
// refuses (balance) fails the attempt, not the order: it stays payable,
// the history says why, and the shop hears only of the other order's
// payment.
func TestCyclosPaymentRefusedAtProcessFailsTheAttempt(t *testing.T) {
	ce := newCyclosEnv(t)
	ce.fake.AddUser("carol", "carol-pw", "30.00")
	_, first := ce.buyCyclos(ce.Client(), "tee")  // 25.00
	_, second := ce.buyCyclos(ce.Client(), "tee") // 25.00
	// Approving moves no money, so both approvals fit carol's balance;
	// only one payment does.
	for _, tk := range []string{first, second} {
		if err := ce.fake.ApproveNoCallbacks(tk, "carol"); err != nil {
			t.Fatal(err)
		}
	}
	for _, tk := range []string{first, second} {
		q := url.Values{"orderId": {ce.refOfTicket(tk)}, "ticketNumber": {tk}}
		req, _ := http.NewRequest(http.MethodPost, ce.Srv.URL+"/_checkout/webhook/cyclos?"+q.Encode(), nil)
		if code := ce.Do(nil, req).Code; code != http.StatusOK {
			t.Fatalf("webhook for %s: %d", tk, code)
		}
	}
	o1, o2 := ce.OrderByRef(ce.refOfTicket(first)), ce.OrderByRef(ce.refOfTicket(second))
	if o1.Status != order.Paid || o2.Status != order.Pending || !o2.Current().Failed || !strings.Contains(o2.History[len(o2.History)-1].Note, "insufficientBalance") {
		t.Fatalf("orders %s and %s (%+v)", o1.Status, o2.Status, o2.History[len(o2.History)-1])
	}
	if b := ce.fake.Balance("carol"); b != "5.00" || ce.fake.Payments() != 1 {
		t.Fatalf("carol has %s after %d payments", b, ce.fake.Payments())
	}
	types := ce.CallbackTypes()
	slices.Sort(types) // two orders: no order between their callbacks
	if strings.Join(types, ",") != "order.paid" {
		t.Fatalf("callbacks %v", types)
	}
}
