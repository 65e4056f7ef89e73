// This file is disputes of an order's payment (chargebacks): the order
// stays paid, flagged, until the dispute is decided; one lost is money
// returned.

package order

import (
	"fmt"
	"slices"
	"time"

	"github.com/caddy-checkout/checkout/money"
)

// Dispute is one dispute of an order's payment, as the provider last
// reported it.
type Dispute struct {
	ID     string       `json:"id"`     // the provider's
	Amount money.Amount `json:"amount"` // what the customer's bank disputes
	Reason string       `json:"reason"` // the provider's word: fraudulent, product_not_received, ...
	Status string       `json:"status"` // the provider's: needs_response, under_review, won, lost, ...
	// Outcome is won or lost once the dispute is closed; empty while it
	// is open. A lost dispute's amount is recorded as refunded.
	Outcome  string    `json:"outcome,omitempty"`
	OpenedAt time.Time `json:"opened_at"`
	ClosedAt time.Time `json:"closed_at,omitzero"`
	// At is the provider's time of the news last applied, so that older
	// news arriving late changes nothing.
	At time.Time `json:"at"`
}

// Open reports whether the dispute is still undecided.
func (d Dispute) Open() bool { return d.Outcome == "" }

// DisputeNews is what a provider verified about a dispute of an order's
// payment.
type DisputeNews struct {
	ID      string
	Amount  money.Amount
	Reason  string
	Status  string
	Outcome string // won or lost when the dispute closed; empty while open
	// At orders the news of one dispute: news not later than what was
	// applied last is old and changes nothing.
	At          time.Time
	Transaction string // the disputed payment
}

// DisputeKind says what a dispute line of the history is.
type DisputeKind int

// What ApplyDispute did.
const (
	DisputeNothing DisputeKind = iota // old or repeated news, or refused
	DisputeOpened                     // a new dispute: the shop is told
	DisputeMoved                      // an open dispute changed status: recorded only
	DisputeClosed                     // decided: the shop is told; lost is also a refund
)

// MaxDisputes bounds the disputes one order keeps.
const MaxDisputes = 10

// ApplyDispute records news of a dispute of the order's payment. A new
// dispute flags the order "disputed"; news older than what is recorded,
// or about a dispute already closed, changes nothing; a lost dispute
// returns its amount to the customer as a refund would (the order is
// refunded when nothing is left). The order stays paid otherwise.
func (o *Order) ApplyDispute(n DisputeNews, cause Cause, now time.Time) (DisputeKind, Outcome) {
	if o.Seen(cause) {
		return DisputeNothing, Outcome{Duplicate: true}
	}
	ev := Event{At: now, From: o.Status, To: o.Status, Cause: cause, Amount: n.Amount, Transaction: n.Transaction, Dispute: n.ID}
	refuse := func(err error) (DisputeKind, Outcome) {
		ev.Note = err.Error()
		if !o.recordRefusal(ev) {
			return DisputeNothing, Outcome{Duplicate: true, Err: err}
		}
		o.UpdatedAt = now
		return DisputeNothing, Outcome{Event: ev, Err: err}
	}
	switch {
	case o.Status != Paid && o.Status != Refunded:
		return refuse(fmt.Errorf("%w: a dispute of an order that is %s", ErrRefused, o.Status))
	case n.Transaction != "" && o.Transaction != "" && n.Transaction != o.Transaction:
		return refuse(fmt.Errorf("%w: the dispute is of payment %s, not of %s that paid the order", ErrRefused, n.Transaction, o.Transaction))
	case !n.Amount.Valid() || n.Amount.Currency() != o.Amount.Currency() || n.Amount.Cmp(o.Amount) > 0:
		return refuse(fmt.Errorf("%w: a dispute of %s %s on an order of %s %s", ErrMismatch, n.Amount, n.Amount.Currency(), o.Amount, o.Amount.Currency()))
	case n.Outcome != "" && n.Outcome != "won" && n.Outcome != "lost":
		return refuse(fmt.Errorf("%w: dispute outcome %q", ErrRefused, n.Outcome))
	}
	i := slices.IndexFunc(o.Disputes, func(d Dispute) bool { return d.ID == n.ID })
	if i < 0 {
		if len(o.Disputes) >= MaxDisputes {
			return refuse(fmt.Errorf("%w: more than %d disputes", ErrRefused, MaxDisputes))
		}
		o.Disputes = append(o.Disputes, Dispute{ID: n.ID, Amount: n.Amount, Reason: n.Reason, OpenedAt: now})
		i = len(o.Disputes) - 1
	} else if d := o.Disputes[i]; !d.Open() || !n.At.After(d.At) {
		return DisputeNothing, Outcome{Duplicate: true} // closed, or older news
	}
	d := &o.Disputes[i]
	kind := DisputeMoved
	if d.Status == "" {
		kind = DisputeOpened
	}
	d.Status, d.At, d.Amount = n.Status, n.At, n.Amount
	if n.Reason != "" {
		d.Reason = n.Reason
	}
	ev.Applied = true
	ev.Note = "dispute " + n.ID + " (" + d.Reason + "): " + n.Status
	if n.Outcome != "" {
		kind, d.Outcome, d.ClosedAt = DisputeClosed, n.Outcome, now
		if n.Outcome == "lost" {
			// The bank took the money back: a refund of the disputed
			// amount, beside what the provider refunded.
			before := o.Refunded()
			if o.DisputeLost.Valid() {
				o.DisputeLost = o.DisputeLost.Add(n.Amount)
			} else {
				o.DisputeLost = n.Amount
			}
			after := o.Refunded()
			ev.Refund, ev.Amount = after.Sub(before), after
			o.RefundedAmount = after
			if after.Cmp(o.Amount) >= 0 {
				o.Status = Refunded
			}
			ev.To = o.Status
			ev.Note += "; the disputed amount went back to the customer"
		}
	}
	if open := slices.ContainsFunc(o.Disputes, Dispute.Open); open && !hasFlag(o.Flags, "disputed") {
		o.Flags = append(o.Flags, "disputed")
	} else if !open {
		o.Flags = slices.DeleteFunc(o.Flags, func(f string) bool { return f == "disputed" })
	}
	o.History = append(o.History, ev)
	o.UpdatedAt = now
	return kind, Outcome{Changed: kind != DisputeMoved, Event: ev}
}
