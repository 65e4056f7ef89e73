// This file is disputes: a customer's bank disputing a charge (a
// chargeback, or an inquiry before one), opened, moved and closed by the
// test as the bank and Stripe would, each step a charge.dispute.* event
// carrying the Dispute object (id dp_..., amount, currency, charge,
// payment_intent, reason, status).

package stripetest

import (
	"fmt"
	"slices"
)

type dispute struct {
	id, account string
	created     int64
	amount      int64
	currency    string
	reason      string
	status      string
	charge      *charge
}

type disputeJSON struct {
	ID                 string            `json:"id"`
	Object             string            `json:"object"`
	Amount             int64             `json:"amount"`
	Charge             string            `json:"charge"`
	Created            int64             `json:"created"`
	Currency           string            `json:"currency"`
	IsChargeRefundable bool              `json:"is_charge_refundable"`
	Livemode           bool              `json:"livemode"`
	Metadata           map[string]string `json:"metadata"`
	PaymentIntent      string            `json:"payment_intent"`
	Reason             string            `json:"reason"`
	Status             string            `json:"status"`
}

func (d *dispute) json() disputeJSON {
	return disputeJSON{ID: d.id, Object: "dispute", Amount: d.amount, Charge: d.charge.id, Created: d.created,
		Currency: d.currency, Metadata: map[string]string{}, PaymentIntent: d.charge.intent.id, Reason: d.reason, Status: d.status}
}

// Stripe's dispute reasons and statuses.
var (
	disputeReasons = []string{"bank_cannot_process", "check_returned", "credit_not_processed", "customer_initiated",
		"debit_not_authorized", "duplicate", "fraudulent", "general", "incorrect_account_details", "insufficient_funds",
		"product_not_received", "product_unacceptable", "subscription_canceled", "unrecognized"}
	openDisputeStatuses = []string{"warning_needs_response", "warning_under_review", "needs_response", "under_review"}
)

// OpenDispute is the customer's bank disputing amount (0: all of it) of a
// paid session's charge for reason: charge.dispute.created, the dispute
// needing a response. It returns the dispute's id.
func (s *Server) OpenDispute(sessionID string, amount int64, reason string) (string, error) {
	if !slices.Contains(disputeReasons, reason) {
		return "", fmt.Errorf("stripetest: %q is not a dispute reason", reason)
	}
	s.mu.Lock()
	x, err := s.sessionLocked(sessionID)
	switch {
	case err != nil:
		s.mu.Unlock()
		return "", err
	case x.intent == nil || x.intent.charge == nil:
		s.mu.Unlock()
		return "", fmt.Errorf("stripetest: Checkout Session %s has no charge to dispute", sessionID)
	}
	ch := x.intent.charge
	if amount == 0 {
		amount = ch.amount
	}
	if amount < 0 || amount > ch.amount {
		s.mu.Unlock()
		return "", fmt.Errorf("stripetest: a dispute of %d on a charge of %d", amount, ch.amount)
	}
	d := &dispute{id: newID("dp_", 24), account: ch.account, created: s.now().Unix(), amount: amount,
		currency: ch.currency, reason: reason, status: "needs_response", charge: ch}
	s.disputes[d.id] = d
	e := s.emitLocked("charge.dispute.created", d.account, d.json(), eventRequest{})
	s.mu.Unlock()
	e.wait()
	return d.id, nil
}

// UpdateDispute moves an open dispute to another open status (the
// merchant's evidence is under review): charge.dispute.updated.
func (s *Server) UpdateDispute(id, status string) (Event, error) {
	if !slices.Contains(openDisputeStatuses, status) {
		return Event{}, fmt.Errorf("stripetest: %q is not an open dispute status", status)
	}
	return s.moveDispute(id, status, "charge.dispute.updated")
}

// CloseDispute ends a dispute, won (the money stays with the merchant) or
// lost (it went back to the customer): charge.dispute.closed.
func (s *Server) CloseDispute(id string, won bool) (Event, error) {
	status := "lost"
	if won {
		status = "won"
	}
	return s.moveDispute(id, status, "charge.dispute.closed")
}

func (s *Server) moveDispute(id, status, typ string) (Event, error) {
	s.mu.Lock()
	d := s.disputes[id]
	switch {
	case d == nil:
		s.mu.Unlock()
		return Event{}, fmt.Errorf("stripetest: no dispute %q", id)
	case !slices.Contains(openDisputeStatuses, d.status):
		s.mu.Unlock()
		return Event{}, fmt.Errorf("stripetest: dispute %s is closed (%s)", id, d.status)
	}
	d.status = status
	e := s.emitLocked(typ, d.account, d.json(), eventRequest{})
	s.mu.Unlock()
	e.wait()
	return e.ev, nil
}
