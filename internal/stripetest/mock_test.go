// The fake behind stripe-mock: every request of a full Checkout flow is valid
// by Stripe's OpenAPI spec, and an invalid one is refused by stripe-mock.
package stripetest_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/caddy-checkout/checkout/internal/stripetest"
)

func TestFlowAcceptedByStripeMock(t *testing.T) {
	mock := stripetest.StartMock(t)
	srv := stripetest.New(t, stripetest.WithMock(mock))
	sc := newClient(srv)

	p := sessionParams("jpy", 500, 2)
	p.ExpiresAt = stripe.Int64(time.Now().Add(2 * time.Hour).Unix())
	p.ClientReferenceID = stripe.String("order-42")
	p.CustomerEmail = stripe.String("buyer@example.com")
	p.Locale = stripe.String("ja")
	p.PaymentMethodTypes = stripe.StringSlice([]string{"card", "konbini"})
	p.PaymentIntentData = &stripe.CheckoutSessionPaymentIntentDataParams{Metadata: map[string]string{"order": "42"}}
	p.AddMetadata("order", "42")
	p.SetStripeAccount("acct_shop")
	cs := mustCreate(t, sc, p)

	get := &stripe.CheckoutSessionParams{}
	get.AddExpand("payment_intent")
	get.SetStripeAccount("acct_shop")
	if _, err := srv.Pay(cs.ID); err != nil {
		t.Fatal(err)
	}
	paid, err := sc.CheckoutSessions.Get(cs.ID, get)
	if err != nil || paid.PaymentIntent == nil {
		t.Fatalf("getting the paid session: %+v, %v", paid, err)
	}
	pip := &stripe.PaymentIntentParams{}
	pip.SetStripeAccount("acct_shop")
	if _, err := sc.PaymentIntents.Get(paid.PaymentIntent.ID, pip); err != nil {
		t.Fatal(err)
	}
	rp := &stripe.RefundParams{
		PaymentIntent: stripe.String(paid.PaymentIntent.ID),
		Amount:        stripe.Int64(300),
		Reason:        stripe.String(string(stripe.RefundReasonRequestedByCustomer)),
	}
	rp.AddMetadata("order", "42")
	rp.SetStripeAccount("acct_shop")
	re, err := sc.Refunds.New(rp)
	if err != nil {
		t.Fatal(err)
	}
	rg := &stripe.RefundParams{}
	rg.SetStripeAccount("acct_shop")
	if _, err := sc.Refunds.Get(re.ID, rg); err != nil {
		t.Fatal(err)
	}
	other := mustCreate(t, sc, sessionParams("usd", 1999, 1))
	if _, err := sc.CheckoutSessions.Expire(other.ID, nil); err != nil {
		t.Fatal(err)
	}
	if rej := srv.MockRejections(); len(rej) != 0 {
		t.Errorf("stripe-mock rejected requests of the flow: %q", rej)
	}

	// The fake's own errors still come through when stripe-mock accepts.
	_, err = sc.CheckoutSessions.Get("cs_test_nope", nil)
	if se := stripeError(t, err); se.HTTPStatusCode != http.StatusNotFound {
		t.Errorf("unknown session behind stripe-mock: %+v", se)
	}

	bogus := sessionParams("jpy", 500, 1)
	bogus.Mode = stripe.String("bogus")
	_, err = sc.CheckoutSessions.New(bogus)
	se := stripeError(t, err)
	if se.HTTPStatusCode != http.StatusBadRequest || !strings.Contains(se.Msg, "mode") {
		t.Errorf("mode=bogus: %+v", se)
	}
	rej := srv.MockRejections()
	if len(rej) != 1 || !strings.HasPrefix(rej[0], "POST /v1/checkout/sessions: ") || !strings.Contains(rej[0], "mode") {
		t.Errorf("MockRejections = %q, want the mode=bogus request", rej)
	}
	if n := len(srv.Sessions()); n != 2 {
		t.Errorf("%d sessions, want 2 (the rejected request must not create one)", n)
	}
}
