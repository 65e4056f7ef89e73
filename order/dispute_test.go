package order_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
)

// news is a dispute's news at second sec of the provider's clock.
func news(o *order.Order, status, outcome, amount string, sec int64) order.DisputeNews {
	return order.DisputeNews{ID: "dp_1", Amount: usd(amount), Reason: "fraudulent", Status: status, Outcome: outcome,
		At: time.Unix(1_800_000_000+sec, 0), Transaction: o.Transaction}
}

func dispute(o *order.Order, n order.DisputeNews, event string) (order.DisputeKind, order.Outcome) {
	return o.ApplyDispute(n, order.Cause{Kind: order.ByWebhook, Ref: event}, t0.Add(time.Hour))
}

// TestDisputeOpenedThenWon: a dispute flags the paid order disputed and
// tells the shop; a status change is recorded only; won clears the flag,
// keeps the money and tells the shop; older news arriving after changes
// nothing.
func TestDisputeOpenedThenWon(t *testing.T) {
	o := orderIn(t, order.Paid)
	kind, out := dispute(o, news(o, "needs_response", "", "75.00", 1), "e1")
	if kind != order.DisputeOpened || !out.Changed || !slices.Contains(o.Flags, "disputed") || o.Status != order.Paid {
		t.Fatalf("opened: %v %+v, flags %v, %s", kind, out, o.Flags, o.Status)
	}
	if kind, out = dispute(o, news(o, "under_review", "", "75.00", 2), "e2"); kind != order.DisputeMoved || out.Changed || out.Duplicate {
		t.Fatalf("moved: %v %+v", kind, out)
	}
	if kind, out = dispute(o, news(o, "won", "won", "75.00", 3), "e3"); kind != order.DisputeClosed || !out.Changed || out.Event.IsRefund() {
		t.Fatalf("won: %v %+v", kind, out)
	}
	d := o.Disputes[0]
	if d.Outcome != "won" || d.Status != "won" || slices.Contains(o.Flags, "disputed") || o.Status != order.Paid || !o.Refunded().IsZero() {
		t.Fatalf("after won: %+v, flags %v, %s, refunded %s", d, o.Flags, o.Status, o.Refunded())
	}
	hist := len(o.History)
	for i, n := range []order.DisputeNews{news(o, "under_review", "", "75.00", 2), news(o, "needs_response", "", "75.00", 9), news(o, "lost", "lost", "75.00", 9)} {
		if kind, out := dispute(o, n, "late"+string(rune('a'+i))); kind != order.DisputeNothing || !out.Duplicate {
			t.Errorf("news %s after the dispute closed: %v %+v", n.Status, kind, out)
		}
	}
	if len(o.History) != hist || o.Disputes[0].Outcome != "won" {
		t.Errorf("old news changed the order: %d lines, %+v", len(o.History), o.Disputes[0])
	}
	// The same event again is a duplicate too.
	if _, out := dispute(o, news(o, "won", "won", "75.00", 3), "e3"); !out.Duplicate {
		t.Errorf("a redelivered event: %+v", out)
	}
}

// TestDisputeNewsOutOfOrder: an older status arriving after a newer one is
// old news.
func TestDisputeNewsOutOfOrder(t *testing.T) {
	o := orderIn(t, order.Paid)
	dispute(o, news(o, "under_review", "", "75.00", 5), "e2")
	if kind, out := dispute(o, news(o, "needs_response", "", "75.00", 4), "e1"); kind != order.DisputeNothing || !out.Duplicate {
		t.Fatalf("older news: %v %+v", kind, out)
	}
	if o.Disputes[0].Status != "under_review" {
		t.Fatalf("status %s, want under_review", o.Disputes[0].Status)
	}
}

// TestDisputeLostIsARefund: a lost dispute returns its amount: part of
// the payment leaves the order paid with refunded_amount, all of it
// makes it refunded; either way a refund line records the money.
func TestDisputeLostIsARefund(t *testing.T) {
	for _, tc := range []struct {
		amount, refunded string
		status           order.State
	}{
		{"20.00", "20.00", order.Paid},
		{"75.00", "75.00", order.Refunded},
	} {
		o := orderIn(t, order.Paid)
		dispute(o, news(o, "needs_response", "", tc.amount, 1), "e1")
		kind, out := dispute(o, news(o, "lost", "lost", tc.amount, 2), "e2")
		if kind != order.DisputeClosed || !out.Changed || !out.Event.IsRefund() || !out.Event.Refund.Equal(usd(tc.amount)) {
			t.Fatalf("lost %s: %v %+v", tc.amount, kind, out)
		}
		if o.Status != tc.status || !o.Refunded().Equal(usd(tc.refunded)) || slices.Contains(o.Flags, "disputed") {
			t.Errorf("after losing %s: %s, refunded %s, flags %v", tc.amount, o.Status, o.Refunded(), o.Flags)
		}
	}
}

// TestForeignDisputesChangeNothing: a dispute of another payment, of more
// than the order, in another currency, or of an order not paid, is
// recorded as refused and changes nothing.
func TestForeignDisputesChangeNothing(t *testing.T) {
	o := orderIn(t, order.Paid)
	other := news(o, "needs_response", "", "75.00", 1)
	other.Transaction = "pi_someone_else"
	eur := news(o, "needs_response", "", "75.00", 1)
	eur.Amount = money.MustParse("5.00", "EUR")
	for name, n := range map[string]order.DisputeNews{
		"another payment":  other,
		"more than paid":   news(o, "needs_response", "", "75.01", 1),
		"another currency": eur,
	} {
		if kind, out := dispute(o, n, name); kind != order.DisputeNothing || out.Changed || out.Err == nil {
			t.Errorf("%s: %v %+v", name, kind, out)
		}
	}
	if len(o.Disputes) != 0 || slices.Contains(o.Flags, "disputed") {
		t.Errorf("refused disputes left %+v, flags %v", o.Disputes, o.Flags)
	}
	pending := newOrder(t)
	if _, out := dispute(pending, news(pending, "needs_response", "", "75.00", 1), "p"); !errors.Is(out.Err, order.ErrRefused) {
		t.Errorf("a dispute of a pending order: %+v", out)
	}
}

// TestRefundsAfterALostDisputeStillCount: the provider's refund totals do
// not hold disputes lost, so a refund reported after a dispute was lost
// adds to it: 30.00 lost and 20.00 refunded is 50.00 returned, and the
// rest refunded makes the order refunded.
func TestRefundsAfterALostDisputeStillCount(t *testing.T) {
	o := orderIn(t, order.Paid)
	dispute(o, news(o, "needs_response", "", "30.00", 1), "e1")
	dispute(o, news(o, "lost", "lost", "30.00", 2), "e2")
	out := refundTo(o, "20.00", "r1")
	if !out.Changed || !out.Event.Refund.Equal(usd("20.00")) || o.Status != order.Paid || !o.Refunded().Equal(usd("50.00")) {
		t.Fatalf("a refund of 20.00 after losing 30.00: %+v, %s with %s returned", out, o.Status, o.Refunded())
	}
	if out := refundTo(o, "20.00", "r1-again"); !out.Duplicate {
		t.Errorf("the same total again: %+v", out)
	}
	out = refundTo(o, "45.00", "r2")
	if !out.Changed || !out.Event.Refund.Equal(usd("25.00")) || o.Status != order.Refunded || !o.Refunded().Equal(usd("75.00")) {
		t.Fatalf("the rest refunded: %+v, %s with %s returned", out, o.Status, o.Refunded())
	}
}
