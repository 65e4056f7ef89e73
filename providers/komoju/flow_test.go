// The KOMOJU provider driven through the site as customers, KOMOJU and
// operators drive it, against the stateful fake KOMOJU
// (internal/komojutest).
package komoju_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/handlers/handlerstest"
	"github.com/caddy-checkout/checkout/internal/komojutest"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/komoju"
	"github.com/caddy-checkout/checkout/providers/sandbox"
)

const webhookSecret = "komoju-webhook-token-0123"

type komojuEnv struct {
	*handlerstest.Env
	fake *komojutest.Server
	prov *komoju.Komoju
}

type option func(*handlers.Config, *komoju.Komoju)

func withSandboxToo(c *handlers.Config, _ *komoju.Komoju) {
	c.Providers = append(c.Providers, &sandbox.Sandbox{})
}

// newEnv is the harness's site with KOMOJU as its provider, talking to a
// fake KOMOJU that delivers its webhooks to the site.
func newEnv(t *testing.T, opts ...option) *komojuEnv {
	t.Helper()
	ke := &komojuEnv{prov: &komoju.Komoju{SecretKey: komojutest.SecretKey, WebhookSecret: webhookSecret}}
	ke.Env = handlerstest.New(t, func(c *handlers.Config) {
		now := c.Now
		ke.fake = komojutest.New(t, komojutest.WithClock(func() time.Time { return now() }))
		ke.prov.APIURL = ke.fake.URL
		c.Providers = []provider.Provider{ke.prov}
		for _, o := range opts {
			o(c, ke.prov)
		}
	})
	ke.fake.SetWebhook(ke.Srv.URL+"/_checkout/webhook/komoju", webhookSecret)
	return ke
}

// buy has the demo shop announce an order and returns the KOMOJU session
// the customer is sent to.
func (ke *komojuEnv) buy(c *http.Client, product string) string {
	ke.T.Helper()
	r := ke.Post(c, "/buy", url.Values{"product": {product}})
	prefix := ke.fake.URL + "/sessions/"
	if r.Code != http.StatusSeeOther || !strings.HasPrefix(r.Location, prefix) {
		ke.T.Fatalf("buy: %d %q, want 303 to a KOMOJU session:\n%s", r.Code, r.Location, r.Body)
	}
	return strings.TrimPrefix(r.Location, prefix)
}

// onKomoju presses a button of the fake's hosted page and returns where
// KOMOJU sends the customer.
func (ke *komojuEnv) onKomoju(c *http.Client, session, action string) string {
	ke.T.Helper()
	r := ke.Post(c, ke.fake.URL+"/sessions/"+session, url.Values{"action": {action}, "card": {"4111111111111111"}})
	if r.Code != http.StatusSeeOther {
		ke.T.Fatalf("KOMOJU page %s: %d\n%s", action, r.Code, r.Body)
	}
	return r.Location
}

// slip has a customer buy tea, take a konbini slip on KOMOJU's page and
// come back; it returns the session, the attempt and the slip's payment.
func (ke *komojuEnv) slip(c *http.Client) (id, ref, pid string) {
	ke.T.Helper()
	id = ke.buy(c, "tea")
	ref = ke.refOf(id)
	ke.Get(c, ke.onKomoju(c, id, "konbini"))
	return id, ref, ke.fake.PaymentOf(id)
}

// creates are the session creations KOMOJU received.
func (ke *komojuEnv) creates() []komojutest.Request {
	var out []komojutest.Request
	for _, rq := range ke.fake.Requests() {
		if rq.Method == http.MethodPost && rq.Path == "/api/v1/sessions" {
			out = append(out, rq)
		}
	}
	return out
}

func (ke *komojuEnv) refOf(session string) string {
	ke.T.Helper()
	for _, rq := range ke.creates() {
		meta, _ := rq.Body["metadata"].(map[string]any)
		ref, _ := meta["checkout_ref"].(string)
		if o, err := ke.Store.ByRef(context.Background(), ref); err == nil && o.Attempt(ref).ProviderRef == session {
			return ref
		}
	}
	ke.T.Fatalf("no attempt recorded session %s", session)
	return ""
}

func (ke *komojuEnv) requestsTo(method, path string) int {
	n := 0
	for _, rq := range ke.fake.Requests() {
		if rq.Method == method && rq.Path == path {
			n++
		}
	}
	return n
}

func TestCardPaidEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		product, currency, shows string
		units                    float64
	}{
		{"tea", "JPY", "1800 JPY", 1800},
		{"mug", "USD", "12.50 USD", 1250},
	} {
		t.Run(tc.currency, func(t *testing.T) {
			ke := newEnv(t)
			c := ke.Client()
			id := ke.buy(c, tc.product)
			creates := ke.creates()
			if len(creates) != 1 {
				t.Fatalf("%d sessions created, want 1", len(creates))
			}
			body, ref := creates[0].Body, ke.refOf(id)
			o := ke.OrderByRef(ref)
			want := map[string]any{
				"mode": "payment", "amount": tc.units, "currency": tc.currency,
				"return_url":         ke.Srv.URL + "/_checkout/return/komoju/" + ref,
				"default_locale":     "en",
				"expires_in_seconds": float64(1800), // the order's 30 minutes
			}
			for k, v := range want {
				if body[k] != v {
					t.Errorf("session %s = %v, want %v", k, body[k], v)
				}
			}
			if pd, _ := body["payment_data"].(map[string]any); pd["external_order_num"] != ref {
				t.Errorf("external_order_num = %v, want the attempt reference %s", pd["external_order_num"], ref)
			}
			meta, _ := body["metadata"].(map[string]any)
			if meta["checkout_site"] != "shop" || meta["checkout_order"] != o.ID || meta["checkout_ref"] != ref {
				t.Errorf("metadata %v", meta)
			}
			if k := creates[0].IdempotencyKey; !strings.HasPrefix(k, "checkout-"+ref+"-") {
				t.Errorf("idempotency key %q", k)
			}
			back := ke.onKomoju(c, id, "credit_card")
			if back != ke.Srv.URL+"/_checkout/return/komoju/"+ref+"?session_id="+id {
				t.Fatalf("KOMOJU sent the customer to %q", back)
			}
			r := ke.Get(c, back)
			if r.Code != http.StatusSeeOther || !strings.Contains(r.Location, "/orders/"+o.ID+"/thanks") {
				t.Fatalf("return: %d %q", r.Code, r.Location)
			}
			if shop := ke.Get(c, r.Location); !strings.Contains(shop.Body, "<strong>paid</strong>: "+tc.shows) {
				t.Fatalf("the shop did not see a verified payment:\n%s", shop.Body)
			}
			o = ke.OrderByRef(ref)
			if o.Status != order.Paid || o.PaidWith != "komoju" || o.Transaction != ke.fake.PaymentOf(id) {
				t.Fatalf("order %s paid with %q transaction %q", o.Status, o.PaidWith, o.Transaction)
			}
			if got := ke.CallbackTypes(); strings.Join(got, ",") != "order.paid" {
				t.Fatalf("callbacks %v, want one order.paid", got)
			}
		})
	}
}

func TestDoubleClickMakesOneSession(t *testing.T) {
	ke := newEnv(t, withSandboxToo)
	c := ke.Client()
	r := ke.Post(c, "/buy", url.Values{"product": {"tea"}})
	pay := ke.Get(c, r.Location)
	form := url.Values{"csrf": {handlerstest.CSRFOf(t, pay.Body)}, "provider": {"komoju"}}
	first := ke.Post(c, r.Location, form)
	second := ke.Post(c, r.Location, form)
	if first.Code != http.StatusSeeOther || first.Location != second.Location || !strings.HasPrefix(first.Location, ke.fake.URL+"/sessions/") {
		t.Fatalf("two clicks: %d %q and %d %q", first.Code, first.Location, second.Code, second.Location)
	}
	if n := len(ke.creates()); n != 1 {
		t.Fatalf("%d sessions created, want 1 (the open one is reused)", n)
	}
	// The pay page lets its form redirect to KOMOJU (CSP form-action).
	if csp := pay.Header.Get("Content-Security-Policy"); !strings.Contains(csp, ke.fake.URL) {
		t.Fatalf("pay page CSP %q does not allow KOMOJU's page", csp)
	}
}

func TestKonbiniHeldPastExpiryThenCaptured(t *testing.T) {
	ke := newEnv(t)
	c := ke.Client()
	id := ke.buy(c, "tea")
	ref := ke.refOf(id)
	back := ke.onKomoju(c, id, "konbini")
	page := ke.Get(c, back)
	pid := ke.fake.PaymentOf(id)
	if page.Code != http.StatusOK {
		t.Fatalf("return after a konbini slip: %d %q", page.Code, page.Location)
	}
	o := ke.OrderByRef(ref)
	slip := o.Attempt(ref).ProviderData
	for _, want := range []string{"7-Eleven", slip["komoju_confirmation_code"], slip["komoju_receipt"], ke.fake.URL + "/instructions/" + pid, "Pay by"} {
		if want == "" || !strings.Contains(page.Body, want) {
			t.Errorf("slip page lacks %q:\n%s", want, page.Body)
		}
	}
	if want := komojutest.SlipDeadline(ke.Clock.Now(), 72*time.Hour); o.Status != order.OnHold || !o.HoldUntil.Equal(want) {
		t.Fatalf("order %s held until %v, want on_hold until the slip's deadline %v", o.Status, o.HoldUntil, want)
	}
	// The customer comes back to the pay page: the slip, not a way to pay twice.
	if again := ke.Get(c, "/_checkout/pay/"+ref); !strings.Contains(again.Body, slip["komoju_receipt"]) || strings.Contains(again.Body, `name="provider"`) {
		t.Fatalf("pay page of a held order:\n%s", again.Body)
	}
	ke.Clock.Add(48 * time.Hour) // far past the order's own 30 minutes
	if n, err := ke.Site().Expire(context.Background(), 10); err != nil || n != 0 {
		t.Fatalf("expiry ended %d held orders (%v)", n, err)
	}
	if err := ke.fake.Capture(pid); err != nil {
		t.Fatal(err)
	}
	o = ke.OrderByRef(ref)
	if o.Status != order.Paid || o.Late {
		t.Fatalf("after the konbini capture: %s late=%v", o.Status, o.Late)
	}
	if got := ke.CallbackTypes(); strings.Join(got, ",") != "order.pending,order.paid" {
		t.Fatalf("callbacks %v", got)
	}
}

func TestKonbiniExpired(t *testing.T) {
	ke := newEnv(t)
	c := ke.Client()
	_, ref, _ := ke.slip(c)
	ke.Clock.Add(71 * time.Hour)
	if n, err := ke.Site().Expire(context.Background(), 10); err != nil || n != 0 || ke.fake.ExpireDue() != 0 {
		t.Fatalf("a slip with hours left: %d orders expired (%v)", n, err)
	}
	ke.Clock.Add(24 * time.Hour) // past 23:59:59 JST of the slip's last day
	if n := ke.fake.ExpireDue(); n != 1 {
		t.Fatalf("KOMOJU expired %d slips", n)
	}
	if o := ke.OrderByRef(ref); o.Status != order.Expired {
		t.Fatalf("order %s after the slip expired", o.Status)
	}
	if got := ke.CallbackTypes(); strings.Join(got, ",") != "order.pending,order.expired" {
		t.Fatalf("callbacks %v", got)
	}
}

func TestAbortedSessionThenRetry(t *testing.T) {
	ke := newEnv(t)
	c := ke.Client()
	first := ke.buy(c, "tea")
	ref1 := ke.refOf(first)
	r := ke.Get(c, ke.onKomoju(c, first, "back"))
	if r.Code != http.StatusSeeOther || r.Location != "/_checkout/pay/"+ref1 {
		t.Fatalf("return without paying: %d %q, want the pay page", r.Code, r.Location)
	}
	page := ke.Get(c, r.Location)
	if !strings.Contains(page.Body, "did not go through") {
		t.Fatalf("pay page after an abort:\n%s", page.Body)
	}
	form := url.Values{"csrf": {handlerstest.CSRFOf(t, page.Body)}, "provider": {"komoju"}}
	r = ke.Post(c, r.Location, form)
	if r.Code != http.StatusSeeOther || !strings.HasPrefix(r.Location, ke.fake.URL+"/sessions/") || strings.HasSuffix(r.Location, first) {
		t.Fatalf("retry: %d %q, want a new KOMOJU session", r.Code, r.Location)
	}
	if st, _ := ke.fake.SessionStatus(first); st != "cancelled" {
		t.Fatalf("the abandoned session is %s at KOMOJU, want cancelled", st)
	}
	second := strings.TrimPrefix(r.Location, ke.fake.URL+"/sessions/")
	ref2 := ke.refOf(second)
	if ref2 == ref1 {
		t.Fatal("the retry reused the failed attempt")
	}
	ke.Get(c, ke.onKomoju(c, second, "credit_card"))
	if o := ke.OrderByRef(ref2); o.Status != order.Paid || len(o.Attempts) != 2 {
		t.Fatalf("order %s with %d attempts", o.Status, len(o.Attempts))
	}
	if got := ke.CallbackTypes(); strings.Join(got, ",") != "order.paid" {
		t.Fatalf("callbacks %v, want only order.paid (an abort is no callback)", got)
	}
	// The payment of the second attempt is the one refunded.
	if o, _, err := ke.Site().Refund(context.Background(), ke.OrderByRef(ref2).ID, handlers.RefundRequest{}); err != nil || o.Status != order.Refunded {
		t.Fatalf("refund after a retry: %v", err)
	}
	if st := ke.fake.PaymentStatus(ke.fake.PaymentOf(second)); st != "refunded" {
		t.Fatalf("the paying payment is %s at KOMOJU", st)
	}
}

// TestDeclineThenSlipInOneSession: a declined card on KOMOJU's page, then a
// konbini slip in the same session. The slip holds the order, and is shown,
// watched and paid like any other.
func TestDeclineThenSlipInOneSession(t *testing.T) {
	ke := newEnv(t)
	c := ke.Client()
	id := ke.buy(c, "tea")
	ref := ke.refOf(id)
	if r := ke.Post(c, ke.fake.URL+"/sessions/"+id, url.Values{"action": {"credit_card"}, "card": {komojutest.DeclineCard}}); r.Code != http.StatusPaymentRequired {
		t.Fatalf("declined card: %d", r.Code)
	}
	page := ke.Get(c, ke.onKomoju(c, id, "konbini"))
	o := ke.OrderByRef(ref)
	if page.Code != http.StatusOK || o.Status != order.OnHold || o.Attempt(ref).Failed || !strings.Contains(page.Body, o.Attempt(ref).ProviderData["komoju_receipt"]) {
		t.Fatalf("after a decline then a slip: %d, order %s, attempt failed=%v\n%s", page.Code, o.Status, o.Attempt(ref).Failed, page.Body)
	}
	ke.fake.HoldWebhooks()
	if err := ke.fake.Capture(ke.fake.PaymentOf(id)); err != nil {
		t.Fatal(err)
	}
	ke.fake.DropHeld() // the capture's webhook is lost
	ke.Clock.Add(time.Hour)
	if n, err := ke.Site().Reconcile(context.Background(), 10*time.Minute, 10); err != nil || n != 1 {
		t.Fatalf("reconcile: %d %v", n, err)
	}
	if o := ke.OrderByRef(ref); o.Status != order.Paid {
		t.Fatalf("order %s", o.Status)
	}
}

// TestStalePayFormWhileHeld: a pay form loaded before the slip was taken,
// posted afterwards, neither starts another payment nor cancels the slip.
func TestStalePayFormWhileHeld(t *testing.T) {
	ke := newEnv(t, withSandboxToo)
	c := ke.Client()
	r := ke.Post(c, "/buy", url.Values{"product": {"tea"}})
	payURL := r.Location
	form := url.Values{"csrf": {handlerstest.CSRFOf(t, ke.Get(c, payURL).Body)}, "provider": {"komoju"}}
	r = ke.Post(c, payURL, form)
	id := strings.TrimPrefix(r.Location, ke.fake.URL+"/sessions/")
	ke.Get(c, ke.onKomoju(c, id, "konbini"))
	form.Set("provider", "sandbox")
	r = ke.Post(c, payURL, form)
	if r.Code != http.StatusOK || !strings.Contains(r.Body, "Pay at the store") {
		t.Fatalf("stale form while held: %d %q\n%s", r.Code, r.Location, r.Body)
	}
	if st := ke.fake.PaymentStatus(ke.fake.PaymentOf(id)); st != "authorized" {
		t.Fatalf("the slip is %s at KOMOJU", st)
	}
}

// TestSessionKomojuNoLongerKnows: an attempt whose session KOMOJU cannot
// find (made with another account's key) does not keep its order from
// expiring.
func TestSessionKomojuNoLongerKnows(t *testing.T) {
	ke := newEnv(t)
	id := ke.buy(ke.Client(), "tea")
	ref := ke.refOf(id)
	ke.fake.Forget(id)
	ke.Clock.Add(2 * time.Hour)
	if n, err := ke.Site().Expire(context.Background(), 10); err != nil || n != 1 {
		t.Fatalf("expired %d (%v)", n, err)
	}
	if o := ke.OrderByRef(ref); o.Status != order.Expired {
		t.Fatalf("order %s", o.Status)
	}
}

func TestRefundAndRefusedKonbiniRefund(t *testing.T) {
	ke := newEnv(t)
	c := ke.Client()
	id := ke.buy(c, "tea")
	ref := ke.refOf(id)
	ke.Get(c, ke.onKomoju(c, id, "credit_card"))
	oid := ke.OrderByRef(ref).ID
	for i := 0; i < 2; i++ {
		o, _, err := ke.Site().Refund(context.Background(), oid, handlers.RefundRequest{})
		if err != nil || o.Status != order.Refunded {
			t.Fatalf("refund #%d: %v %v", i+1, o, err)
		}
	}
	pid := ke.fake.PaymentOf(id)
	if n := ke.requestsTo("POST", "/api/v1/payments/"+pid+"/refund"); n != 1 {
		t.Fatalf("%d refund requests to KOMOJU, want 1", n)
	}
	if st := ke.fake.PaymentStatus(pid); st != "refunded" {
		t.Fatalf("payment at KOMOJU is %s", st)
	}
	if got := ke.CallbackTypes(); strings.Join(got, ",") != "order.paid,order.refunded" {
		t.Fatalf("callbacks %v", got)
	}

	_, ref, pid = ke.slip(c)
	if err := ke.fake.Capture(pid); err != nil {
		t.Fatal(err)
	}
	_, _, err := ke.Site().Refund(context.Background(), ke.OrderByRef(ref).ID, handlers.RefundRequest{})
	if !errors.Is(err, provider.ErrNotRefundable) || !strings.Contains(err.Error(), "konbini") || !strings.Contains(err.Error(), "bank account") {
		t.Fatalf("konbini refund: %v, want not refundable with the reason", err)
	}
	if o := ke.OrderByRef(ref); o.Status != order.Paid {
		t.Fatalf("order %s after a refused refund", o.Status)
	}
}

func TestReconcilerAfterLostWebhooks(t *testing.T) {
	ke := newEnv(t)
	c := ke.Client()
	ke.fake.HoldWebhooks()
	id := ke.buy(c, "tea")
	ref := ke.refOf(id)
	ke.onKomoju(c, id, "konbini") // the customer never comes back
	ke.fake.DropHeld()
	ke.Clock.Add(11 * time.Minute)
	if n, err := ke.Site().Reconcile(context.Background(), 10*time.Minute, 100); err != nil || n != 1 {
		t.Fatalf("reconcile found %d (%v), want the konbini hold", n, err)
	}
	if o := ke.OrderByRef(ref); o.Status != order.OnHold || o.HoldUntil.IsZero() {
		t.Fatalf("order %s held until %v", o.Status, o.HoldUntil)
	}
	ke.fake.HoldWebhooks()
	if err := ke.fake.Capture(ke.fake.PaymentOf(id)); err != nil {
		t.Fatal(err)
	}
	ke.fake.DropHeld()
	ke.Clock.Add(24 * time.Hour)
	if n, err := ke.Site().Reconcile(context.Background(), 10*time.Minute, 100); err != nil || n != 1 {
		t.Fatalf("reconcile found %d (%v), want the capture", n, err)
	}
	if o := ke.OrderByRef(ref); o.Status != order.Paid || o.Late {
		t.Fatalf("order %s late=%v after reconciling a lost capture", o.Status, o.Late)
	}
	if got := ke.CallbackTypes(); strings.Join(got, ",") != "order.pending,order.paid" {
		t.Fatalf("callbacks %v", got)
	}
}

func TestOrderEndedHereClosesKomoju(t *testing.T) {
	ke := newEnv(t)
	c := ke.Client()

	// An operator cancels an order held by a konbini slip: the slip is
	// cancelled at KOMOJU, so the customer cannot pay it at the store.
	id, ref, pid := ke.slip(c)
	if _, _, err := ke.Site().Apply(context.Background(), order.ByAdmin, provider.Finding{Ref: ref, Status: order.Cancelled, Note: "cancelled by an operator"}); err != nil {
		t.Fatal(err)
	}
	if st := ke.fake.PaymentStatus(pid); st != "cancelled" {
		t.Fatalf("the slip of a cancelled order is %s at KOMOJU", st)
	}
	if err := ke.fake.Capture(pid); err == nil {
		t.Fatal("the cancelled slip could still be paid")
	}
	if got := ke.CallbackTypes(); strings.Join(got, ",") != "order.pending,order.cancelled" {
		t.Fatalf("callbacks %v (the slip's own cancel event must change nothing more)", got)
	}

	// An order whose time ran out with its session open: the session is
	// cancelled.
	id = ke.buy(c, "tea")
	ke.Clock.Add(31 * time.Minute)
	if n, err := ke.Site().Expire(context.Background(), 10); err != nil || n != 1 {
		t.Fatalf("expired %d orders (%v)", n, err)
	}
	if st, _ := ke.fake.SessionStatus(id); st != "cancelled" {
		t.Fatalf("the session of an expired order is %s at KOMOJU", st)
	}
}

func TestNewAmountCancelsTheOldSession(t *testing.T) {
	ke := newEnv(t)
	c := ke.Client()
	id := ke.buy(c, "tea")
	o := ke.OrderByRef(ke.refOf(id))
	r := ke.API(http.MethodPost, "/_checkout/api/orders", ke.SecretText,
		`{"order_id":"`+o.ID+`","amount":"2000","currency":"JPY","description":"Sencha tea and a cup"}`)
	if r.Code/100 != 2 {
		t.Fatalf("changing the amount: %d %s", r.Code, r.Body)
	}
	if st, _ := ke.fake.SessionStatus(id); st != "cancelled" {
		t.Fatalf("the session for the old amount is %s at KOMOJU, want cancelled", st)
	}
}
