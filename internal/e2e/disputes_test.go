package e2e

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/internal/stripetest"
)

// disputeCallback is the part of a shop callback read here.
type disputeCallback struct {
	Type string `json:"type"`
	Data struct {
		OrderID        string   `json:"order_id"`
		Status         string   `json:"status"`
		RefundedAmount string   `json:"refunded_amount"`
		Flags          []string `json:"flags"`
		Dispute        *struct {
			ID, Amount, Reason, Status, Outcome string
		} `json:"dispute"`
		Refund *struct {
			Amount  string `json:"amount"`
			Partial bool   `json:"partial"`
		} `json:"refund"`
	} `json:"data"`
}

// TestStripeDisputesThroughCaddy: Stripe's charge.dispute.* events reach a
// Caddy configured from a Caddyfile. A dispute flags the paid order and the
// shop gets order.disputed; won, the shop gets order.dispute_closed and
// keeps the money; lost (of part of a second order), the shop gets
// order.dispute_closed and order.refunded, and the order keeps paid with
// the amount returned. A stale event redelivered after the close changes
// nothing.
func TestStripeDisputesThroughCaddy(t *testing.T) {
	fake := stripetest.New(t)
	site := stripeSite(t, fake)

	won, wonSession := payStripe(t, site, fake, "tee", "25.00 USD", 1)
	lost, lostSession := payStripe(t, site, fake, "tee", "25.00 USD", 2)
	callbacks := func(from int) []disputeCallback {
		var out []disputeCallback
		for _, c := range site.shop.Callbacks()[from:] {
			var cb disputeCallback
			if err := json.Unmarshal([]byte(c.Body), &cb); err != nil {
				t.Fatal(err)
			}
			out = append(out, cb)
		}
		return out
	}
	type adminOrder struct {
		Status         string   `json:"status"`
		Flags          []string `json:"flags"`
		RefundedAmount *struct {
			Amount string `json:"amount"`
		} `json:"refunded_amount"`
		Disputes []struct {
			ID, Reason, Status, Outcome string
			Amount                      struct{ Amount string }
		} `json:"disputes"`
		History []struct {
			Dispute string `json:"dispute"`
			Applied bool   `json:"applied"`
		} `json:"history"`
	}
	orderOf := func(id string) adminOrder {
		var o adminOrder
		if code := adminGet(t, site.admin, "/checkout/orders/default/"+url.PathEscape(id), &o); code != 200 {
			t.Fatalf("admin order %s: %d", id, code)
		}
		return o
	}

	// Opened: flagged, the shop told, the order still paid.
	dp, err := fake.OpenDispute(wonSession, 0, "fraudulent")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "order.disputed", func() bool { return len(site.shop.Callbacks()) == 3 })
	cb := callbacks(2)[0]
	if cb.Type != "order.disputed" || cb.Data.OrderID != won || cb.Data.Status != "paid" || !slices.Contains(cb.Data.Flags, "disputed") ||
		cb.Data.Dispute == nil || cb.Data.Dispute.ID != dp || cb.Data.Dispute.Amount != "25.00" || cb.Data.Dispute.Reason != "fraudulent" ||
		cb.Data.Dispute.Status != "needs_response" || cb.Data.Dispute.Outcome != "" {
		t.Fatalf("order.disputed = %+v %+v", cb, cb.Data.Dispute)
	}
	if o := orderOf(won); o.Status != "paid" || !slices.Contains(o.Flags, "disputed") || len(o.Disputes) != 1 || o.Disputes[0].Status != "needs_response" {
		t.Fatalf("admin API after the dispute opened: %+v", o)
	}

	// Evidence under review: recorded, no callback. Won: the shop is told,
	// the flag goes, the money stays.
	review, err := fake.UpdateDispute(dp, "under_review")
	if err != nil {
		t.Fatal(err)
	}
	if o := orderOf(won); o.Disputes[0].Status != "under_review" {
		t.Fatalf("after under_review: %+v", o.Disputes)
	}
	if _, err := fake.CloseDispute(dp, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "order.dispute_closed (won)", func() bool { return len(site.shop.Callbacks()) == 4 })
	cb = callbacks(3)[0]
	if cb.Type != "order.dispute_closed" || cb.Data.Status != "paid" || cb.Data.Dispute == nil || cb.Data.Dispute.Outcome != "won" ||
		slices.Contains(cb.Data.Flags, "disputed") || cb.Data.RefundedAmount != "" {
		t.Fatalf("order.dispute_closed (won) = %+v %+v", cb, cb.Data.Dispute)
	}
	// The under_review event again, late: nothing changes.
	before := orderOf(won)
	if _, err := fake.Resend(review.ID); err != nil {
		t.Fatal(err)
	}
	if o := orderOf(won); len(o.History) != len(before.History) || o.Disputes[0].Outcome != "won" || o.Disputes[0].Status != "won" {
		t.Fatalf("a stale dispute event changed the order: %+v", o)
	}

	// Lost, of 10.00 of the second order: the money went back.
	dp2, err := fake.OpenDispute(lostSession, 1000, "product_not_received")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fake.CloseDispute(dp2, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "order.disputed, order.dispute_closed and order.refunded", func() bool { return len(site.shop.Callbacks()) == 7 })
	got := callbacks(4)
	var types []string
	for _, c := range got {
		types = append(types, c.Type)
	}
	if strings.Join(types, ",") != "order.disputed,order.dispute_closed,order.refunded" {
		t.Fatalf("callbacks for the lost dispute: %v", types)
	}
	closed, refunded := got[1], got[2]
	if closed.Data.OrderID != lost || closed.Data.Dispute.Outcome != "lost" || closed.Data.Dispute.Amount != "10.00" || closed.Data.RefundedAmount != "10.00" {
		t.Errorf("order.dispute_closed (lost) = %+v %+v", closed, closed.Data.Dispute)
	}
	if refunded.Data.Status != "paid" || refunded.Data.Refund == nil || refunded.Data.Refund.Amount != "10.00" || !refunded.Data.Refund.Partial {
		t.Errorf("order.refunded for the lost dispute = %+v %+v", refunded, refunded.Data.Refund)
	}
	if o := orderOf(lost); o.Status != "paid" || o.RefundedAmount == nil || o.RefundedAmount.Amount != "10.00" ||
		len(o.Disputes) != 1 || o.Disputes[0].Outcome != "lost" || slices.Contains(o.Flags, "disputed") {
		t.Errorf("admin API after the lost dispute: %+v", o)
	}

}
