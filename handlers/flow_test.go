package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/handlers/handlerstest"
	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/sandbox"
	"github.com/caddy-checkout/checkout/store"
)

func TestSandboxPaidEndToEnd(t *testing.T) {
	e := handlerstest.New(t)
	c := e.Client()
	sb := e.Buy(c, "mug")
	ret := e.PaySandbox(c, sb, "paid")
	if ret.Code != http.StatusSeeOther || !strings.Contains(ret.Location, "/_checkout/return/sandbox/") {
		t.Fatalf("after Pay: %d %q", ret.Code, ret.Location)
	}
	back := e.Get(c, ret.Location)
	if back.Code != http.StatusSeeOther || !strings.HasPrefix(back.Location, "/orders/") || !strings.Contains(back.Location, "checkout_token=") {
		t.Fatalf("return: %d %q, want 303 to the success page with a token", back.Code, back.Location)
	}
	thanks := e.Get(c, back.Location)
	if !strings.Contains(thanks.Body, "<strong>paid</strong>: 12.50 USD") {
		t.Fatalf("shop did not see verified paid headers:\n%s", thanks.Body)
	}
	// The token is single-use: the same URL again reaches the shop without headers.
	echo := e.Get(c, strings.Replace(back.Location, "/thanks", "/thanks", 1))
	if strings.Contains(echo.Body, "12.50 USD (transaction") {
		t.Fatalf("return token worked twice")
	}
	// Nor after a reload or restart, while it has not expired.
	e.Reload()
	if again := e.Get(c, back.Location); strings.Contains(again.Body, "12.50 USD (transaction") {
		t.Fatalf("return token worked again after a reload:\n%s", again.Body)
	}
	o := e.OrderByRef(handlerstest.RefOf(sb))
	if o.Status != order.Paid || o.Transaction == "" || o.PaidWith != "sandbox" {
		t.Fatalf("order = %s via %q txn %q", o.Status, o.PaidWith, o.Transaction)
	}
	// One callback, delivered, signed, with the SPEC's body.
	if err := e.Notifier.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	cbs := e.Shop.Callbacks()
	if len(cbs) != 1 {
		t.Fatalf("shop got %d callbacks, want 1", len(cbs))
	}
	var body struct {
		Type string `json:"type"`
		Data struct {
			OrderID, Status, Amount, Currency, Provider, Transaction string
			Attempt                                                  int
			Late                                                     bool
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(cbs[0].Body), &body); err != nil {
		t.Fatal(err)
	}
	if body.Type != "order.paid" || body.Data.Status != "paid" || body.Data.Amount != "12.50" || body.Data.Currency != "USD" ||
		body.Data.Provider != "sandbox" || body.Data.Transaction != o.Transaction || body.Data.Attempt != 1 {
		t.Fatalf("callback body %s", cbs[0].Body)
	}
}

// TestSandboxDeclineThenTryAgain: a declined payment leaves the order
// payable. The customer is back on the pay page, told what happened and
// offered to try again; trying again makes a new attempt of the same
// generation, which pays the order. The shop hears of the payment only,
// and the order's history keeps the decline.
func TestSandboxDeclineThenTryAgain(t *testing.T) {
	e := handlerstest.New(t)
	c := e.Client()
	sb := e.Buy(c, "tee")
	first := handlerstest.RefOf(sb)
	// The sandbox's own page, in the customer's language.
	if ja := e.Get(c, sb, "Accept-Language", "ja"); !strings.Contains(ja.Body, "<h1>テスト決済</h1>") || !strings.Contains(ja.Body, ">後で支払う</button>") || strings.Contains(ja.Body, "Pay later") {
		t.Fatalf("the Japanese sandbox page:\n%s", ja.Body)
	}
	ret := e.PaySandbox(c, sb, "declined")
	back := e.Get(c, ret.Location)
	if back.Code != http.StatusSeeOther || back.Location != "/_checkout/pay/"+first {
		t.Fatalf("return after decline: %d %q, want 303 to the pay page", back.Code, back.Location)
	}
	o := e.OrderByRef(first)
	if o.Status != order.Pending || !o.Current().Failed {
		t.Fatalf("declined: order %s, attempt failed=%v; want pending with a failed attempt", o.Status, o.Current().Failed)
	}
	page := e.Get(c, back.Location)
	if page.Code != http.StatusOK || !strings.Contains(page.Body, "did not go through") ||
		!strings.Contains(page.Body, `name="provider" value="sandbox"`) {
		t.Fatalf("pay page after decline: %d, want the decline said and a way to try again:\n%s", page.Code, page.Body)
	}
	// The sandbox page of the declined attempt cannot be paid any more.
	if r := e.Get(c, sb); r.Code != http.StatusSeeOther {
		t.Fatalf("declined attempt's sandbox page: %d, want a redirect to the pay page", r.Code)
	}
	again := e.Post(c, "/_checkout/pay/"+first, url.Values{"csrf": {handlerstest.CSRFOf(t, page.Body)}, "provider": {"sandbox"}}, "Origin", e.Srv.URL)
	if again.Code != http.StatusSeeOther || !strings.Contains(again.Location, "/_checkout/sandbox/") || handlerstest.RefOf(again.Location) == first {
		t.Fatalf("try again: %d %q, want the sandbox page of a new attempt", again.Code, again.Location)
	}
	ret = e.PaySandbox(c, again.Location, "paid")
	if back := e.Get(c, ret.Location); back.Code != http.StatusSeeOther || !strings.Contains(back.Location, "checkout_token=") {
		t.Fatalf("return after paying the new attempt: %d %q", back.Code, back.Location)
	}
	o = e.OrderByRef(first)
	if o.Status != order.Paid || len(o.Attempts) != 2 || o.Attempts[1].Generation != 1 || o.Late {
		t.Fatalf("order %s with %d attempts (%+v), want paid by a second attempt of generation 1", o.Status, len(o.Attempts), o.Attempts)
	}
	declined := false
	for _, ev := range o.History {
		declined = declined || strings.Contains(ev.Note, "attempt failed")
	}
	if !declined {
		t.Fatalf("the decline is not in the history: %+v", o.History)
	}
	if got := strings.Join(e.CallbackTypes(), ","); got != "order.paid" {
		t.Fatalf("callbacks %s, want only order.paid (a decline tells the shop nothing)", got)
	}
}

// TestSandboxPayLaterHoldsForDays: "Pay later" holds the order for the
// sandbox's 3 days, not the 30-minute pending expiry; the pay pages show
// that deadline, and the sandbox page settles the hold either way.
func TestSandboxPayLaterHoldsForDays(t *testing.T) {
	for _, settle := range []string{"paid", "expired"} {
		t.Run(settle, func(t *testing.T) {
			e := handlerstest.New(t)
			c := e.Client()
			sb := e.Buy(c, "tea")
			ret := e.PaySandbox(c, sb, "on_hold")
			page := e.Get(c, ret.Location)
			hold := e.Clock.Now().Add(sandbox.HoldFor).UTC()
			if page.Code != http.StatusOK || !strings.Contains(page.Body, `http-equiv="refresh"`) ||
				!strings.Contains(page.Body, hold.Format(time.RFC3339)) {
				t.Fatalf("pay later: %d, want the processing page with the hold deadline %s:\n%s", page.Code, hold.Format(time.RFC3339), page.Body)
			}
			if o := e.OrderByRef(handlerstest.RefOf(sb)); o.Status != order.OnHold || !o.HoldUntil.Equal(hold) {
				t.Fatalf("pay later: order %s held until %s, want on_hold until %s", o.Status, o.HoldUntil, hold)
			}
			// Past the pending expiry, the hold keeps the order.
			e.Clock.Add(2 * time.Hour)
			if n, err := e.Site().Expire(context.Background(), 100); err != nil || n != 0 {
				t.Fatalf("Expire 2h into a 3-day hold = %d, %v; want nothing expired", n, err)
			}
			// Back to the present: the demo shop checks callback
			// timestamps against its own clock.
			e.Clock.Add(-2 * time.Hour)
			// The tester settles the hold on the same sandbox page.
			sp := e.Get(c, sb)
			if !strings.Contains(sp.Body, `value="expired"`) || strings.Contains(sp.Body, `value="declined"`) {
				t.Fatalf("sandbox page of a held payment does not offer to settle it:\n%s", sp.Body)
			}
			ret = e.PaySandbox(c, sb, settle)
			if ret.Code != http.StatusSeeOther {
				t.Fatalf("settling %s: %d", settle, ret.Code)
			}
			want := map[string]order.State{"paid": order.Paid, "expired": order.Expired}[settle]
			o := e.OrderByRef(handlerstest.RefOf(sb))
			if o.Status != want || o.Late {
				t.Fatalf("settled %s: order %s late=%v, want %s on time", settle, o.Status, o.Late, want)
			}
			if got := strings.Join(e.CallbackTypes(), ","); got != "order.pending,order."+string(want) {
				t.Fatalf("callbacks %s, want order.pending then order.%s", got, want)
			}
		})
	}
}

// TestHeldOrderExpiresAtTheHoldDeadline: once the hold lapses unpaid, the
// expiry worker ends the order and tells the shop.
func TestHeldOrderExpiresAtTheHoldDeadline(t *testing.T) {
	e := handlerstest.New(t)
	c := e.Client()
	sb := e.Buy(c, "tea")
	e.PaySandbox(c, sb, "on_hold")
	e.Clock.Add(sandbox.HoldFor - time.Minute)
	if n, _ := e.Site().Expire(context.Background(), 100); n != 0 {
		t.Fatalf("expired %d orders a minute before the hold deadline", n)
	}
	e.Clock.Add(2 * time.Minute)
	if n, err := e.Site().Expire(context.Background(), 100); err != nil || n != 1 {
		t.Fatalf("Expire after the hold deadline = %d, %v; want 1", n, err)
	}
	if o := e.OrderByRef(handlerstest.RefOf(sb)); o.Status != order.Expired {
		t.Fatalf("order %s after its hold lapsed, want expired", o.Status)
	}
}

func TestConcurrentIdenticalWebhooksOneTransition(t *testing.T) {
	e := handlerstest.New(t)
	c := e.Client()
	ref := handlerstest.RefOf(e.Buy(c, "mug"))
	body := fmt.Sprintf(`{"id":"evt_same","type":"payment.paid","ref":%q,"amount":"12.50","currency":"USD","transaction":"t1"}`, ref)
	var wg sync.WaitGroup
	codes := make([]int, 100)
	reqs := make([]*http.Request, 100)
	for i := range reqs {
		reqs[i] = e.SignedWebhook("evt_same", body)
	}
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r, err := http.DefaultClient.Do(reqs[i])
			if err != nil {
				t.Error(err)
				return
			}
			r.Body.Close()
			codes[i] = r.StatusCode
		}(i)
	}
	wg.Wait()
	for i, code := range codes {
		if code != http.StatusOK {
			t.Fatalf("request %d: %d, want 200 (duplicates are acknowledged)", i, code)
		}
	}
	o := e.OrderByRef(ref)
	if moves := handlerstest.Moves(o, order.Paid); o.Status != order.Paid || moves != 1 {
		t.Fatalf("status %s with %d paid transitions, want 1", o.Status, moves)
	}
	if ds := e.Deliveries(); len(ds) != 1 {
		t.Fatalf("%d callbacks in the outbox, want 1", len(ds))
	}
	_ = e.Notifier.Tick(context.Background())
	if n := len(e.Shop.Callbacks()); n != 1 {
		t.Fatalf("shop got %d callbacks, want 1", n)
	}
}

func TestBadWebhooksChangeNothing(t *testing.T) {
	e := handlerstest.New(t)
	ref := handlerstest.RefOf(e.Buy(e.Client(), "mug"))
	good := fmt.Sprintf(`{"id":"evt_1","type":"payment.paid","ref":%q,"amount":"12.50","currency":"USD","transaction":"t"}`, ref)
	other := e.Secret // keep the right key for the "stale" case

	cases := map[string]struct {
		req  func() *http.Request
		want int
	}{
		"fail/unsigned": {func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, e.Abs("/_checkout/webhook/sandbox"), strings.NewReader(good))
			return r
		}, 401},
		"fail/tampered-body": {func() *http.Request {
			r := e.SignedWebhook("evt_1", good)
			r.Body = ioNop(strings.Replace(good, "12.50", "0.01", 1))
			r.ContentLength = -1
			return r
		}, 401},
		"fail/stale": {func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, e.Abs("/_checkout/webhook/sandbox"), strings.NewReader(good))
			other.SetWebhookHeaders(r.Header, "evt_1", e.Clock.Now().Add(-10*time.Minute), []byte(good))
			return r
		}, 401},
		"fail/malformed-json": {func() *http.Request { return e.SignedWebhook("evt_2", `{"id":`) }, 400},
		"fail/id-mismatch":    {func() *http.Request { return e.SignedWebhook("evt_other", good) }, 400},
		"fail/oversized": {func() *http.Request {
			big := strings.Repeat("x", 300<<10)
			return e.SignedWebhook("evt_3", big)
		}, 413},
		"fail/unknown-provider": {func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, e.Abs("/_checkout/webhook/nope"), strings.NewReader(good))
			return r
		}, 404},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := e.Do(nil, tc.req())
			if r.Code != tc.want {
				t.Fatalf("got %d, want %d: %s", r.Code, tc.want, r.Body)
			}
			if !strings.Contains(r.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("webhook errors are JSON, got %q", r.Header.Get("Content-Type"))
			}
		})
	}
	if o := e.OrderByRef(ref); o.Status != order.Pending {
		t.Fatalf("bad webhooks moved the order to %s", o.Status)
	}
	if n := len(e.Deliveries()); n != 0 {
		t.Fatalf("bad webhooks made %d callbacks", n)
	}
}

func TestWrongAmountWebhookNeverPaid(t *testing.T) {
	e := handlerstest.New(t)
	ref := handlerstest.RefOf(e.Buy(e.Client(), "mug"))
	body := fmt.Sprintf(`{"id":"evt_x","type":"payment.paid","ref":%q,"amount":"1.00","currency":"USD","transaction":"t"}`, ref)
	if r := e.Do(nil, e.SignedWebhook("evt_x", body)); r.Code != 200 {
		t.Fatalf("signed webhook: %d", r.Code)
	}
	o := e.OrderByRef(ref)
	if o.Status != order.Pending {
		t.Fatalf("under-payment made the order %s", o.Status)
	}
	last := o.History[len(o.History)-1]
	if last.Applied || !strings.Contains(last.Note, "does not match") {
		t.Fatalf("mismatch not recorded: %+v", last)
	}
}

func ioNop(s string) *nopCloser { return &nopCloser{strings.NewReader(s)} }

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

func TestHeaderIntakeIdempotentAndNewAttempt(t *testing.T) {
	e := handlerstest.New(t)
	amount := "10.00"
	var mu sync.Mutex
	e.SetUpstream(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("X-Checkout-Order", "A-1")
		w.Header().Set("X-Checkout-Amount", amount)
		w.Header().Set("X-Checkout-Currency", "USD")
		w.Header().Set("X-Checkout-Description", "Two%20mugs%20%E2%98%95")
		w.Header().Set("X-Checkout-Secret-Thing", "never to the client")
		w.Write([]byte("upstream body must not reach the customer"))
	}))
	c := e.Client()
	r1 := e.Get(c, "/checkout-here")
	r2 := e.Get(c, "/checkout-here")
	if r1.Code != 303 || r1.Location != r2.Location {
		t.Fatalf("same order twice: %q then %q", r1.Location, r2.Location)
	}
	for k := range r1.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-checkout") {
			t.Fatalf("upstream header %s reached the client", k)
		}
	}
	if strings.Contains(r1.Body, "upstream body") {
		t.Fatal("upstream body was streamed")
	}
	o := e.OrderByRef(handlerstest.RefOf(r1.Location))
	if o.Description != "Two mugs ☕" || len(o.Attempts) != 1 {
		t.Fatalf("order %+v", o)
	}
	mu.Lock()
	amount = "12.00"
	mu.Unlock()
	r3 := e.Get(c, "/checkout-here")
	if handlerstest.RefOf(r3.Location) == handlerstest.RefOf(r1.Location) {
		t.Fatal("a new amount must start a new attempt")
	}
	o = e.OrderByRef(handlerstest.RefOf(r3.Location))
	if len(o.Attempts) != 2 || o.Amount.String() != "12.00" {
		t.Fatalf("attempts %d amount %s", len(o.Attempts), o.Amount)
	}
	// The old attempt can no longer pay it.
	body := fmt.Sprintf(`{"id":"evt_old","type":"payment.paid","ref":%q,"amount":"10.00","currency":"USD"}`, handlerstest.RefOf(r1.Location))
	if r := e.Do(nil, e.SignedWebhook("evt_old", body)); r.Code != 200 {
		t.Fatalf("webhook %d", r.Code)
	}
	if st := e.OrderByRef(handlerstest.RefOf(r1.Location)).Status; st != order.Pending {
		t.Fatalf("superseded attempt paid the order: %s", st)
	}
	// The old pay page sends the customer to the current attempt.
	if r := e.Get(c, "/_checkout/pay/"+handlerstest.RefOf(r1.Location)); r.Code != 303 || !strings.Contains(r.Location, handlerstest.RefOf(r3.Location)) {
		t.Fatalf("old pay page: %d %q", r.Code, r.Location)
	}
}

func TestHeaderIntakeBadUpstreamValues(t *testing.T) {
	cases := map[string][3]string{
		"fail/amount-words":      {"B-1", "ten", "USD"},
		"fail/amount-negative":   {"B-2", "-5.00", "USD"},
		"fail/too-many-decimals": {"B-3", "5.001", "USD"},
		"fail/jpy-decimals":      {"B-4", "5.5", "JPY"},
		"fail/unknown-currency":  {"B-5", "5.00", "XXX"},
		"fail/missing-currency":  {"B-6", "5.00", ""},
		"fail/id-with-space":     {"B 7", "5.00", "USD"},
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			e := handlerstest.New(t)
			e.SetUpstream(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Checkout-Order", v[0])
				w.Header().Set("X-Checkout-Amount", v[1])
				w.Header().Set("X-Checkout-Currency", v[2])
			}))
			r := e.Get(nil, "/buy-it")
			if r.Code != http.StatusUnprocessableEntity || !strings.Contains(r.Body, "cannot be paid here") {
				t.Fatalf("got %d, want 422 with a clear page:\n%s", r.Code, r.Body)
			}
			list, _ := e.Store.List(context.Background(), store.ListFilter{})
			if len(list) != 0 {
				t.Fatalf("bad upstream values stored %d orders", len(list))
			}
		})
	}
}

func TestClientCheckoutHeadersStripped(t *testing.T) {
	e := handlerstest.New(t)
	spellings := []string{"X-Checkout-Status", "x-checkout-status", "X-CHECKOUT-ORDER", "X_Checkout_Status",
		"X-Checkout_Signature", "x_checkout-amount"}
	req, _ := http.NewRequest(http.MethodGet, e.Abs("/echo"), nil)
	for _, h := range spellings {
		req.Header[h] = []string{"paid", "paid"}
	}
	req.Header.Set("Connection", "keep-alive, X-Checkout-Status, x_checkout_signature")
	r := e.Do(nil, req)
	if strings.TrimSpace(r.Body) != "" {
		t.Fatalf("client headers reached the shop:\n%s", r.Body)
	}
	// Also on the success page with a bogus token, and on our own routes.
	req, _ = http.NewRequest(http.MethodGet, e.Abs("/echo?checkout_token=forged.x.y"), nil)
	req.Header.Set("X-Checkout-Status", "paid")
	if r := e.Do(nil, req); strings.TrimSpace(r.Body) != "" {
		t.Fatalf("forged token let headers through:\n%s", r.Body)
	}
}

func TestSuccessTokenOnlyForItsOrder(t *testing.T) {
	e := handlerstest.New(t)
	c := e.Client()
	sb := e.Buy(c, "mug")
	ret := e.PaySandbox(c, sb, "paid")
	back := e.Get(c, ret.Location)
	u, _ := url.Parse(back.Location)
	// The same token on another path (another order's page) gives no headers.
	r := e.Get(c, "/echo?"+u.RawQuery)
	if strings.TrimSpace(r.Body) != "" {
		t.Fatalf("token used on another path injected headers:\n%s", r.Body)
	}
}

func TestReturnWithoutPaymentIsNotPaid(t *testing.T) {
	e := handlerstest.New(t)
	c := e.Client()
	sb := e.Buy(c, "mug")
	// Customer goes straight to the return URL without paying.
	r := e.Get(c, "/_checkout/return/sandbox/"+handlerstest.RefOf(sb)+"?status=paid&session_id=anything")
	if r.Code != http.StatusOK || strings.Contains(r.Location, "checkout_token") {
		t.Fatalf("unpaid return: %d %q", r.Code, r.Location)
	}
	if st := e.OrderByRef(handlerstest.RefOf(sb)).Status; st != order.Pending {
		t.Fatalf("a bare return marked the order %s", st)
	}
	if r := e.Get(c, "/_checkout/return/sandbox/not-a-ref"); r.Code != 404 {
		t.Fatalf("unknown ref: %d", r.Code)
	}
}

func TestPayFormCSRF(t *testing.T) {
	e := handlerstest.New(t)
	c := e.Client()
	sb := e.Buy(c, "mug")
	ref := handlerstest.RefOf(sb)
	page := e.Get(c, sb)
	tok := handlerstest.CSRFOf(t, page.Body)
	cases := map[string]struct {
		form url.Values
		hdr  []string
	}{
		"fail/no-token":         {url.Values{"outcome": {"paid"}}, nil},
		"fail/wrong-token":      {url.Values{"outcome": {"paid"}, "csrf": {"1.abc"}}, nil},
		"fail/other-ref-token":  {url.Values{"outcome": {"paid"}, "csrf": {e.Secret.Token("csrf", "otherref", time.Now().Add(time.Hour))}}, nil},
		"fail/cross-site-fetch": {url.Values{"outcome": {"paid"}, "csrf": {tok}}, []string{"Sec-Fetch-Site", "cross-site"}},
		"fail/cross-origin":     {url.Values{"outcome": {"paid"}, "csrf": {tok}}, []string{"Origin", "https://evil.example"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := e.Post(c, sb, tc.form, tc.hdr...)
			if r.Code != http.StatusForbidden {
				t.Fatalf("got %d, want 403", r.Code)
			}
		})
	}
	for _, path := range []string{"/_checkout/pay/" + ref} {
		if r := e.Post(c, path, url.Values{"provider": {"sandbox"}}, "Sec-Fetch-Site", "cross-site"); r.Code != 403 {
			t.Fatalf("pay form cross-site: %d", r.Code)
		}
	}
	if st := e.OrderByRef(ref).Status; st != order.Pending {
		t.Fatalf("forged forms moved the order to %s", st)
	}
}

func TestPayPageChoiceAndCancel(t *testing.T) {
	e := handlerstest.New(t)
	c := e.Client()
	e.SetUpstream(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Checkout-Order", "C-1")
		w.Header().Set("X-Checkout-Amount", "1800")
		w.Header().Set("X-Checkout-Currency", "JPY")
	}))
	sb := e.Get(c, "/x").Location
	ref := handlerstest.RefOf(sb)
	pay := e.Get(c, "/_checkout/pay/"+ref, "Accept-Language", "ja-JP,ja;q=0.9")
	if pay.Code != 200 || !strings.Contains(pay.Body, "1,800") || !strings.Contains(pay.Body, `lang="ja"`) {
		t.Fatalf("pay page (ja): %d\n%s", pay.Code, pay.Body)
	}
	if !strings.Contains(pay.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("CSP %q", pay.Header.Get("Content-Security-Policy"))
	}
	tok := handlerstest.CSRFOf(t, pay.Body)
	r := e.Post(c, "/_checkout/pay/"+ref, url.Values{"csrf": {tok}, "provider": {"nope"}}, "Origin", e.Srv.URL)
	if r.Code != 400 {
		t.Fatalf("unknown provider: %d", r.Code)
	}
	r = e.Post(c, "/_checkout/pay/"+ref, url.Values{"csrf": {tok}, "provider": {"sandbox"}}, "Origin", e.Srv.URL)
	if r.Code != 303 || !strings.Contains(r.Location, "/_checkout/sandbox/"+ref) {
		t.Fatalf("choose sandbox: %d %q", r.Code, r.Location)
	}
	r = e.Post(c, "/_checkout/pay/"+ref, url.Values{"csrf": {tok}, "action": {"cancel"}}, "Origin", e.Srv.URL)
	if r.Code != 200 || e.OrderByRef(ref).Status != order.Cancelled {
		t.Fatalf("cancel: %d %s", r.Code, e.OrderByRef(ref).Status)
	}
	if !strings.Contains(r.Body, `href="/cart"`) {
		t.Fatalf("cancelled page should lead back to the cart:\n%s", r.Body)
	}
}

func TestExpiryAsksProviderThenExpires(t *testing.T) {
	e := handlerstest.New(t)
	ref := handlerstest.RefOf(e.Buy(e.Client(), "mug"))
	if n, err := e.Site().Expire(context.Background(), 100); err != nil || n != 0 {
		t.Fatalf("nothing is due yet: %d %v", n, err)
	}
	e.Clock.Add(31 * time.Minute)
	if r := e.Get(nil, "/_checkout/pay/"+ref); !strings.Contains(r.Body, "expired") && !strings.Contains(r.Body, "Expired") {
		t.Fatalf("pay page after the deadline should say expired:\n%s", r.Body)
	}
	if n, err := e.Site().Expire(context.Background(), 100); err != nil || n != 1 {
		t.Fatalf("Expire = %d, %v; want 1", n, err)
	}
	if st := e.OrderByRef(ref).Status; st != order.Expired {
		t.Fatalf("status %s", st)
	}
	// A payment after expiry still counts, marked late.
	body := fmt.Sprintf(`{"id":"evt_late","type":"payment.paid","ref":%q,"amount":"12.50","currency":"USD","transaction":"late"}`, ref)
	if r := e.Do(nil, e.SignedWebhook("evt_late", body)); r.Code != 200 {
		t.Fatalf("late webhook %d", r.Code)
	}
	o := e.OrderByRef(ref)
	if o.Status != order.Paid || !o.Late {
		t.Fatalf("late payment: %s late=%v", o.Status, o.Late)
	}
}

func TestStatusJSON(t *testing.T) {
	e := handlerstest.New(t)
	ref := handlerstest.RefOf(e.Buy(e.Client(), "tea"))
	r := e.Get(nil, "/_checkout/status/"+ref)
	var v struct{ Status, Amount, Currency string }
	if err := json.Unmarshal([]byte(r.Body), &v); err != nil || v.Status != "pending" || v.Amount != "1800" || v.Currency != "JPY" {
		t.Fatalf("status: %d %s", r.Code, r.Body)
	}
	if strings.Contains(r.Body, "email") || strings.Contains(r.Body, "order_id") {
		t.Fatalf("status leaks order details: %s", r.Body)
	}
	if r := e.Get(nil, "/_checkout/status/unknown"); r.Code != 404 {
		t.Fatalf("unknown: %d", r.Code)
	}
}

// otherProvider is a provider that is not the sandbox, for configs that
// lose the provider an order was fixed to.
type otherProvider struct{}

func (otherProvider) Name() string { return "other" }
func (otherProvider) Start(context.Context, provider.Payment) (provider.Start, error) {
	return provider.Start{Redirect: "https://pay.example.net/"}, nil
}

// TestOrderFailsWhenNoProviderCanTakeIt: failed now means no configured
// provider can take the order (here: the shop fixed the sandbox, and a
// reload removed it). The customer sees so, and the shop gets order.failed.
func TestOrderFailsWhenNoProviderCanTakeIt(t *testing.T) {
	e := handlerstest.New(t)
	c := e.Client()
	e.SetUpstream(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Checkout-Order", "fixed-1")
		w.Header().Set("X-Checkout-Amount", "5.00")
		w.Header().Set("X-Checkout-Currency", "USD")
		w.Header().Set("X-Checkout-Provider", "sandbox")
	}))
	r := e.Get(c, "/buy-fixed")
	ref := handlerstest.RefOf(r.Location)
	e.Cfg.Providers = []provider.Provider{otherProvider{}}
	e.Reload()
	page := e.Get(c, "/_checkout/pay/"+ref)
	if o := e.OrderByRef(ref); o.Status != order.Failed {
		t.Fatalf("order %s, want failed", o.Status)
	}
	if !strings.Contains(page.Body, "contact the shop") {
		t.Fatalf("page does not say the payment failed:\n%s", page.Body)
	}
	if got := strings.Join(e.CallbackTypes(), ","); got != "order.failed" {
		t.Fatalf("callbacks %s, want order.failed", got)
	}
}

// TestFindingByProviderRefAndDataWithoutAMove: a provider records its own
// reference and data for an attempt without moving the order, and a later
// finding that names the attempt only by that reference applies to it.
func TestFindingByProviderRefAndDataWithoutAMove(t *testing.T) {
	e := handlerstest.New(t)
	c := e.Client()
	ref := handlerstest.RefOf(e.Buy(c, "mug"))
	env := e.Site().Env("sandbox")
	ctx := context.Background()
	o, err := env.Report(ctx, order.ByWatcher, provider.Finding{Ref: ref, ProviderRef: "slip-123", Data: map[string]string{"receipt": "9876"}})
	if err != nil || o.Status != order.Pending {
		t.Fatalf("recording data: %v, status %v", err, o.Status)
	}
	if a := e.OrderByRef(ref).Attempt(ref); a.ProviderRef != "slip-123" || a.ProviderData["receipt"] != "9876" {
		t.Fatalf("attempt after recording: %+v", a)
	}
	if _, p, err := env.Lookup(ctx, ref); err != nil || p.ProviderData["receipt"] != "9876" {
		t.Fatalf("the provider is not given its data back: %+v, %v", p.ProviderData, err)
	}
	o, err = env.Report(ctx, order.ByWatcher, provider.Finding{ProviderRef: "slip-123", EventID: "evt-slip-paid",
		Status: order.Paid, Paid: money.MustParse("12.50", "USD"), Transaction: "slip-tx"})
	if err != nil || o.Status != order.Paid || o.Transaction != "slip-tx" {
		t.Fatalf("finding by provider ref: %v, order %+v", err, o)
	}
	if _, err := env.Report(ctx, order.ByWatcher, provider.Finding{ProviderRef: "no-such-slip", Status: order.Paid}); !errors.Is(err, order.ErrUnknownRef) {
		t.Fatalf("finding for an unknown provider ref: %v, want ErrUnknownRef", err)
	}
}

var (
	leadRE      = regexp.MustCompile(`<p class="lead">([^<]*)</p>`)
	asciiWordRE = regexp.MustCompile(`[A-Za-z]{3,}`)
)

// TestErrorPagesSayWhatToDoInTheCustomersLanguage: error pages name what
// to do next and link there; a Japanese customer reads no English, and no
// page shows a technical reason.
func TestErrorPagesSayWhatToDoInTheCustomersLanguage(t *testing.T) {
	e := handlerstest.New(t)
	c := e.Client()
	e.SetUpstream(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Checkout-Order", "bad-1")
		w.Header().Set("X-Checkout-Amount", "12.345") // USD has 2 places
		w.Header().Set("X-Checkout-Currency", "USD")
	}))
	for _, tc := range []struct {
		name, path string
		status     int
		ja         string
		links      []string
	}{
		{"unknown ref", "/_checkout/pay/nosuchref", http.StatusNotFound, "このお支払いページは存在しません", []string{`href="/cart"`}},
		{"bad link", "/_checkout/start?order=1&amount=5&currency=USD&exp=9999999999&sig=00", http.StatusForbidden, "このお支払いリンクは無効です", []string{`href="/cart"`}},
		{"shop's bad order", "/buy-bad", http.StatusUnprocessableEntity, "ここではお支払いいただけません", []string{`href="/cart"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.Get(c, tc.path, "Accept-Language", "ja")
			if r.Code != tc.status || !strings.Contains(r.Body, tc.ja) {
				t.Fatalf("%d, want %d with %q:\n%s", r.Code, tc.status, tc.ja, r.Body)
			}
			for _, l := range tc.links {
				if !strings.Contains(r.Body, l) {
					t.Errorf("page does not link to %s", l)
				}
			}
			lead := leadRE.FindStringSubmatch(r.Body)
			if lead == nil || asciiWordRE.MatchString(lead[1]) {
				t.Errorf("the Japanese page's message is missing or has English in it: %q", lead)
			}
			if r.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", r.Header.Get("Cache-Control"))
			}
		})
	}
	// A form for an order that can still be paid links back to its pay page.
	e.SetUpstream(e.Shop)
	ref := handlerstest.RefOf(e.Buy(c, "mug"))
	r := e.Post(c, "/_checkout/pay/"+ref, url.Values{"csrf": {"forged"}, "provider": {"sandbox"}}, "Origin", e.Srv.URL)
	if r.Code != http.StatusForbidden || !strings.Contains(r.Body, "go back to the payment page") {
		t.Fatalf("forged form: %d\n%s", r.Code, r.Body)
	}
}

// TestBrandOnEveryPage: a site's name, logo and colour are on its pages,
// served by the plugin itself so the CSP stays 'self'.
func TestBrandOnEveryPage(t *testing.T) {
	logo := []byte("\x89PNG\r\n\x1a\nfake-logo")
	e := handlerstest.New(t, func(c *handlers.Config) {
		c.Brand = handlers.Brand{Name: "Kissa Shop", Logo: logo, LogoType: "image/png", Color: "#1f6feb"}
	})
	c := e.Client()
	for _, path := range []string{e.Buy(c, "mug"), "/_checkout/pay/nosuchref"} {
		page := e.Get(c, path)
		if !strings.Contains(page.Body, `<span class="name">Kissa Shop</span>`) || !strings.Contains(page.Body, "· Kissa Shop</title>") {
			t.Fatalf("%s does not show the shop's name:\n%s", path, page.Body)
		}
		m := regexp.MustCompile(`src="(/_checkout/brand/logo\?v=[0-9a-f]+)"`).FindStringSubmatch(page.Body)
		css := regexp.MustCompile(`href="(/_checkout/brand/style.css\?v=[0-9a-f]+)"`).FindStringSubmatch(page.Body)
		if m == nil || css == nil {
			t.Fatalf("%s does not link the logo and the colour:\n%s", path, page.Body)
		}
		if csp := page.Header.Get("Content-Security-Policy"); strings.Contains(csp, "http") || !strings.Contains(csp, "img-src 'self'") {
			t.Fatalf("CSP %q, want it to keep to 'self'", csp)
		}
		if r := e.Get(c, m[1]); r.Code != http.StatusOK || r.Body != string(logo) || r.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("logo: %d %q %q", r.Code, r.Header.Get("Content-Type"), r.Body)
		}
		if r := e.Get(c, css[1]); r.Code != http.StatusOK || !strings.Contains(r.Body, "--accent:#1f6feb") || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/css") {
			t.Fatalf("brand stylesheet: %d %q", r.Code, r.Body)
		}
	}
	// Without a brand, nothing of it is linked.
	plain := handlerstest.New(t)
	if page := plain.Get(plain.Client(), "/_checkout/pay/nosuchref"); strings.Contains(page.Body, "/brand/") || strings.Contains(page.Body, `class="brand"`) {
		t.Fatalf("a site without a brand links one:\n%s", page.Body)
	}
}

// TestLivePagesOfOnePaymentBounded: a script opening event streams for one
// payment gets 503 past the bound, and the page's JSON status still works.
func TestLivePagesOfOnePaymentBounded(t *testing.T) {
	e := handlerstest.New(t)
	ref := handlerstest.RefOf(e.Buy(e.Client(), "mug"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func() *http.Response {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.Srv.URL+"/_checkout/events/"+ref, nil)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	var streams []*http.Response
	for range 20 {
		r := open()
		if r.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %d", len(streams)+1, r.StatusCode)
		}
		streams = append(streams, r)
	}
	r := open()
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "poll the status URL") {
		t.Fatalf("stream 21: %d %q", r.StatusCode, body)
	}
	if st := e.Get(nil, "/_checkout/status/"+ref); st.Code != http.StatusOK {
		t.Fatalf("status while streams are full: %d", st.Code)
	}
	for _, s := range streams {
		s.Body.Close()
	}
	// Closed streams free their places once the server notices.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := open()
		r.Body.Close()
		if r.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("closed streams never freed their places: %d", r.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
