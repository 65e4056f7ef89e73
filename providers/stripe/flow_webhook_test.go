// Stripe webhooks and returns under attack and under race: forged, stale,
// replayed and rolled signatures, events that are not ours, the same
// event many times at once, webhook and return racing, and a session of
// one order shown on another's return URL.
package stripe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/handlers/handlerstest"
	"github.com/caddy-checkout/checkout/internal/stripetest"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/providers/sandbox"
	"github.com/caddy-checkout/checkout/providers/stripe"
)

// postStripeEvent sends an event body with a Stripe-Signature header.
func (se *stripeEnv) postStripeEvent(body []byte, signature string) int {
	se.T.Helper()
	req, _ := http.NewRequest(http.MethodPost, se.Srv.URL+"/_checkout/webhook/stripe", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if signature != "" {
		req.Header.Set("Stripe-Signature", signature)
	}
	return se.Do(&http.Client{Transport: &http.Transport{}}, req).Code
}

// paidEventNotDelivered has a customer pay a new order at Stripe while
// webhooks are not delivered, and returns the order's attempt reference
// and the checkout.session.completed event Stripe would have sent.
func (se *stripeEnv) paidEventNotDelivered(product string) (string, stripetest.Event) {
	se.T.Helper()
	id := se.buyStripe(se.Client(), product)
	ref := se.refOfSession(id)
	se.fake.SetWebhook("")
	ev, err := se.fake.Pay(id)
	if err != nil {
		se.T.Fatal(err)
	}
	if o := se.OrderByRef(ref); o.Status != order.Pending {
		se.T.Fatalf("order %s before any webhook", o.Status)
	}
	return ref, ev
}

// rewrite changes an event's JSON (as a map) and returns the new body.
func rewrite(t *testing.T, body []byte, change func(ev map[string]any)) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	change(ev)
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sessionOf(ev map[string]any) map[string]any {
	return ev["data"].(map[string]any)["object"].(map[string]any)
}

func TestStripeWebhookSignatures(t *testing.T) {
	se := newStripeEnv(t)
	ref, ev := se.paidEventNotDelivered("mug")
	now := se.Clock.Now()
	const oldSecret = "whsec_stripe_old_fedcba9876543210"

	for _, c := range []struct {
		name string
		sig  string
	}{
		{"no signature", ""},
		{"forged with another secret", stripetest.Sign(ev.Body, now, oldSecret)},
		{"stale (301 s old)", stripetest.Sign(ev.Body, now.Add(-301*time.Second), stripeWebhookSecret)},
		{"from the future (301 s ahead)", stripetest.Sign(ev.Body, now.Add(301*time.Second), stripeWebhookSecret)},
		{"garbage header", "t=abc,v1=zz"},
	} {
		if code := se.postStripeEvent(ev.Body, c.sig); code != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", c.name, code)
		}
	}
	tampered := rewrite(t, ev.Body, func(m map[string]any) { sessionOf(m)["amount_total"] = 1 })
	if code := se.postStripeEvent(tampered, stripetest.Sign(ev.Body, now, stripeWebhookSecret)); code != http.StatusUnauthorized {
		t.Errorf("tampered body: %d, want 401", code)
	}
	if o := se.OrderByRef(ref); o.Status != order.Pending || len(se.Deliveries()) != 0 {
		t.Fatalf("rejected webhooks changed the order: %s, %d callbacks", o.Status, len(se.Deliveries()))
	}

	// While Stripe rolls the endpoint secret it signs with both; the
	// site, still on the old or already on the new one, verifies.
	rolling := stripetest.Sign(ev.Body, now.Add(-299*time.Second), oldSecret, stripeWebhookSecret)
	if code := se.postStripeEvent(ev.Body, rolling); code != http.StatusOK {
		t.Fatalf("rolled-secret signature: %d, want 200", code)
	}
	if o := se.OrderByRef(ref); o.Status != order.Paid {
		t.Fatalf("after the verified event: %s", o.Status)
	}
	// The same event replayed later within tolerance: accepted, no change.
	se.Clock.Add(200 * time.Second)
	if code := se.postStripeEvent(ev.Body, stripetest.Sign(ev.Body, se.Clock.Now(), stripeWebhookSecret)); code != http.StatusOK {
		t.Fatalf("redelivery: %d", code)
	}
	// And replayed with its old header after the tolerance: refused.
	if code := se.postStripeEvent(ev.Body, rolling); code != http.StatusUnauthorized {
		t.Fatalf("replay of a 500 s old signature: %d, want 401", code)
	}
	if types := se.CallbackTypes(); len(types) != 1 || types[0] != "order.paid" {
		t.Fatalf("callbacks %v, want one order.paid", types)
	}
}

func TestStripeSameEventHundredTimesConcurrently(t *testing.T) {
	se := newStripeEnv(t)
	ref, ev := se.paidEventNotDelivered("tee")
	sig := stripetest.Sign(ev.Body, se.Clock.Now(), stripeWebhookSecret)
	var wg sync.WaitGroup
	codes := make([]int, 100)
	for i := range codes {
		wg.Add(1)
		go func() { defer wg.Done(); codes[i] = se.postStripeEvent(ev.Body, sig) }()
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("delivery %d answered %d", i, c)
		}
	}
	o := se.OrderByRef(ref)
	applied := 0
	for _, h := range o.History {
		if h.Applied && h.To == order.Paid {
			applied++
		}
	}
	if o.Status != order.Paid || applied != 1 {
		t.Fatalf("order %s with %d paid transitions, want 1", o.Status, applied)
	}
	if n := len(se.Deliveries()); n != 1 {
		t.Fatalf("%d callbacks queued, want 1", n)
	}
}

func TestStripeEventsThatAreNotOursChangeNothing(t *testing.T) {
	se := newStripeEnv(t)
	ref, ev := se.paidEventNotDelivered("mug")
	now := se.Clock.Now()
	for name, change := range map[string]func(map[string]any){
		"another connected account": func(m map[string]any) { m["account"] = "acct_1SomeoneElse" },
		"another site":              func(m map[string]any) { sessionOf(m)["metadata"].(map[string]any)["checkout_site"] = "othershop" },
		"a session we did not make": func(m map[string]any) { sessionOf(m)["metadata"] = map[string]any{} },
		"another client reference":  func(m map[string]any) { sessionOf(m)["client_reference_id"] = "zzz" },
		"an event type we ignore":   func(m map[string]any) { m["type"] = "customer.created" },
	} {
		body := rewrite(t, ev.Body, func(m map[string]any) { m["id"] = "evt_" + strings.ReplaceAll(name, " ", "_"); change(m) })
		if code := se.postStripeEvent(body, stripetest.Sign(body, now, stripeWebhookSecret)); code != http.StatusOK {
			t.Errorf("%s: %d, want 200 (Stripe must not retry events that are not ours)", name, code)
		}
	}
	if o := se.OrderByRef(ref); o.Status != order.Pending {
		t.Fatalf("events that are not ours moved the order to %s", o.Status)
	}
	// Newer API versions are read: the real event with a newer version pays.
	newer := rewrite(t, ev.Body, func(m map[string]any) { m["api_version"] = "2025-10-29.clover" })
	if code := se.postStripeEvent(newer, stripetest.Sign(newer, now, stripeWebhookSecret)); code != http.StatusOK {
		t.Fatalf("event of a newer API version: %d", code)
	}
	if o := se.OrderByRef(ref); o.Status != order.Paid {
		t.Fatalf("after the newer-version event: %s", o.Status)
	}
}

func TestStripeConnectedAccount(t *testing.T) {
	se := newStripeEnv(t, func(_ *handlers.Config, p *stripe.Stripe) { p.Account = "acct_1Organiser" })
	c := se.Client()
	id := se.buyStripe(c, "mug")
	for _, rq := range se.fake.Requests() {
		if rq.Account != "acct_1Organiser" {
			t.Fatalf("%s %s sent with Stripe-Account %q", rq.Method, rq.Path, rq.Account)
		}
	}
	se.payOnStripe(c, id, "pay")
	ev := se.fake.Events()[len(se.fake.Events())-1]
	if ev.Account != "acct_1Organiser" {
		t.Fatalf("event account %q", ev.Account)
	}
	if o := se.OrderByRef(se.refOfSession(id)); o.Status != order.Paid {
		t.Fatalf("connected account's payment: %s", o.Status)
	}
	// The platform's own event (no account) for the same session is not
	// this site's.
	_, ev2 := se.paidEventNotDelivered("tee")
	platform := rewrite(t, ev2.Body, func(m map[string]any) { delete(m, "account") })
	if code := se.postStripeEvent(platform, stripetest.Sign(platform, se.Clock.Now(), stripeWebhookSecret)); code != http.StatusOK {
		t.Fatal(code)
	}
	if n := len(se.Deliveries()); n != 1 {
		t.Fatalf("%d callbacks, want only the first order's", n)
	}
}

// startAPIOrder announces order id with amount through the server API and
// has a customer choose Stripe; it returns the session id.
func (se *stripeEnv) startAPIOrder(id, amount string) string {
	se.T.Helper()
	r := se.API(http.MethodPost, "/_checkout/api/orders", se.SecretText,
		`{"order_id":"`+id+`","amount":"`+amount+`","currency":"USD","provider":"stripe"}`)
	var out struct {
		PayURL string `json:"pay_url"`
	}
	if err := json.Unmarshal([]byte(r.Body), &out); err != nil || out.PayURL == "" {
		se.T.Fatalf("api: %d %s", r.Code, r.Body)
	}
	c := se.Client()
	page := se.Get(c, out.PayURL)
	next := se.Post(c, out.PayURL, url.Values{"csrf": {handlerstest.CSRFOf(se.T, page.Body)}, "provider": {"stripe"}}, "Origin", se.Srv.URL)
	sid, ok := strings.CutPrefix(next.Location, se.fake.URL+"/pay/")
	if !ok {
		se.T.Fatalf("choosing Stripe went to %q", next.Location)
	}
	return sid
}

func (se *stripeEnv) apiOrder(id string) *order.Order {
	se.T.Helper()
	o, err := se.Store.Get(context.Background(), order.Key{Site: "shop", ID: id})
	if err != nil {
		se.T.Fatal(err)
	}
	return o
}

func TestStripeNewAmountExpiresTheOldSession(t *testing.T) {
	se := newStripeEnv(t)
	old := se.startAPIOrder("A-1", "10.00")
	se.API(http.MethodPost, "/_checkout/api/orders", se.SecretText, `{"order_id":"A-1","amount":"12.00","currency":"USD","provider":"stripe"}`)
	se.fake.WaitDeliveries()
	if sess, _ := se.fake.Session(old); sess.Status != "expired" {
		t.Fatalf("the replaced attempt's session is %s at Stripe, want expired", sess.Status)
	}
	if _, err := se.fake.Pay(old); err == nil {
		t.Fatal("the customer could still pay the old amount")
	}
	o := se.apiOrder("A-1")
	if o.Status != order.Pending || len(o.Attempts) != 2 {
		t.Fatalf("order %s with %d attempts", o.Status, len(o.Attempts))
	}
	for _, h := range o.History {
		if !h.Applied {
			t.Fatalf("the old session's expiry left a refused event in the history: %+v", h)
		}
	}
}

func TestStripeSupersededAttemptPaymentChangesNothing(t *testing.T) {
	se := newStripeEnv(t)
	old := se.startAPIOrder("A-2", "10.00")
	// The customer pays the old amount just as the shop changes it; the
	// webhook arrives after the change.
	se.fake.SetWebhook("")
	ev, err := se.fake.Pay(old)
	if err != nil {
		t.Fatal(err)
	}
	se.API(http.MethodPost, "/_checkout/api/orders", se.SecretText, `{"order_id":"A-2","amount":"12.00","currency":"USD","provider":"stripe"}`)
	if code := se.postStripeEvent(ev.Body, stripetest.Sign(ev.Body, se.Clock.Now(), stripeWebhookSecret)); code != http.StatusOK {
		t.Fatalf("webhook: %d", code)
	}
	o := se.apiOrder("A-2")
	if o.Status != order.Pending || o.Transaction != "" || len(o.Attempts) != 2 {
		t.Fatalf("a payment for the superseded attempt moved the order: %s txn %q", o.Status, o.Transaction)
	}
	last := o.History[len(o.History)-1]
	if last.Applied || !strings.Contains(last.Note, "superseded") {
		t.Fatalf("the refused payment is not in the history for the operator: %+v", last)
	}
	if !slices.Contains(o.Flags, "paid_superseded") {
		t.Fatalf("flags %v: the operator cannot find the payment that needs a refund", o.Flags)
	}
}

func TestStripeOrderEndedHereExpiresTheSession(t *testing.T) {
	se := newStripeEnv(t)
	// The customer cancels on our pay page.
	sid := se.startAPIOrder("C-1", "10.00")
	o := se.apiOrder("C-1")
	c := se.Client()
	page := se.Get(c, "/_checkout/pay/"+o.Current().Ref)
	se.Post(c, "/_checkout/pay/"+o.Current().Ref, url.Values{"csrf": {handlerstest.CSRFOf(t, page.Body)}, "action": {"cancel"}}, "Origin", se.Srv.URL)
	// Another order runs out of time.
	sid2 := se.startAPIOrder("C-2", "10.00")
	se.Clock.Add(31 * time.Minute)
	if n, err := se.Site().Expire(context.Background(), 100); err != nil || n != 1 {
		t.Fatalf("expire: %d, %v", n, err)
	}
	se.fake.WaitDeliveries()
	for id, want := range map[string]order.State{"C-1": order.Cancelled, "C-2": order.Expired} {
		o := se.apiOrder(id)
		if o.Status != want {
			t.Fatalf("%s: %s, want %s", id, o.Status, want)
		}
		for _, h := range o.History {
			if !h.Applied {
				t.Fatalf("%s: the session's expiry event left a refused event: %+v", id, h)
			}
		}
	}
	for _, id := range []string{sid, sid2} {
		if sess, _ := se.fake.Session(id); sess.Status != "expired" {
			t.Fatalf("session %s is %s at Stripe after its order ended, want expired", id, sess.Status)
		}
	}
}

func TestStripeWebhookAndReturnRace(t *testing.T) {
	for i := 0; i < 5; i++ {
		se := newStripeEnv(t)
		c := se.Client()
		id := se.buyStripe(c, "mug")
		ref := se.refOfSession(id)
		se.fake.SetWebhook("")
		ev, err := se.fake.Pay(id)
		if err != nil {
			t.Fatal(err)
		}
		sig := stripetest.Sign(ev.Body, se.Clock.Now(), stripeWebhookSecret)
		var wg sync.WaitGroup
		var ret handlerstest.Resp
		var code int
		wg.Add(2)
		go func() { defer wg.Done(); code = se.postStripeEvent(ev.Body, sig) }()
		go func() {
			defer wg.Done()
			ret = se.Get(c, "/_checkout/return/stripe/"+ref+"?session_id="+id)
		}()
		wg.Wait()
		if code != http.StatusOK || ret.Code != http.StatusSeeOther || !strings.Contains(ret.Location, "checkout_token=") {
			t.Fatalf("webhook %d, return %d %q", code, ret.Code, ret.Location)
		}
		if types := se.CallbackTypes(); len(types) != 1 || types[0] != "order.paid" {
			t.Fatalf("round %d: callbacks %v, want one order.paid", i, types)
		}
	}
}

func TestStripeReturnWithAnotherOrdersSessionIsRefused(t *testing.T) {
	se := newStripeEnv(t)
	alice, mallory := se.Client(), se.Client()
	aliceID := se.buyStripe(alice, "tee")
	se.payOnStripe(alice, aliceID, "pay")
	malloryID := se.buyStripe(mallory, "tee")
	malloryRef := se.refOfSession(malloryID)
	r := se.Get(mallory, "/_checkout/return/stripe/"+malloryRef+"?session_id="+aliceID)
	if r.Code != http.StatusBadRequest || strings.Contains(r.Location, "checkout_token") {
		t.Fatalf("return with another order's paid session: %d %q, want 400", r.Code, r.Location)
	}
	for _, bad := range []string{"cs_test_doesnotexist", "../../v1/charges", ""} {
		r := se.Get(mallory, "/_checkout/return/stripe/"+malloryRef+"?session_id="+url.QueryEscape(bad))
		if strings.Contains(r.Location, "checkout_token") {
			t.Fatalf("return with session_id %q reached the shop as paid", bad)
		}
	}
	if o := se.OrderByRef(malloryRef); o.Status != order.Pending {
		t.Fatalf("Mallory's order became %s", o.Status)
	}
}

func TestStripeReconcilerHealsLostWebhooks(t *testing.T) {
	se := newStripeEnv(t)
	ref, _ := se.paidEventNotDelivered("mug")
	if n, err := se.Site().Reconcile(context.Background(), 10*time.Minute, 100); err != nil || n != 0 {
		t.Fatalf("reconcile before the age: %d, %v", n, err)
	}
	se.Clock.Add(11 * time.Minute)
	if n, err := se.Site().Reconcile(context.Background(), 10*time.Minute, 100); err != nil || n != 1 {
		t.Fatalf("reconcile: %d changed, %v; want 1", n, err)
	}
	if o := se.OrderByRef(ref); o.Status != order.Paid || !strings.HasPrefix(o.Transaction, "pi_") {
		t.Fatalf("after reconcile: %s %q", o.Status, o.Transaction)
	}
	// (The demo shop checks callback timestamps against the real clock,
	// which this test has left behind, so the queued callback is checked.)
	if ds := se.Deliveries(); len(ds) != 1 || ds[0].Type != "order.paid" {
		t.Fatalf("%d callbacks queued, want one order.paid", len(ds))
	}
}

func TestStripeOutageShowsAnErrorAndRecovers(t *testing.T) {
	se := newStripeEnv(t)
	c := se.Client()
	// Two 503s are retried by stripe-go under the same idempotency key:
	// the customer notices nothing and one session is made.
	se.fake.FailNext(2, http.StatusServiceUnavailable)
	se.buyStripe(c, "mug")
	creates := se.sessionCreates()
	if len(se.fake.Sessions()) != 1 || len(creates) != 3 || creates[0].IdempotencyKey != creates[2].IdempotencyKey {
		t.Fatalf("after two 503s: %d sessions from %d requests", len(se.fake.Sessions()), len(creates))
	}
	// A 500 on a POST is not retried (Stripe's idempotency layer has
	// recorded it): the customer gets an error page, nothing is stored
	// as started, and the next try works.
	se.fake.FailNext(1, http.StatusInternalServerError)
	r := se.Post(c, "/buy", url.Values{"product": {"tee"}})
	if r.Code != http.StatusServiceUnavailable || strings.Contains(r.Location, se.fake.URL) {
		t.Fatalf("buy during a Stripe outage: %d %q, want a 503 page", r.Code, r.Location)
	}
	if strings.Contains(r.Body, "sk_test_") {
		t.Fatal("the error page shows the secret key")
	}
	se.buyStripe(c, "tee")
	if n := len(se.fake.Sessions()); n != 2 {
		t.Fatalf("after the outage: %d sessions, want 2", n)
	}
}

func TestStripeWrongAmountOrCurrencyIsNeverPaid(t *testing.T) {
	se := newStripeEnv(t)
	ref, ev := se.paidEventNotDelivered("mug") // 12.50 USD
	for name, change := range map[string]func(map[string]any){
		"less":           func(m map[string]any) { sessionOf(m)["amount_total"] = 1249 },
		"more":           func(m map[string]any) { sessionOf(m)["amount_total"] = 125000 },
		"other currency": func(m map[string]any) { sessionOf(m)["currency"] = "eur" },
		"no amount":      func(m map[string]any) { delete(sessionOf(m), "amount_total") },
	} {
		body := rewrite(t, ev.Body, func(m map[string]any) { m["id"] = "evt_" + strings.ReplaceAll(name, " ", "_"); change(m) })
		code := se.postStripeEvent(body, stripetest.Sign(body, se.Clock.Now(), stripeWebhookSecret))
		if code != http.StatusOK && code != http.StatusBadRequest {
			t.Errorf("%s: %d", name, code)
		}
		if o := se.OrderByRef(ref); o.Status != order.Pending {
			t.Fatalf("a session paid with %s amount made the order %s", name, o.Status)
		}
	}
	// The return re-check reads Stripe's own session, which is right.
	r := se.Get(se.Client(), "/_checkout/return/stripe/"+ref)
	if o := se.OrderByRef(ref); o.Status != order.Paid || r.Code != http.StatusSeeOther {
		t.Fatalf("after the return check: %s (%d)", o.Status, r.Code)
	}
}

// TestStripeLogsHoldNoSecrets drives the paths that log (a payment, a
// refund, forged and malformed webhooks, an outage, a refused return) and
// checks that neither Stripe key nor any signature appears in the logs.
func TestStripeLogsHoldNoSecrets(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	se := newStripeEnv(t, func(c *handlers.Config, _ *stripe.Stripe) { c.Logger = handlerstest.BufferLogger(&logs, &mu) })
	c := se.Client()
	id := se.buyStripe(c, "mug")
	ref := se.refOfSession(id)
	se.payOnStripe(c, id, "pay")
	if _, _, err := se.Site().Refund(context.Background(), se.OrderByRef(ref).ID, handlers.RefundRequest{}); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"id":"evt_x","type":"checkout.session.completed"}`)
	forged := stripetest.Sign(body, se.Clock.Now(), "whsec_forger_0123456789")
	se.postStripeEvent(body, forged)
	se.postStripeEvent([]byte("{not json"), stripetest.Sign([]byte("{not json"), se.Clock.Now(), stripeWebhookSecret))
	se.fake.FailNext(1, http.StatusInternalServerError)
	se.Post(c, "/buy", url.Values{"product": {"tee"}})
	se.Get(c, "/_checkout/return/stripe/"+ref+"?session_id=cs_test_nosuch")
	se.fake.WaitDeliveries()

	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if !strings.Contains(out, "webhook rejected") || !strings.Contains(out, "order moved") {
		t.Fatalf("the paths under test did not log:\n%s", out)
	}
	for _, secret := range []string{se.prov.SecretKey, strings.TrimPrefix(se.prov.SecretKey, "sk_test_"), stripeWebhookSecret,
		strings.TrimPrefix(stripeWebhookSecret, "whsec_"), forged, forged[strings.Index(forged, "v1=")+3:]} {
		if strings.Contains(out, secret) {
			t.Fatalf("logs contain a secret or signature %q:\n%s", secret, out)
		}
	}
}

// TestStripeReconcilerAsksEveryOrderInTurn: with more open orders than a
// pass takes, successive passes ask about each order once before asking
// about any again, and a pass with nothing due asks Stripe nothing.
func TestStripeReconcilerAsksEveryOrderInTurn(t *testing.T) {
	se := newStripeEnv(t)
	c := se.Client()
	for range 12 {
		se.buyStripe(c, "mug")
	}
	asked := func() map[string]int {
		n := map[string]int{}
		for _, rq := range se.fake.Requests() {
			if id, ok := strings.CutPrefix(rq.Path, "/v1/checkout/sessions/"); ok && rq.Method == http.MethodGet {
				n[id]++
			}
		}
		return n
	}
	reconcile := func() {
		t.Helper()
		if _, err := se.Site().Reconcile(context.Background(), 10*time.Minute, 5); err != nil {
			t.Fatal(err)
		}
	}
	se.Clock.Add(11 * time.Minute)
	var first map[string]int
	for pass, want := range []int{5, 10, 12} {
		reconcile()
		if pass == 0 {
			first = asked()
		}
		if got := len(asked()); got != want {
			t.Fatalf("after pass %d: %d sessions asked about, want %d (five a pass, none twice)", pass+1, got, want)
		}
	}
	for id, n := range asked() {
		if n != 1 {
			t.Fatalf("session %s asked %d times in the first round", id, n)
		}
	}
	before := len(se.fake.Requests())
	reconcile()
	if got := len(se.fake.Requests()) - before; got != 0 {
		t.Fatalf("a pass with every order asked within the age sent %d requests to Stripe", got)
	}
	// Past the age again, the round starts again with the orders asked first.
	se.Clock.Add(11 * time.Minute)
	reconcile()
	again := 0
	for id, n := range asked() {
		if n == 2 {
			if first[id] != 1 {
				t.Fatalf("session %s asked again before the first pass's orders", id)
			}
			again++
		}
	}
	if again != 5 {
		t.Fatalf("%d sessions asked again in the second round's first pass, want 5", again)
	}
}

// TestSandboxCannotSettleAStripePayment: on a site that offers the sandbox
// beside Stripe, a customer who chose Stripe cannot mark the order paid
// through the sandbox: its page sends them back to the pay page, and a
// sandbox webhook for the Stripe attempt (signed with the site secret, as
// the sandbox page sends it) changes nothing.
func TestSandboxCannotSettleAStripePayment(t *testing.T) {
	se := newStripeEnv(t, func(c *handlers.Config, _ *stripe.Stripe) {
		c.Providers = append(c.Providers, &sandbox.Sandbox{})
	})
	c := se.Client()
	r := se.Post(c, "/buy", url.Values{"product": {"mug"}})
	if r.Code != http.StatusSeeOther || !strings.Contains(r.Location, "/_checkout/pay/") {
		t.Fatalf("buy with two providers: %d %q, want the pay page", r.Code, r.Location)
	}
	ref := handlerstest.RefOf(r.Location)
	page := se.Get(c, r.Location)
	csrf := handlerstest.CSRFOf(t, page.Body)
	chose := se.Post(c, r.Location, url.Values{"csrf": {csrf}, "provider": {"stripe"}}, "Origin", se.Srv.URL)
	if chose.Code != http.StatusSeeOther || !strings.HasPrefix(chose.Location, se.fake.URL+"/pay/") {
		t.Fatalf("choosing Stripe: %d %q", chose.Code, chose.Location)
	}

	sb := "/_checkout/sandbox/" + ref
	if got := se.Get(c, sb); got.Code != http.StatusSeeOther || got.Location != "/_checkout/pay/"+ref {
		t.Fatalf("sandbox page of the Stripe attempt: %d %q, want 303 to the pay page", got.Code, got.Location)
	}
	if got := se.Post(c, sb, url.Values{"csrf": {csrf}, "outcome": {"paid"}}, "Origin", se.Srv.URL); got.Code != http.StatusSeeOther ||
		got.Location != "/_checkout/pay/"+ref {
		t.Fatalf("sandbox 'paid' for the Stripe attempt: %d %q, want 303 to the pay page", got.Code, got.Location)
	}
	body := []byte(`{"id":"evt_forged","type":"payment.paid","ref":"` + ref + `","amount":"` + se.OrderByRef(ref).Amount.String() +
		`","currency":"USD","transaction":"sbx_txn_forged"}`)
	req, _ := http.NewRequest(http.MethodPost, se.Srv.URL+"/_checkout/webhook/sandbox", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	se.Secret.SetWebhookHeaders(req.Header, "evt_forged", se.Clock.Now(), body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if o := se.OrderByRef(ref); o.Status != order.Pending || o.Transaction != "" {
		t.Fatalf("after a sandbox webhook for the Stripe attempt (answered %d): order %s, transaction %q; want pending",
			resp.StatusCode, o.Status, o.Transaction)
	}
}

// TestStripeDisputeEventsNotOursChangeNothing: dispute events of another
// account, of a payment Stripe does not know, or with a status this build
// does not know (a newer Stripe's) are answered 200 and change nothing,
// so that Stripe does not retry them for days; the real one flags the
// order.
func TestStripeDisputeEventsNotOursChangeNothing(t *testing.T) {
	se := newStripeEnv(t)
	c := se.Client()
	id := se.buyStripe(c, "tee")
	ref := se.refOfSession(id)
	se.payOnStripe(c, id, "pay")
	se.fake.WaitDeliveries()
	se.fake.SetWebhook("")
	dp, err := se.fake.OpenDispute(id, 0, "fraudulent")
	if err != nil {
		t.Fatal(err)
	}
	var ev stripetest.Event
	for _, e := range se.fake.Events() {
		if e.Type == "charge.dispute.created" {
			ev = e
		}
	}
	now := se.Clock.Now()
	for name, tc := range map[string]struct {
		change func(map[string]any)
		code   int
	}{
		"another connected account": {func(m map[string]any) { m["account"] = "acct_1SomeoneElse" }, http.StatusOK},
		"a payment Stripe does not know": {func(m map[string]any) {
			sessionOf(m)["payment_intent"] = "pi_3NotAnIntentOfOurs0000000"
		}, http.StatusOK},
		"a charge made outside Checkout":    {func(m map[string]any) { sessionOf(m)["payment_intent"] = nil }, http.StatusOK},
		"a status this build does not know": {func(m map[string]any) { sessionOf(m)["status"] = "pending_magic" }, http.StatusOK},
	} {
		body := rewrite(t, ev.Body, func(m map[string]any) { m["id"] = "evt_" + strings.ReplaceAll(name, " ", "_"); tc.change(m) })
		if code := se.postStripeEvent(body, stripetest.Sign(body, now, stripeWebhookSecret)); code != tc.code {
			t.Errorf("%s: %d, want %d", name, code, tc.code)
		}
	}
	if o := se.OrderByRef(ref); len(o.Disputes) != 0 || slices.Contains(o.Flags, "disputed") {
		t.Fatalf("dispute events that are not ours changed the order: %+v %v", o.Disputes, o.Flags)
	}
	if code := se.postStripeEvent(ev.Body, stripetest.Sign(ev.Body, now, stripeWebhookSecret)); code != http.StatusOK {
		t.Fatalf("the real dispute event: %d", code)
	}
	if o := se.OrderByRef(ref); len(o.Disputes) != 1 || o.Disputes[0].ID != dp || !slices.Contains(o.Flags, "disputed") || o.Status != order.Paid {
		t.Fatalf("after the real dispute event: %+v %v %s", o.Disputes, o.Flags, o.Status)
	}
}
