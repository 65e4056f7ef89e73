package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/internal/stripetest"
)

// TestStripeThroughCaddyWithAdminRefund runs a Caddy configured from a
// Caddyfile whose stripe block points at the fake Stripe: a customer pays
// on Stripe's page and lands at the shop as paid, the shop gets its
// callback, and an operator refunds the order through the admin API.
func TestStripeThroughCaddyWithAdminRefund(t *testing.T) {
	fake := stripetest.New(t, stripetest.WithMock(stripetest.StartMock(t)))
	site := stripeSite(t, fake)
	base, admin, shop := site.base, site.admin, site.shop

	c := noRedirectClient()
	r, err := c.PostForm("http://"+base+"/buy", url.Values{"product": {"tee"}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	page := r.Header.Get("Location")
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(page, fake.URL+"/pay/cs_") {
		t.Fatalf("buy: %d %q, want 303 to Stripe Checkout", r.StatusCode, page)
	}
	if r, err := c.Get(page); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("Stripe page: %v %v", r, err)
	} else {
		r.Body.Close()
	}
	r, err = c.PostForm(page, url.Values{"action": {"pay"}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	loc := r.Header.Get("Location")
	if !strings.HasPrefix(loc, "http://"+base+"/_checkout/return/stripe/") {
		t.Fatalf("Stripe sent the customer to %q", loc)
	}
	final := site.follow(t, c, loc)
	if !strings.Contains(final, "<strong>paid</strong>: 25.00 USD") {
		t.Fatalf("customer did not land at the shop as paid:\n%s", final)
	}
	waitFor(t, 10*time.Second, "the order.paid callback", func() bool { return len(shop.Callbacks()) == 1 })

	var orders []struct {
		OrderID  string `json:"order_id"`
		PaidWith string `json:"paid_with"`
	}
	if code := adminGet(t, admin, "/checkout/orders?status=paid", &orders); code != 200 || len(orders) != 1 || orders[0].PaidWith != "stripe" {
		t.Fatalf("admin orders: %d %+v", code, orders)
	}
	for i := 0; i < 2; i++ { // the second is a harmless repeat
		if code, body := adminRefund(t, admin, orders[0].OrderID); code != http.StatusOK || !strings.Contains(body, `"status": "refunded"`) {
			t.Fatalf("refund #%d: %d\n%s", i+1, code, body)
		}
	}
	fake.WaitDeliveries() // charge.refunded reaches the site too, and changes nothing more
	waitFor(t, 10*time.Second, "the order.refunded callback", func() bool { return len(shop.Callbacks()) == 2 })
	var ds []struct{ Type string }
	if adminGet(t, admin, "/checkout/deliveries", &ds); len(ds) != 2 {
		t.Fatalf("%d callbacks queued, want 2", len(ds))
	}
	if types := site.callbackTypes(); strings.Join(types, ",") != "order.paid,order.refunded" {
		t.Fatalf("shop callbacks %v, want order.paid then one order.refunded", types)
	}
	refunds := 0
	for _, ev := range fake.Events() {
		if ev.Type == "refund.created" {
			refunds++
		}
	}
	if refunds != 1 {
		t.Fatalf("%d refunds at Stripe, want 1", refunds)
	}
	// An unpaid order cannot be refunded.
	r, err = c.PostForm("http://"+base+"/buy", url.Values{"product": {"mug"}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	var pending []struct {
		OrderID string `json:"order_id"`
	}
	adminGet(t, admin, "/checkout/orders?status=pending", &pending)
	if len(pending) != 1 {
		t.Fatalf("pending orders %+v", pending)
	}
	if code, body := adminRefund(t, admin, pending[0].OrderID); code != http.StatusConflict || !strings.Contains(body, "only a paid order") {
		t.Fatalf("refunding a pending order: %d %s", code, body)
	}
	if rej := fake.MockRejections(); len(rej) > 0 {
		t.Fatalf("stripe-mock rejected: %v", rej)
	}
}
