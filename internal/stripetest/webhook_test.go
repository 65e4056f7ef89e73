// Webhook delivery as stripe-go's verifier sees it: signatures during a
// secret roll, the event JSON, delivery order and redelivery.
package stripetest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/caddy-checkout/checkout/internal/stripetest"
)

// receiver is a webhook endpoint that verifies every delivery with
// stripe-go, as the code under test will.
type receiver struct {
	t       *testing.T
	secrets []string
	mu      sync.Mutex
	events  []stripe.Event
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if ct := r.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		rc.t.Errorf("Content-Type = %q", ct)
	}
	var ev stripe.Event
	for _, secret := range rc.secrets {
		var err error
		ev, err = webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), secret,
			webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
		if err != nil {
			rc.t.Errorf("verifying with %s: %v", secret, err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	rc.mu.Lock()
	rc.events = append(rc.events, ev)
	rc.mu.Unlock()
}

func (rc *receiver) received() []stripe.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]stripe.Event(nil), rc.events...)
}

func TestWebhookDelivery(t *testing.T) {
	srv := stripetest.New(t)
	sc := newClient(srv)
	rc := &receiver{t: t, secrets: []string{"whsec_old", "whsec_new"}}
	hook := httptest.NewServer(rc)
	t.Cleanup(hook.Close)
	srv.SetWebhook(hook.URL, "whsec_old", "whsec_new")

	p := sessionParams("jpy", 1200, 1)
	p.SetStripeAccount("acct_shop")
	cs := mustCreate(t, sc, p)
	sent, err := srv.Pay(cs.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Pay returns after delivery.
	got := rc.received()
	if len(got) != 1 {
		t.Fatalf("%d events received after Pay, want 1", len(got))
	}
	ev := got[0]
	if ev.ID != sent.ID || ev.Type != "checkout.session.completed" || ev.Account != "acct_shop" ||
		ev.APIVersion != stripetest.DefaultAPIVersion || ev.Livemode || ev.PendingWebhooks != 1 || ev.Object != "event" {
		t.Errorf("received event = %+v", ev)
	}
	if ev.Data.Object["id"] != cs.ID || ev.Data.Object["payment_status"] != "paid" {
		t.Errorf("event data.object = %v", ev.Data.Object)
	}
	if ev.Request == nil || ev.Request.ID != "" {
		t.Errorf("a customer's payment has request %+v, want a null id", ev.Request)
	}
	d := srv.Deliveries()
	if len(d) != 1 || d[0].Status != http.StatusOK || d[0].EventID != sent.ID || d[0].Err != nil ||
		strings.Count(d[0].Signature, "v1=") != 2 {
		t.Errorf("deliveries = %+v", d)
	}

	// The API version stripe-go pins is the default, so its strict check
	// passes too.
	if _, err := webhook.ConstructEvent(sent.Body, d[0].Signature, "whsec_new"); err != nil {
		t.Errorf("webhook.ConstructEvent: %v", err)
	}

	// Events caused by API requests are delivered after the response.
	snap, _ := srv.Session(cs.ID)
	rp := &stripe.RefundParams{PaymentIntent: stripe.String(snap.PaymentIntent)}
	rp.SetStripeAccount("acct_shop")
	if _, err := sc.Refunds.New(rp); err != nil {
		t.Fatal(err)
	}
	srv.WaitDeliveries()
	got = rc.received()
	if len(got) != 3 || got[1].Type != "charge.refunded" || got[2].Type != "refund.created" {
		t.Fatalf("received %d events after the refund: %+v", len(got), got)
	}

	// Stripe may deliver an event twice.
	again, err := srv.Resend(sent.ID)
	if err != nil || again.Status != http.StatusOK {
		t.Errorf("Resend: %+v, %v", again, err)
	}
	if got := rc.received(); got[len(got)-1].ID != sent.ID {
		t.Errorf("the resent event is %s, want %s", got[len(got)-1].ID, sent.ID)
	}
}

func TestWebhookFailureRecorded(t *testing.T) {
	srv := stripetest.New(t)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(hook.Close)
	srv.SetWebhook(hook.URL, "whsec_x")
	cs := mustCreate(t, newClient(srv), sessionParams("usd", 100, 1))
	if _, err := srv.Expire(cs.ID); err != nil {
		t.Fatal(err)
	}
	if d := srv.Deliveries(); len(d) != 1 || d[0].Status != http.StatusServiceUnavailable {
		t.Errorf("deliveries = %+v", d)
	}
}

func TestWebhookSignedWithFakeClock(t *testing.T) {
	clk := newClock()
	srv := stripetest.New(t, stripetest.WithClock(clk.Now))
	var header string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header = r.Header.Get("Stripe-Signature")
	}))
	t.Cleanup(hook.Close)
	srv.SetWebhook(hook.URL, "whsec_x")
	cs := mustCreate(t, newClient(srv), sessionParams("usd", 100, 1))
	ev, _ := srv.Pay(cs.ID)
	if want := stripetest.Sign(ev.Body, clk.Now(), "whsec_x"); header != want {
		t.Errorf("Stripe-Signature = %q, want %q (timed by the fake clock)", header, want)
	}
	// Far from the real clock, stripe-go's tolerance check refuses it.
	if _, err := webhook.ConstructEvent(ev.Body, header, "whsec_x"); err != webhook.ErrTooOld {
		t.Errorf("ConstructEvent with a signature from the fake clock: %v, want ErrTooOld", err)
	}
}

func TestSign(t *testing.T) {
	body := []byte(`{"id":"evt_1","object":"event"}`)
	now := time.Now()
	h := stripetest.Sign(body, now, "whsec_a", "whsec_b")
	if !strings.HasPrefix(h, "t=") || strings.Count(h, ",v1=") != 2 {
		t.Fatalf("Sign = %q", h)
	}
	for _, secret := range []string{"whsec_a", "whsec_b"} {
		if err := webhook.ValidatePayload(body, h, secret); err != nil {
			t.Errorf("ValidatePayload with %s: %v", secret, err)
		}
	}
	if err := webhook.ValidatePayload(body, h, "whsec_c"); err != webhook.ErrNoValidSignature {
		t.Errorf("ValidatePayload with another secret: %v", err)
	}
}
