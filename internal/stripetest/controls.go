// Test controls: what the customer and Stripe itself do to a Checkout Session
// outside the API (pay, pay later, settle, expire, refund from the
// dashboard), and snapshots of the state for assertions.
package stripetest

import (
	"fmt"
	"maps"
	"time"
)

// testEmail is the address a customer enters on the hosted page when the
// session did not prefill customer_email (Stripe's documentation persona).
const testEmail = "jenny.rosen@example.com"

// Pay is the customer paying by card on the hosted page: the session becomes
// complete and paid, with a succeeded PaymentIntent and its charge. It
// returns checkout.session.completed, delivered to the webhook before Pay
// returns.
func (s *Server) Pay(id string) (Event, error) {
	return s.complete(id, true)
}

// PayLater is the customer choosing konbini: the session becomes complete
// but unpaid, and its PaymentIntent requires_action with a voucher that
// lapses in [VoucherLife] (next_action.konbini_display_details.expires_at),
// with no charge yet (so it cannot be refunded), until [Server.Settle]. It
// returns checkout.session.completed.
func (s *Server) PayLater(id string) (Event, error) {
	return s.complete(id, false)
}

// VoucherLife is how long the fake's konbini vouchers last: Stripe's
// default expires_after_days of 3 (the fake does not round to the end of
// the day in Japan).
const VoucherLife = 72 * time.Hour

func (s *Server) complete(id string, paid bool) (Event, error) {
	s.mu.Lock()
	x, err := s.payableLocked(id)
	if err != nil {
		s.mu.Unlock()
		return Event{}, err
	}
	now := s.now().Unix()
	pi := &paymentIntent{
		id:          newID("pi_", 24),
		account:     x.account,
		created:     now,
		amount:      x.amountTotal,
		currency:    x.currency,
		status:      "requires_action",
		metadata:    maps.Clone(x.intentMetadata),
		methodTypes: append([]string(nil), x.methodTypes...),
	}
	pi.clientSecret = pi.id + "_secret_" + newID("", 25)
	pi.voucherExpires = s.now().Add(VoucherLife).Unix()
	s.intents[pi.id] = pi
	x.intent = pi
	x.status = "complete"
	x.paidEmail = x.customerEmail
	if x.paidEmail == "" {
		x.paidEmail = testEmail
	}
	if paid {
		s.succeedLocked(x)
	}
	e := s.emitLocked("checkout.session.completed", x.account, x.json(s.URL, nil), eventRequest{})
	s.mu.Unlock()
	e.wait()
	return e.ev, nil
}

// sessionLocked finds a session for a control method. s.mu must be held.
func (s *Server) sessionLocked(id string) (*session, error) {
	if x := s.sessions[id]; x != nil {
		return x, nil
	}
	return nil, fmt.Errorf("stripetest: no Checkout Session %q", id)
}

// payableLocked finds a session the customer can still pay.
func (s *Server) payableLocked(id string) (*session, error) {
	x, err := s.sessionLocked(id)
	switch {
	case err != nil:
		return nil, err
	case x.status != "open":
		return nil, fmt.Errorf("stripetest: Checkout Session %s is %s, not open", id, x.status)
	case !s.now().Before(time.Unix(x.expiresAt, 0)):
		// Stripe's page stops taking payments at expires_at; the session's
		// status changes when Stripe expires it (Expire).
		return nil, fmt.Errorf("stripetest: Checkout Session %s passed its expires_at (%s)", id, time.Unix(x.expiresAt, 0).UTC())
	}
	return x, nil
}

// succeedLocked marks the session's payment received: the PaymentIntent
// succeeds with a charge.
func (s *Server) succeedLocked(x *session) {
	pi := x.intent
	pi.status = "succeeded"
	pi.amountReceived = pi.amount
	pi.charge = &charge{
		id:       newID("ch_", 24),
		account:  pi.account,
		created:  s.now().Unix(),
		amount:   pi.amount,
		currency: pi.currency,
		metadata: maps.Clone(pi.metadata),
		intent:   pi,
	}
	s.charges[pi.charge.id] = pi.charge
	x.paymentStatus = "paid"
}

// Settle ends a delayed payment started by [Server.PayLater]: when ok the
// money arrived (payment_status paid, PaymentIntent succeeded,
// checkout.session.async_payment_succeeded); otherwise it did not
// (PaymentIntent requires_payment_method,
// checkout.session.async_payment_failed).
func (s *Server) Settle(id string, ok bool) (Event, error) {
	s.mu.Lock()
	x, err := s.sessionLocked(id)
	switch {
	case err != nil:
		s.mu.Unlock()
		return Event{}, err
	case x.status != "complete" || x.intent == nil || x.intent.status != "requires_action":
		s.mu.Unlock()
		return Event{}, fmt.Errorf("stripetest: Checkout Session %s has no delayed payment in progress (status %s, payment_status %s)", id, x.status, x.paymentStatus)
	}
	typ := "checkout.session.async_payment_succeeded"
	if ok {
		s.succeedLocked(x)
	} else {
		x.intent.status = "requires_payment_method"
		typ = "checkout.session.async_payment_failed"
	}
	e := s.emitLocked(typ, x.account, x.json(s.URL, nil), eventRequest{})
	s.mu.Unlock()
	e.wait()
	return e.ev, nil
}

// Expire is Stripe expiring an open session (at its expires_at, or because
// the customer abandoned it): status expired, checkout.session.expired.
func (s *Server) Expire(id string) (Event, error) {
	s.mu.Lock()
	x, err := s.sessionLocked(id)
	switch {
	case err != nil:
		s.mu.Unlock()
		return Event{}, err
	case x.status != "open":
		s.mu.Unlock()
		return Event{}, fmt.Errorf("stripetest: Checkout Session %s is %s, not open", id, x.status)
	}
	x.status = "expired"
	e := s.emitLocked("checkout.session.expired", x.account, x.json(s.URL, nil), eventRequest{})
	s.mu.Unlock()
	e.wait()
	return e.ev, nil
}

// RefundInDashboard is the merchant refunding the rest of a paid session's
// charge in Stripe's dashboard. It returns charge.refunded; refund.created
// is emitted too.
func (s *Server) RefundInDashboard(id string) (Event, error) {
	s.mu.Lock()
	x, err := s.sessionLocked(id)
	switch {
	case err != nil:
		s.mu.Unlock()
		return Event{}, err
	case x.intent == nil || x.intent.charge == nil:
		s.mu.Unlock()
		return Event{}, fmt.Errorf("stripetest: Checkout Session %s has no charge to refund (payment_status %s)", id, x.paymentStatus)
	}
	ch := x.intent.charge
	// The dashboard makes its own API request, with its own idempotency key.
	req := eventRequest{ID: nullable(newRequestID()), IdempotencyKey: nullable(newUUID())}
	_, events, e := s.refundLocked(ch, ch.amount-ch.amountRefunded, "", nil, req)
	s.mu.Unlock()
	if e != nil {
		return Event{}, fmt.Errorf("stripetest: refunding %s: %s", id, e.Message)
	}
	for _, ev := range events {
		ev.wait()
	}
	return events[0].ev, nil
}

// Session returns a snapshot of the session with that id, in any account.
func (s *Server) Session(id string) (Session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.sessions[id]
	if x == nil {
		return Session{}, false
	}
	return x.snapshot(s.URL), true
}

// Sessions returns snapshots of every session, in the order created.
func (s *Server) Sessions() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Session, len(s.sessionOrder))
	for i, x := range s.sessionOrder {
		out[i] = x.snapshot(s.URL)
	}
	return out
}
