package order_test

import (
	"errors"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
)

// refundTo applies a provider's news that total has been refunded so far.
func refundTo(o *order.Order, total, event string) order.Outcome {
	tr := order.Transition{To: order.Refunded, Ref: o.PaidRef, Cause: order.Cause{Kind: order.ByWebhook, Ref: event}, Transaction: o.Transaction}
	if total != "" {
		tr.Refunded = usd(total)
	}
	return o.Apply(tr, t0.Add(time.Hour))
}

// TestPartialRefundsThenTheRest: two partial refunds keep the order paid
// with what was returned so far; the rest makes it refunded. Each refund
// is one history line giving its own amount.
func TestPartialRefundsThenTheRest(t *testing.T) {
	o := orderIn(t, order.Paid)
	for _, step := range []struct {
		total, refund string
		status        order.State
	}{
		{"5.00", "5.00", order.Paid},
		{"15.50", "10.50", order.Paid},
		{"75.00", "59.50", order.Refunded},
	} {
		out := refundTo(o, step.total, "evt-"+step.total)
		if !out.Changed || out.Err != nil || !out.Event.IsRefund() {
			t.Fatalf("refund to %s: %+v", step.total, out)
		}
		if !out.Event.Refund.Equal(usd(step.refund)) || !out.Event.Amount.Equal(usd(step.total)) || out.Event.To != step.status {
			t.Errorf("refund to %s: line refund %s amount %s to %s; want %s, %s, %s",
				step.total, out.Event.Refund, out.Event.Amount, out.Event.To, step.refund, step.total, step.status)
		}
		if o.Status != step.status || !o.Refunded().Equal(usd(step.total)) {
			t.Errorf("after refund to %s: %s with %s refunded", step.total, o.Status, o.Refunded())
		}
	}
	if !o.Refundable().IsZero() {
		t.Errorf("refundable after the whole refund: %s", o.Refundable())
	}
}

// TestRefundNewsOutOfOrderChangesNothing: a total no larger than what is
// recorded (an older webhook arriving late, the same refund reported by
// the admin call and then the webhook) is old news.
func TestRefundNewsOutOfOrderChangesNothing(t *testing.T) {
	o := orderIn(t, order.Paid)
	refundTo(o, "20.00", "evt-2")
	hist := len(o.History)
	for _, total := range []string{"5.00", "20.00", "19.99"} {
		if out := refundTo(o, total, "evt-old-"+total); !out.Duplicate || out.Changed {
			t.Errorf("a total of %s after 20.00: %+v, want a duplicate", total, out)
		}
	}
	if len(o.History) != hist || !o.Refunded().Equal(usd("20.00")) {
		t.Errorf("old news changed the order: %d lines, %s refunded", len(o.History), o.Refunded())
	}
}

// TestRefundBeyondTheAmountIsRefused: a total above the order's amount,
// or in another currency, is recorded and refused; the order stays paid.
func TestRefundBeyondTheAmountIsRefused(t *testing.T) {
	o := orderIn(t, order.Paid)
	if out := refundTo(o, "75.01", "evt-over"); out.Changed || !errors.Is(out.Err, order.ErrMismatch) {
		t.Errorf("refund above the amount: %+v", out)
	}
	out := o.Apply(order.Transition{To: order.Refunded, Ref: o.PaidRef, Cause: order.Cause{Kind: order.ByWebhook, Ref: "evt-eur"},
		Refunded: money.MustParse("1.00", "EUR")}, t0.Add(time.Hour))
	if out.Changed || !errors.Is(out.Err, order.ErrMismatch) {
		t.Errorf("refund in EUR: %+v", out)
	}
	if o.Status != order.Paid || !o.Refunded().IsZero() {
		t.Errorf("after refused refunds: %s with %s refunded", o.Status, o.Refunded())
	}
}

// TestRefundOfAnotherPaymentLeavesTheOrderPaid: when a second payment of
// an order (paid_twice) is returned, the payment that paid it stands.
func TestRefundOfAnotherPaymentLeavesTheOrderPaid(t *testing.T) {
	o := orderIn(t, order.Paid)
	out := o.Apply(order.Transition{To: order.Refunded, Ref: o.PaidRef, Cause: order.Cause{Kind: order.ByWebhook, Ref: "evt-dup"},
		Transaction: "tx-second"}, t0.Add(time.Hour))
	if out.Changed || !errors.Is(out.Err, order.ErrRefused) || o.Status != order.Paid {
		t.Errorf("refund of a second payment: %+v, order %s", out, o.Status)
	}
}

// TestFullRefundWithoutATotal: news of a refund without an amount is a
// refund of all that is left (providers that only say "refunded").
func TestFullRefundWithoutATotal(t *testing.T) {
	o := orderIn(t, order.Paid)
	refundTo(o, "30.00", "evt-part")
	out := refundTo(o, "", "evt-full")
	if !out.Changed || o.Status != order.Refunded || !out.Event.Refund.Equal(usd("45.00")) {
		t.Errorf("refund of the rest: %+v, %s", out, o.Status)
	}
	if out := refundTo(o, "", "evt-full-again"); !out.Duplicate {
		t.Errorf("a refunded order refunded again: %+v", out)
	}
}
