// This file is money going back to the customer: refunds, of all of a
// payment or part, as the provider reports their total.

package order

import (
	"fmt"
	"time"

	"github.com/caddy-checkout/checkout/money"
)

// refund applies a provider's or operator's news that money was returned:
// the total refunded so far (t.Refunded, or all of it). A total no larger
// than what is already recorded is old news (webhooks arrive out of
// order) and changes nothing; a larger one records the difference. The
// order is refunded when the total reaches its amount.
func (o *Order) refund(t Transition, ev Event, now time.Time, refuse func(error) Outcome) Outcome {
	ev.Asked = t.Asked
	// known is the news of a refund already recorded: nothing changes, but
	// an operator's request is kept, so that repeating it (its
	// idempotency key) answers with the order as it is.
	known := func() Outcome {
		if t.Cause.Kind != ByAdmin || t.Cause.Ref == "" {
			return Outcome{Duplicate: true}
		}
		ev.Amount, ev.Note = o.Refunded(), "refund already recorded"
		o.History = append(o.History, ev)
		o.UpdatedAt = now
		return Outcome{Event: ev}
	}
	if o.Status == Refunded {
		return known()
	}
	if o.Status != Paid {
		return refuse(fmt.Errorf("%w: %s → %s", ErrRefused, o.Status, Refunded))
	}
	if t.Transaction != "" && o.Transaction != "" && t.Transaction != o.Transaction {
		// A second payment of the order (flagged paid_twice) was
		// returned: the payment that paid it stands.
		return refuse(fmt.Errorf("%w: the refund is of payment %s, not of %s that paid the order", ErrRefused, t.Transaction, o.Transaction))
	}
	total := t.Refunded
	if !total.Valid() {
		total = o.Amount
	}
	if total.Currency() != o.Amount.Currency() {
		return refuse(fmt.Errorf("%w: refund in %s of an order in %s", ErrMismatch, total.Currency(), o.Amount.Currency()))
	}
	if total.Cmp(o.RefundedAtProvider()) <= 0 {
		return known()
	}
	if total.Cmp(o.Amount) > 0 {
		return refuse(fmt.Errorf("%w: %s refunded in all is more than the order's %s", ErrMismatch, total, o.Amount))
	}
	before := o.Refunded()
	o.ProviderRefunded = total
	after := o.Refunded()
	ev.Refund, ev.Amount, ev.Applied = after.Sub(before), after, true
	if after.Cmp(o.Amount) < 0 {
		ev.To = Paid
	} else {
		o.Status = Refunded
	}
	o.RefundedAmount = after
	o.History = append(o.History, ev)
	o.UpdatedAt = now
	return Outcome{Changed: true, Event: ev}
}

// RefundedAtProvider is the total the provider has reported refunded
// (charge.amount_refunded, a payment's amount_refunded): the mark that
// news of refunds is compared with. Disputes lost are not in it, as they
// are not in the provider's total.
func (o *Order) RefundedAtProvider() money.Amount {
	if o.ProviderRefunded.Valid() {
		return o.ProviderRefunded
	}
	return o.Amount.Sub(o.Amount)
}

// Refunded is how much of the payment has gone back to the customer so
// far, by refunds and by disputes lost, at most the amount: zero, in the
// order's currency, before any.
func (o *Order) Refunded() money.Amount {
	if o.Status == Refunded && !o.ProviderRefunded.Valid() && !o.DisputeLost.Valid() {
		return o.Amount // refunded before partial refunds were kept
	}
	sum := o.RefundedAtProvider()
	if o.DisputeLost.Valid() {
		sum = sum.Add(o.DisputeLost)
	}
	if sum.Cmp(o.Amount) > 0 {
		return o.Amount
	}
	return sum
}

// Refundable is how much of a paid order's payment can still be returned.
func (o *Order) Refundable() money.Amount { return o.Amount.Sub(o.Refunded()) }

// RefundedRecently reports whether a refund of amount was recorded since
// since (by any cause: an operator's request, or the provider's news of
// it), for recognising a repeated request that carries no key.
func (o *Order) RefundedRecently(amount money.Amount, since time.Time) bool {
	for _, ev := range o.History {
		if ev.IsRefund() && !ev.At.Before(since) && ev.Refund.Equal(amount) {
			return true
		}
	}
	return false
}
