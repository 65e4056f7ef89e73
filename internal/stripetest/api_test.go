// The fake's API as stripe-go sees it: sessions, idempotency, validation
// errors, account scoping, payment, refunds, outages and authentication.
package stripetest_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/caddy-checkout/checkout/internal/stripetest"
)

func TestCreateSession(t *testing.T) {
	tests := []struct {
		name           string
		currency       string
		unit, quantity int64
		wantTotal      int64
	}{
		{"zero-decimal/jpy", "jpy", 500, 2, 1000},
		{"two-decimal/usd", "usd", 1999, 3, 5997},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			srv := stripetest.New(t, stripetest.WithClock(clk.Now))
			sc := newClient(srv)
			p := sessionParams(tt.currency, tt.unit, tt.quantity)
			p.ClientReferenceID = stripe.String("order-42")
			p.AddMetadata("order", "42")
			cs := mustCreate(t, sc, p)

			if !strings.HasPrefix(cs.ID, "cs_test_") {
				t.Errorf("ID = %q, want a cs_test_ id", cs.ID)
			}
			if cs.Object != "checkout.session" || cs.Mode != stripe.CheckoutSessionModePayment || cs.Livemode {
				t.Errorf("object, mode, livemode = %q, %q, %v", cs.Object, cs.Mode, cs.Livemode)
			}
			if cs.URL != srv.URL+"/pay/"+cs.ID {
				t.Errorf("URL = %q, want the fake's hosted page", cs.URL)
			}
			if cs.Status != stripe.CheckoutSessionStatusOpen || cs.PaymentStatus != stripe.CheckoutSessionPaymentStatusUnpaid {
				t.Errorf("status, payment_status = %q, %q; want open, unpaid", cs.Status, cs.PaymentStatus)
			}
			if cs.AmountTotal != tt.wantTotal || cs.AmountSubtotal != tt.wantTotal || string(cs.Currency) != tt.currency {
				t.Errorf("amount_total, amount_subtotal, currency = %d, %d, %q; want %d %s", cs.AmountTotal, cs.AmountSubtotal, cs.Currency, tt.wantTotal, tt.currency)
			}
			if want := clk.Now().Add(24 * time.Hour).Unix(); cs.ExpiresAt != want || cs.Created != clk.Now().Unix() {
				t.Errorf("expires_at, created = %d, %d; want %d, %d", cs.ExpiresAt, cs.Created, want, clk.Now().Unix())
			}
			if cs.PaymentIntent != nil {
				t.Errorf("payment_intent = %+v before payment, want null", cs.PaymentIntent)
			}
			if cs.ClientReferenceID != "order-42" || cs.Metadata["order"] != "42" {
				t.Errorf("client_reference_id, metadata = %q, %v", cs.ClientReferenceID, cs.Metadata)
			}
			if len(cs.PaymentMethodTypes) != 1 || cs.PaymentMethodTypes[0] != "card" {
				t.Errorf("payment_method_types = %v, want [card]", cs.PaymentMethodTypes)
			}
			snap, ok := srv.Session(cs.ID)
			if !ok || snap.AmountTotal != tt.wantTotal || snap.Status != "open" || snap.URL != cs.URL {
				t.Errorf("Session(%s) = %+v, %v", cs.ID, snap, ok)
			}
		})
	}
}

func TestIdempotency(t *testing.T) {
	srv := stripetest.New(t)
	sc := newClient(srv)

	p := sessionParams("jpy", 500, 1)
	p.SetIdempotencyKey("order-1-attempt-1")
	first := mustCreate(t, sc, p)
	again := mustCreate(t, sc, p)
	if again.ID != first.ID {
		t.Errorf("replay created %s, want the first session %s", again.ID, first.ID)
	}
	if h := again.LastResponse.Header.Get("Idempotent-Replayed"); h != "true" {
		t.Errorf("Idempotent-Replayed = %q on the replay, want true", h)
	}
	if again.LastResponse.RequestID != first.LastResponse.RequestID {
		t.Errorf("replay Request-Id = %s, want the original %s", again.LastResponse.RequestID, first.LastResponse.RequestID)
	}

	changed := sessionParams("jpy", 600, 1)
	changed.SetIdempotencyKey("order-1-attempt-1")
	_, err := sc.CheckoutSessions.New(changed)
	se := stripeError(t, err)
	if se.Type != stripe.ErrorTypeIdempotency || se.HTTPStatusCode != http.StatusBadRequest ||
		!strings.Contains(se.Msg, "same parameters they were first used with") {
		t.Errorf("reusing the key with other parameters: %+v", se)
	}

	// Keys are scoped per account: the same key in a connected account is a
	// new request.
	other := sessionParams("jpy", 500, 1)
	other.SetIdempotencyKey("order-1-attempt-1")
	other.SetStripeAccount("acct_shop2")
	if cs := mustCreate(t, sc, other); cs.ID == first.ID {
		t.Errorf("the same key in another account replayed the platform's session")
	}
	if n := len(srv.Sessions()); n != 2 {
		t.Errorf("%d sessions, want 2", n)
	}
}

func TestIdempotencyConcurrent(t *testing.T) {
	srv := stripetest.New(t)
	sc := newClient(srv)
	var wg sync.WaitGroup
	ids := make([]string, 16)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := sessionParams("usd", 1000, 1)
			p.SetIdempotencyKey("same-key")
			cs, err := sc.CheckoutSessions.New(p)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = cs.ID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent requests with one key got sessions %v", ids)
		}
	}
	if n := len(srv.Sessions()); n != 1 {
		t.Errorf("%d sessions created by concurrent requests with one key, want 1", n)
	}
}

func TestCreateSessionErrors(t *testing.T) {
	clk := newClock()
	tests := []struct {
		name      string
		edit      func(*stripe.CheckoutSessionParams)
		wantParam string
		wantCode  stripe.ErrorCode
		wantMsg   string
	}{
		{"fail/expires_at-too-soon", func(p *stripe.CheckoutSessionParams) {
			p.ExpiresAt = stripe.Int64(clk.Now().Add(29 * time.Minute).Unix())
		}, "expires_at", "", "at least 30 minutes"},
		{"fail/expires_at-too-late", func(p *stripe.CheckoutSessionParams) {
			p.ExpiresAt = stripe.Int64(clk.Now().Add(24*time.Hour + time.Second).Unix())
		}, "expires_at", "", "less than 24 hours"},
		{"fail/mode-bogus", func(p *stripe.CheckoutSessionParams) {
			p.Mode = stripe.String("bogus")
		}, "mode", "", "Invalid mode"},
		{"fail/mode-missing", func(p *stripe.CheckoutSessionParams) {
			p.Mode = nil
		}, "mode", stripe.ErrorCodeParameterMissing, "Missing required param: mode."},
		{"fail/success_url-relative", func(p *stripe.CheckoutSessionParams) {
			p.SuccessURL = stripe.String("/done")
		}, "success_url", stripe.ErrorCodeURLInvalid, "Not a valid URL"},
		{"fail/quantity-zero", func(p *stripe.CheckoutSessionParams) {
			p.LineItems[0].Quantity = stripe.Int64(0)
		}, "line_items[0][quantity]", "", "greater than or equal to 1"},
		{"fail/unit_amount-negative", func(p *stripe.CheckoutSessionParams) {
			p.LineItems[0].PriceData.UnitAmount = stripe.Int64(-1)
		}, "line_items[0][price_data][unit_amount]", "", "greater than or equal to 0"},
		{"fail/product-name-missing", func(p *stripe.CheckoutSessionParams) {
			p.LineItems[0].PriceData.ProductData.Name = nil
		}, "line_items[0][price_data][product_data]", stripe.ErrorCodeParameterMissing, "Missing required param"},
		{"fail/mixed-currencies", func(p *stripe.CheckoutSessionParams) {
			second := sessionParams("usd", 100, 1).LineItems[0]
			p.LineItems = append(p.LineItems, second)
		}, "line_items[1][price_data][currency]", "", "same currency"},
		{"fail/client_reference_id-too-long", func(p *stripe.CheckoutSessionParams) {
			p.ClientReferenceID = stripe.String(strings.Repeat("x", 201))
		}, "client_reference_id", "", "at most 200 characters"},
		{"fail/metadata-key-too-long", func(p *stripe.CheckoutSessionParams) {
			p.AddMetadata(strings.Repeat("k", 41), "v")
		}, "metadata[" + strings.Repeat("k", 41) + "]", "", "40 characters"},
		{"fail/unknown-parameter", func(p *stripe.CheckoutSessionParams) {
			p.AddExtra("ui_mode", "hosted")
		}, "ui_mode", stripe.ErrorCodeParameterUnknown, "Received unknown parameter: ui_mode"},
		{"fail/payment-method-type", func(p *stripe.CheckoutSessionParams) {
			p.PaymentMethodTypes = stripe.StringSlice([]string{"card", "crad"})
		}, "payment_method_types[1]", "", "must be one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := stripetest.New(t, stripetest.WithClock(clk.Now))
			sc := newClient(srv)
			p := sessionParams("jpy", 500, 1)
			tt.edit(p)
			_, err := sc.CheckoutSessions.New(p)
			se := stripeError(t, err)
			if se.HTTPStatusCode != http.StatusBadRequest || se.Type != stripe.ErrorTypeInvalidRequest {
				t.Errorf("status, type = %d, %q; want 400 invalid_request_error", se.HTTPStatusCode, se.Type)
			}
			if se.Param != tt.wantParam || se.Code != tt.wantCode || !strings.Contains(se.Msg, tt.wantMsg) {
				t.Errorf("param, code, message = %q, %q, %q; want %q, %q, containing %q", se.Param, se.Code, se.Msg, tt.wantParam, tt.wantCode, tt.wantMsg)
			}
			if n := len(srv.Sessions()); n != 0 {
				t.Errorf("a refused request created %d sessions", n)
			}
		})
	}
}

// A validation failure is not saved under the idempotency key, so the
// corrected request may reuse it.
func TestIdempotencyKeyReusableAfterValidationError(t *testing.T) {
	clk := newClock()
	srv := stripetest.New(t, stripetest.WithClock(clk.Now))
	sc := newClient(srv)
	bad := sessionParams("jpy", 500, 1)
	bad.ExpiresAt = stripe.Int64(clk.Now().Add(10 * time.Minute).Unix())
	bad.SetIdempotencyKey("k1")
	if _, err := sc.CheckoutSessions.New(bad); err == nil {
		t.Fatal("expires_at 10 minutes ahead accepted")
	}
	good := sessionParams("jpy", 500, 1)
	good.ExpiresAt = stripe.Int64(clk.Now().Add(30 * time.Minute).Unix())
	good.SetIdempotencyKey("k1")
	cs := mustCreate(t, sc, good)
	if cs.ExpiresAt != clk.Now().Add(30*time.Minute).Unix() {
		t.Errorf("expires_at = %d", cs.ExpiresAt)
	}
}

func TestConnectedAccountScoping(t *testing.T) {
	srv := stripetest.New(t)
	sc := newClient(srv)
	p := sessionParams("jpy", 800, 1)
	p.SetStripeAccount("acct_shopA")
	cs := mustCreate(t, sc, p)

	for _, account := range []string{"acct_shopB", ""} {
		get := &stripe.CheckoutSessionParams{}
		if account != "" {
			get.SetStripeAccount(account)
		}
		_, err := sc.CheckoutSessions.Get(cs.ID, get)
		se := stripeError(t, err)
		if se.HTTPStatusCode != http.StatusNotFound || se.Code != stripe.ErrorCodeResourceMissing || se.Param != "session" {
			t.Errorf("getting acct_shopA's session from %q: %+v, want 404 resource_missing", account, se)
		}
	}
	get := &stripe.CheckoutSessionParams{}
	get.SetStripeAccount("acct_shopA")
	if _, err := sc.CheckoutSessions.Get(cs.ID, get); err != nil {
		t.Errorf("getting the session from its own account: %v", err)
	}

	ev, err := srv.Pay(cs.ID)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(ev.Body, &body); err != nil {
		t.Fatal(err)
	}
	if ev.Account != "acct_shopA" || body["account"] != "acct_shopA" {
		t.Errorf("event account = %q, body account = %v; want acct_shopA", ev.Account, body["account"])
	}

	// A platform event carries no account at all.
	plat := mustCreate(t, sc, sessionParams("jpy", 800, 1))
	ev, err = srv.Pay(plat.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(ev.Body), `"account"`) {
		t.Errorf("platform event has an account field:\n%s", ev.Body)
	}
}

func TestPayAndRefund(t *testing.T) {
	srv := stripetest.New(t)
	sc := newClient(srv)
	p := sessionParams("jpy", 500, 2)
	p.PaymentIntentData = &stripe.CheckoutSessionPaymentIntentDataParams{Metadata: map[string]string{"order": "42"}}
	cs := mustCreate(t, sc, p)

	ev, err := srv.Pay(cs.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != "checkout.session.completed" || !strings.HasPrefix(ev.ID, "evt_") {
		t.Errorf("Pay returned event %s %s", ev.ID, ev.Type)
	}

	get := &stripe.CheckoutSessionParams{}
	get.AddExpand("payment_intent")
	paid, err := sc.CheckoutSessions.Get(cs.ID, get)
	if err != nil {
		t.Fatal(err)
	}
	if paid.Status != stripe.CheckoutSessionStatusComplete || paid.PaymentStatus != stripe.CheckoutSessionPaymentStatusPaid {
		t.Errorf("after Pay: status %q, payment_status %q", paid.Status, paid.PaymentStatus)
	}
	if paid.URL != "" {
		t.Errorf("url = %q after completion, want null", paid.URL)
	}
	if paid.CustomerDetails == nil || paid.CustomerDetails.Email == "" {
		t.Errorf("customer_details = %+v, want the customer's email", paid.CustomerDetails)
	}
	pi := paid.PaymentIntent
	if pi == nil || pi.Status != stripe.PaymentIntentStatusSucceeded || pi.Amount != 1000 || pi.AmountReceived != 1000 ||
		pi.Metadata["order"] != "42" || pi.LatestCharge == nil || !strings.HasPrefix(pi.LatestCharge.ID, "ch_") {
		t.Fatalf("expanded payment_intent = %+v", pi)
	}
	if got, err := sc.PaymentIntents.Get(pi.ID, nil); err != nil || got.Status != stripe.PaymentIntentStatusSucceeded {
		t.Errorf("GET payment intent: %+v, %v", got, err)
	}

	part, err := sc.Refunds.New(&stripe.RefundParams{PaymentIntent: stripe.String(pi.ID), Amount: stripe.Int64(400)})
	if err != nil {
		t.Fatal(err)
	}
	if part.Amount != 400 || part.Status != stripe.RefundStatusSucceeded || part.PaymentIntent.ID != pi.ID || part.Charge.ID != pi.LatestCharge.ID {
		t.Errorf("partial refund = %+v", part)
	}
	_, err = sc.Refunds.New(&stripe.RefundParams{PaymentIntent: stripe.String(pi.ID), Amount: stripe.Int64(700)})
	if se := stripeError(t, err); se.Param != "amount" || !strings.Contains(se.Msg, "(¥700) is greater than unrefunded amount on charge (¥600)") {
		t.Errorf("refunding more than remains: %+v", se)
	}
	rest, err := sc.Refunds.New(&stripe.RefundParams{PaymentIntent: stripe.String(pi.ID)})
	if err != nil || rest.Amount != 600 {
		t.Fatalf("refunding the rest: %+v, %v", rest, err)
	}
	if got, err := sc.Refunds.Get(rest.ID, nil); err != nil || got.Amount != 600 {
		t.Errorf("GET refund: %+v, %v", got, err)
	}
	_, err = sc.Refunds.New(&stripe.RefundParams{PaymentIntent: stripe.String(pi.ID)})
	if se := stripeError(t, err); se.Code != stripe.ErrorCodeChargeAlreadyRefunded || se.HTTPStatusCode != http.StatusBadRequest {
		t.Errorf("double refund: %+v, want charge_already_refunded", se)
	}
	if snap, _ := srv.Session(cs.ID); snap.AmountRefunded != 1000 {
		t.Errorf("AmountRefunded = %d, want 1000", snap.AmountRefunded)
	}

	var types []string
	var last map[string]any
	for _, ev := range srv.Events() {
		types = append(types, ev.Type)
		if ev.Type == "charge.refunded" {
			json.Unmarshal(ev.Body, &last)
		}
	}
	want := "checkout.session.completed charge.refunded refund.created charge.refunded refund.created"
	if strings.Join(types, " ") != want {
		t.Errorf("events = %v, want %s", types, want)
	}
	ch := last["data"].(map[string]any)["object"].(map[string]any)
	if ch["amount_refunded"] != 1000.0 || ch["refunded"] != true || ch["payment_intent"] != pi.ID {
		t.Errorf("last charge.refunded object = %v", ch)
	}
}

func TestPayLaterAndSettle(t *testing.T) {
	srv := stripetest.New(t)
	sc := newClient(srv)
	cs := mustCreate(t, sc, sessionParams("jpy", 1500, 1))
	ev, err := srv.PayLater(cs.ID)
	if err != nil || ev.Type != "checkout.session.completed" {
		t.Fatalf("PayLater: %v, %v", ev.Type, err)
	}
	snap, _ := srv.Session(cs.ID)
	if snap.Status != "complete" || snap.PaymentStatus != "unpaid" || snap.PaymentIntentStatus != "requires_action" {
		t.Errorf("after PayLater: %+v", snap)
	}
	_, err = sc.Refunds.New(&stripe.RefundParams{PaymentIntent: stripe.String(snap.PaymentIntent)})
	if se := stripeError(t, err); se.Code != stripe.ErrorCodeChargeNotRefundable {
		t.Errorf("refunding a processing payment: %+v", se)
	}
	ev, err = srv.Settle(cs.ID, true)
	if err != nil || ev.Type != "checkout.session.async_payment_succeeded" {
		t.Fatalf("Settle(ok): %v, %v", ev.Type, err)
	}
	if snap, _ := srv.Session(cs.ID); snap.PaymentStatus != "paid" || snap.PaymentIntentStatus != "succeeded" {
		t.Errorf("after Settle(ok): %+v", snap)
	}
	if _, err := srv.Settle(cs.ID, true); err == nil {
		t.Error("settling twice succeeded")
	}

	failed := mustCreate(t, sc, sessionParams("jpy", 1500, 1))
	if _, err := srv.PayLater(failed.ID); err != nil {
		t.Fatal(err)
	}
	ev, err = srv.Settle(failed.ID, false)
	if err != nil || ev.Type != "checkout.session.async_payment_failed" {
		t.Fatalf("Settle(!ok): %v, %v", ev.Type, err)
	}
	if snap, _ := srv.Session(failed.ID); snap.PaymentStatus != "unpaid" || snap.PaymentIntentStatus != "requires_payment_method" {
		t.Errorf("after Settle(!ok): %+v", snap)
	}
}

func TestExpire(t *testing.T) {
	srv := stripetest.New(t)
	sc := newClient(srv)
	cs := mustCreate(t, sc, sessionParams("usd", 500, 1))
	ep := &stripe.CheckoutSessionExpireParams{}
	ep.SetIdempotencyKey("expire-1")
	expired, err := sc.CheckoutSessions.Expire(cs.ID, ep)
	if err != nil {
		t.Fatal(err)
	}
	if expired.Status != stripe.CheckoutSessionStatusExpired || expired.URL != "" {
		t.Errorf("after expire: status %q, url %q", expired.Status, expired.URL)
	}
	_, err = sc.CheckoutSessions.Expire(cs.ID, nil)
	if se := stripeError(t, err); se.HTTPStatusCode != http.StatusBadRequest || !strings.Contains(se.Msg, "This Checkout Session has a status of `expired`") {
		t.Errorf("expiring twice: %+v", se)
	}
	evs := srv.Events()
	if len(evs) != 1 || evs[0].Type != "checkout.session.expired" {
		t.Fatalf("events = %+v", evs)
	}
	var body struct {
		Request struct {
			ID             string `json:"id"`
			IdempotencyKey string `json:"idempotency_key"`
		} `json:"request"`
	}
	json.Unmarshal(evs[0].Body, &body)
	if body.Request.ID != expired.LastResponse.RequestID || body.Request.IdempotencyKey != "expire-1" {
		t.Errorf("event request = %+v, want the expire request %s with key expire-1", body.Request, expired.LastResponse.RequestID)
	}
	if _, err := srv.Pay(cs.ID); err == nil {
		t.Error("paying an expired session succeeded")
	}

	paid := mustCreate(t, sc, sessionParams("usd", 500, 1))
	srv.Pay(paid.ID)
	if _, err := srv.Expire(paid.ID); err == nil {
		t.Error("Stripe expired a paid session")
	}
}

func TestPayAfterExpiresAt(t *testing.T) {
	clk := newClock()
	srv := stripetest.New(t, stripetest.WithClock(clk.Now))
	sc := newClient(srv)
	p := sessionParams("jpy", 500, 1)
	p.ExpiresAt = stripe.Int64(clk.Now().Add(time.Hour).Unix())
	cs := mustCreate(t, sc, p)
	clk.Advance(time.Hour)
	if _, err := srv.Pay(cs.ID); err == nil || !strings.Contains(err.Error(), "expires_at") {
		t.Errorf("Pay after expires_at: %v", err)
	}
	if ev, err := srv.Expire(cs.ID); err != nil || ev.Type != "checkout.session.expired" {
		t.Errorf("Expire: %v, %v", ev.Type, err)
	}
}

func TestRefundInDashboard(t *testing.T) {
	srv := stripetest.New(t)
	sc := newClient(srv)
	cs := mustCreate(t, sc, sessionParams("usd", 2500, 1))
	if _, err := srv.RefundInDashboard(cs.ID); err == nil {
		t.Error("refunding an unpaid session succeeded")
	}
	srv.Pay(cs.ID)
	ev, err := srv.RefundInDashboard(cs.ID)
	if err != nil || ev.Type != "charge.refunded" {
		t.Fatalf("RefundInDashboard: %v, %v", ev.Type, err)
	}
	var body struct {
		Data struct {
			Object struct {
				Object         string `json:"object"`
				AmountRefunded int64  `json:"amount_refunded"`
				Refunded       bool   `json:"refunded"`
			} `json:"object"`
		} `json:"data"`
	}
	json.Unmarshal(ev.Body, &body)
	if o := body.Data.Object; o.Object != "charge" || o.AmountRefunded != 2500 || !o.Refunded {
		t.Errorf("charge.refunded object = %+v", o)
	}
	snap, _ := srv.Session(cs.ID)
	_, err = sc.Refunds.New(&stripe.RefundParams{PaymentIntent: stripe.String(snap.PaymentIntent)})
	if se := stripeError(t, err); se.Code != stripe.ErrorCodeChargeAlreadyRefunded {
		t.Errorf("refunding after the dashboard refund: %+v", se)
	}
}

func TestFailNext(t *testing.T) {
	srv := stripetest.New(t)
	sc := newClient(srv)
	srv.FailNext(1, http.StatusInternalServerError)
	p := sessionParams("jpy", 500, 1)
	p.SetIdempotencyKey("outage-1")
	_, err := sc.CheckoutSessions.New(p)
	if se := stripeError(t, err); se.HTTPStatusCode != 500 || se.Type != stripe.ErrorTypeAPI {
		t.Errorf("during the outage: %+v", se)
	}
	// The failed request never reached the API, so the same key executes now.
	cs := mustCreate(t, sc, p)
	if cs.LastResponse.Header.Get("Idempotent-Replayed") != "" {
		t.Error("the retry after an outage was a replay")
	}
	reqs := srv.Requests()
	if len(reqs) != 2 || reqs[0].IdempotencyKey != "outage-1" || reqs[1].IdempotencyKey != "outage-1" {
		t.Errorf("requests = %+v", reqs)
	}
	if r := reqs[1]; r.Method != "POST" || r.Path != "/v1/checkout/sessions" || r.StripeVersion != stripe.APIVersion ||
		r.Form.Get("line_items[0][price_data][unit_amount]") != "500" {
		t.Errorf("recorded request = %+v", r)
	}
}

func TestAuthentication(t *testing.T) {
	srv := stripetest.New(t)
	get := func(auth string) (int, string, http.Header) {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/checkout/sessions/cs_test_nope", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}

	status, body, _ := get("")
	if status != 401 || !strings.Contains(body, "You did not provide an API key") {
		t.Errorf("no key: %d %s", status, body)
	}
	live := "sk_live_51Habcdefghijklmnop9876"
	status, body, hdr := get("Bearer " + live)
	masked := "sk_live_" + strings.Repeat("*", len(live)-len("sk_live_")-4) + "9876"
	if status != 401 || !strings.Contains(body, "Invalid API Key provided: "+masked) {
		t.Errorf("live key: %d %s", status, body)
	}
	if strings.Contains(body, live) {
		t.Errorf("the error echoes the whole key: %s", body)
	}
	if !strings.HasPrefix(hdr.Get("Request-Id"), "req_") {
		t.Errorf("Request-Id = %q", hdr.Get("Request-Id"))
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("rk_test_abc:"))
	if status, body, _ := get(basic); status != 404 || !strings.Contains(body, "resource_missing") {
		t.Errorf("restricted test key via Basic auth: %d %s", status, body)
	}
}

func TestUnknownRoute(t *testing.T) {
	srv := stripetest.New(t)
	req, _ := http.NewRequest("GET", srv.URL+"/v1/customers", nil)
	req.Header.Set("Authorization", "Bearer sk_test_123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != 404 || e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, "Unrecognized request URL (GET: /v1/customers)") {
		t.Errorf("unknown route: %d %+v", resp.StatusCode, e)
	}
}
