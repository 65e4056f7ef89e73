package komoju_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/handlers/handlerstest"
	"github.com/caddy-checkout/checkout/internal/komojutest"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/providers/komoju"
)

// post sends a webhook body with the given signature header ("" for none).
func (ke *komojuEnv) post(body []byte, sig string) int {
	ke.T.Helper()
	req, _ := http.NewRequest(http.MethodPost, ke.Abs("/_checkout/webhook/komoju"), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Komoju-ID", "delivery-"+sig[:min(6, len(sig))])
	if sig != "" {
		req.Header.Set("X-Komoju-Signature", sig)
	}
	return ke.Do(nil, req).Code
}

// event is a KOMOJU event about a payment, as KOMOJU would sign it.
func event(id, typ string, payment map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "type": typ, "resource": "event", "data": payment})
	return b
}

func paymentObject(id, status, ext, session string, amount int, currency string) map[string]any {
	return map[string]any{
		"id": id, "resource": "payment", "status": status, "amount": amount, "currency": currency,
		"external_order_num": ext, "session": session, "payment_details": map[string]any{"type": "credit_card"},
	}
}

func TestWebhookSignatures(t *testing.T) {
	ke := newEnv(t)
	c := ke.Client()
	id := ke.buy(c, "tea")
	ref := ke.refOf(id)
	body := event("evforged1", "payment.captured", paymentObject("pay1forged", "captured", ref, id, 1800, "JPY"))
	good := komojutest.Sign(webhookSecret, body)
	for name, tc := range map[string]struct {
		body []byte
		sig  string
		want int
	}{
		"unsigned":        {body, "", http.StatusUnauthorized},
		"forged":          {body, komojutest.Sign("another-secret", body), http.StatusUnauthorized},
		"not hex":         {body, "zz" + good[2:], http.StatusUnauthorized},
		"tampered body":   {bytes.Replace(body, []byte("1800"), []byte("1801"), 1), good, http.StatusUnauthorized},
		"upper case":      {body, strings.ToUpper(good[:10]) + "x", http.StatusUnauthorized},
		"not json":        {[]byte("{"), komojutest.Sign(webhookSecret, []byte("{")), http.StatusBadRequest},
		"no type":         {[]byte(`{"id":"e"}`), komojutest.Sign(webhookSecret, []byte(`{"id":"e"}`)), http.StatusBadRequest},
		"no event id":     {[]byte(`{"type":"ping"}`), komojutest.Sign(webhookSecret, []byte(`{"type":"ping"}`)), http.StatusBadRequest},
		"long event id":   {event(strings.Repeat("e", 101), "payment.captured", paymentObject("pay1forged", "captured", ref, id, 1800, "JPY")), "", http.StatusBadRequest},
		"negative amount": {event("evneg", "payment.captured", paymentObject("pay1forged", "captured", ref, id, -1800, "JPY")), "", http.StatusBadRequest},
	} {
		if tc.sig == "" && tc.want == http.StatusBadRequest {
			tc.sig = komojutest.Sign(webhookSecret, tc.body) // signed, but not readable
		}
		if code := ke.post(tc.body, tc.sig); code != tc.want {
			t.Errorf("%s: %d, want %d", name, code, tc.want)
		}
	}
	if o := ke.OrderByRef(ref); o.Status != order.Pending || len(o.History) != 1 {
		t.Fatalf("rejected webhooks changed the order: %s, %d history lines", o.Status, len(o.History))
	}
	ping := []byte(`{"id":"evping","type":"ping","resource":"event","data":{}}`)
	if code := ke.post(ping, komojutest.Sign(webhookSecret, ping)); code != http.StatusOK {
		t.Fatalf("ping: %d", code)
	}
	for _, d := range ke.fake.Deliveries() {
		if d.Status != http.StatusOK {
			t.Fatalf("KOMOJU's own delivery %s (%s) got %d", d.EventID, d.Type, d.Status)
		}
	}
}

func TestConcurrentIdenticalWebhooksMoveOnce(t *testing.T) {
	ke := newEnv(t)
	c := ke.Client()
	ke.fake.HoldWebhooks()
	id := ke.buy(c, "tea")
	ref := ke.refOf(id)
	ke.onKomoju(c, id, "credit_card")
	held := ke.fake.Held()
	if len(held) != 1 || held[0].Type != "payment.captured" {
		t.Fatalf("held %+v", held)
	}
	sig := komojutest.Sign(webhookSecret, held[0].Body)
	var wg sync.WaitGroup
	codes := make([]int, 100)
	for i := range codes {
		wg.Add(1)
		go func() { defer wg.Done(); codes[i] = ke.post(held[0].Body, sig) }()
	}
	wg.Wait()
	for i, code := range codes {
		if code != http.StatusOK {
			t.Fatalf("delivery %d: %d", i, code)
		}
	}
	o := ke.OrderByRef(ref)
	if moves := handlerstest.Moves(o, order.Paid); o.Status != order.Paid || moves != 1 {
		t.Fatalf("order %s with %d paid transitions", o.Status, moves)
	}
	if got := ke.CallbackTypes(); strings.Join(got, ",") != "order.paid" {
		t.Fatalf("callbacks %v", got)
	}
	// KOMOJU retries the event later (a new X-Komoju-ID): nothing more.
	ke.fake.DeliverHeld()
	if d := ke.fake.Redeliver(held[0].ID); d.Status != http.StatusOK {
		t.Fatalf("redelivery: %d", d.Status)
	}
	if got := ke.CallbackTypes(); len(got) != 1 {
		t.Fatalf("callbacks after redelivery %v", got)
	}
}

func TestWebhookAndReturnRace(t *testing.T) {
	for round := 0; round < 5; round++ {
		ke := newEnv(t)
		c := ke.Client()
		ke.fake.HoldWebhooks()
		id := ke.buy(c, "mug")
		ref := ke.refOf(id)
		back := ke.onKomoju(c, id, "credit_card")
		var wg sync.WaitGroup
		wg.Add(2)
		var ret handlerstest.Resp
		go func() { defer wg.Done(); ke.fake.DeliverHeld() }()
		go func() { defer wg.Done(); ret = ke.Get(c, back) }()
		wg.Wait()
		if ret.Code != http.StatusSeeOther || !strings.Contains(ret.Location, "/thanks") {
			t.Fatalf("round %d: return %d %q", round, ret.Code, ret.Location)
		}
		if o := ke.OrderByRef(ref); o.Status != order.Paid {
			t.Fatalf("round %d: %s", round, o.Status)
		}
		if got := ke.CallbackTypes(); strings.Join(got, ",") != "order.paid" {
			t.Fatalf("round %d: callbacks %v", round, got)
		}
	}
}

// TestStaleAndForeignEventsChangeNothing covers the bugs other KOMOJU
// clients shipped (protocols.md §2.6): an earlier session's cancel or
// expiry arriving after a newer payment paid the order, a cancel for
// another payment of the same order, events about unknown payments, a
// wrong amount, and events out of order.
func TestStaleAndForeignEventsChangeNothing(t *testing.T) {
	ke := newEnv(t)
	c := ke.Client()
	first := ke.buy(c, "tea")
	ref1 := ke.refOf(first)
	r := ke.Get(c, ke.onKomoju(c, first, "back"))
	page := ke.Get(c, r.Location)
	r = ke.Post(c, r.Location, url.Values{"csrf": {handlerstest.CSRFOf(t, page.Body)}, "provider": {"komoju"}})
	second := strings.TrimPrefix(r.Location, ke.fake.URL+"/sessions/")
	ref2 := ke.refOf(second)
	want, paid := order.Pending, ""
	send := func(name, typ string, pay map[string]any) {
		t.Helper()
		body := event("ev"+strings.ReplaceAll(name, " ", "")+string(want), typ, pay)
		if code := ke.post(body, komojutest.Sign(webhookSecret, body)); code != http.StatusOK {
			t.Fatalf("%s: %d, want 200 (KOMOJU must not retry it)", name, code)
		}
		if o := ke.OrderByRef(ref2); o.Status != want || o.Transaction != paid {
			t.Fatalf("%s moved the order from %s to %s (transaction %s)", name, want, o.Status, o.Transaction)
		}
	}
	stale := func() {
		t.Helper()
		send("old session cancelled", "payment.cancelled", paymentObject("oldpayment1", "cancelled", ref1, first, 1800, "JPY"))
		send("old session expired", "payment.expired", paymentObject("oldpayment1", "expired", ref1, first, 1800, "JPY"))
		send("old session failed", "payment.failed", paymentObject("oldpayment1", "failed", ref1, first, 1800, "JPY"))
		send("another payment cancelled", "payment.cancelled", paymentObject("otherpayment2", "cancelled", ref2, second, 1800, "JPY"))
		send("another payment expired", "payment.expired", paymentObject("otherpayment2", "expired", ref2, "elsewhere", 1800, "JPY"))
	}
	stale() // while the customer is on the newer session's page
	ke.Get(c, ke.onKomoju(c, second, "konbini"))
	want = order.OnHold
	stale() // while the newer session's slip holds the order
	slip := ke.fake.PaymentOf(second)
	if err := ke.fake.Capture(slip); err != nil {
		t.Fatal(err)
	}
	want, paid = order.Paid, slip
	stale()
	send("old session cancelled", "payment.cancelled", paymentObject("oldpayment1", "cancelled", ref1, first, 1800, "JPY"))
	send("old session expired", "payment.expired", paymentObject("oldpayment1", "expired", ref1, first, 1800, "JPY"))
	send("another payment cancelled", "payment.cancelled", paymentObject("otherpayment2", "cancelled", ref2, second, 1800, "JPY"))
	send("the paid one cancelled", "payment.cancelled", paymentObject(paid, "cancelled", ref2, second, 1800, "JPY"))
	send("unknown payment", "payment.captured", paymentObject("unknownpay3", "captured", "noSuchAttempt", "nosession", 1800, "JPY"))
	send("late authorization", "payment.authorized", paymentObject(paid, "authorized", ref2, second, 1800, "JPY"))
	send("refund of another payment", "payment.refunded", paymentObject("otherpayment2", "refunded", ref2, second, 1800, "JPY"))
	if got := ke.CallbackTypes(); strings.Join(got, ",") != "order.pending,order.paid" {
		t.Fatalf("callbacks %v", got)
	}

	// A capture for the wrong amount never pays an order.
	id := ke.buy(c, "tea")
	ref := ke.refOf(id)
	send2 := event("evwrongamount", "payment.captured", paymentObject("wrongamount4", "captured", ref, id, 180, "JPY"))
	if code := ke.post(send2, komojutest.Sign(webhookSecret, send2)); code != http.StatusOK {
		t.Fatalf("wrong amount: %d", code)
	}
	if o := ke.OrderByRef(ref); o.Status != order.Pending {
		t.Fatalf("a capture of 180 JPY for an 1800 JPY order left it %s", o.Status)
	}
}

func TestForeignReferer(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		var logs bytes.Buffer
		var mu sync.Mutex
		ke := newEnv(t, func(c *handlers.Config, _ *komoju.Komoju) {
			c.RefuseForeignReferers = refuse
			c.ReturnReferers = []string{"https://3ds.example-bank.test"}
			c.Logger = handlerstest.BufferLogger(&logs, &mu)
		})
		c := ke.Client()
		ke.fake.HoldWebhooks() // the return alone must decide
		id := ke.buy(c, "tea")
		back := ke.onKomoju(c, id, "credit_card")
		ref := ke.refOf(id)
		gets := ke.requestsTo("GET", "/api/v1/sessions/"+id)
		r := ke.Get(nil, back, "Referer", "https://evil.example/phish?token=hunter2")
		mu.Lock()
		logged := logs.String()
		mu.Unlock()
		if !strings.Contains(logged, "foreign referer") || !strings.Contains(logged, "https://evil.example") || strings.Contains(logged, "hunter2") {
			t.Fatalf("refuse=%v: log of a foreign referer:\n%s", refuse, logged)
		}
		if refuse {
			if r.Code != http.StatusForbidden || !strings.Contains(r.Body, "did not come from the payment page") {
				t.Fatalf("refused referer: %d\n%s", r.Code, r.Body)
			}
			if n := ke.requestsTo("GET", "/api/v1/sessions/"+id); n != gets {
				t.Fatalf("a refused return asked KOMOJU %d times", n-gets)
			}
			if o := ke.OrderByRef(ref); o.Status != order.Pending {
				t.Fatalf("a refused return moved the order to %s", o.Status)
			}
			// Coming back from KOMOJU's page, a bank listed in
			// return_referers, or with no Referer at all goes on.
			for _, from := range []string{ke.fake.URL + "/sessions/" + id, "https://3ds.example-bank.test/acs", ""} {
				var hdr []string
				if from != "" {
					hdr = []string{"Referer", from}
				}
				if r := ke.Get(nil, back, hdr...); r.Code != http.StatusSeeOther || !strings.Contains(r.Location, "/thanks") {
					t.Fatalf("return from %q: %d %q", from, r.Code, r.Location)
				}
			}
		} else if r.Code != http.StatusSeeOther || !strings.Contains(r.Location, "/thanks") {
			t.Fatalf("logged referer: %d %q; the server-side check should have decided", r.Code, r.Location)
		}
		if o := ke.OrderByRef(ref); o.Status != order.Paid {
			t.Fatalf("refuse=%v: order %s", refuse, o.Status)
		}
	}
}

// TestStoreDownIsRetried: when the store cannot be read, a signed event is
// answered 503, so that KOMOJU delivers it again, not 200 and lost.
func TestStoreDownIsRetried(t *testing.T) {
	ke := newEnv(t)
	c := ke.Client()
	ke.fake.HoldWebhooks()
	id := ke.buy(c, "tea")
	ke.onKomoju(c, id, "credit_card")
	held := ke.fake.Held()
	if err := ke.Store.Close(); err != nil {
		t.Fatal(err)
	}
	if code := ke.post(held[0].Body, komojutest.Sign(webhookSecret, held[0].Body)); code != http.StatusServiceUnavailable {
		t.Fatalf("signed event with the store down: %d, want 503", code)
	}
}
