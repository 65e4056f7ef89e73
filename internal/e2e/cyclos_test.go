package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/internal/cyclostest"
)

// TestCyclosThroughCaddy runs a Caddy configured from a Caddyfile whose
// cyclos block points at the fake Cyclos: the customer buys at the shop,
// approves the ticket on Cyclos's page, and Cyclos calls the webhook while
// it redirects the customer to the success URL. The order is paid once,
// the shop gets one callback and the customer lands at the shop as paid.
func TestCyclosThroughCaddy(t *testing.T) {
	fake := cyclostest.New(t, cyclostest.WithCustomFields("invoice_nr"))
	fake.AddUser("alice", "alice-pw", "100.00")
	t.Setenv("E2E_CYCLOS_TOKEN", fake.AccessClientToken())
	site := startProviderSite(t, cyclosBlock(fake.URL, "{env.E2E_CYCLOS_TOKEN}", "custom_value invoice_nr {order_id}"))
	base, admin, shop := site.base, site.admin, site.shop

	for round := 1; round <= 3; round++ {
		c := noRedirectClient()
		r, err := c.PostForm("http://"+base+"/buy", url.Values{"product": {"mug"}})
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		page := r.Header.Get("Location")
		if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(page, fake.URL+"/") {
			t.Fatalf("buy: %d %q, want 303 to Cyclos", r.StatusCode, page)
		}
		r, err = c.PostForm(page, url.Values{"username": {"alice"}, "password": {"alice-pw"}, "action": {"approve"}})
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		loc := r.Header.Get("Location")
		if !strings.HasPrefix(loc, "http://"+base+"/_checkout/return/cyclos/") {
			t.Fatalf("Cyclos sent the customer to %q", loc)
		}
		final := site.follow(t, c, loc)
		if !strings.Contains(final, "<strong>paid</strong>: 12.50 USD") {
			t.Fatalf("round %d: customer did not land at the shop as paid:\n%s", round, final)
		}
		fake.WaitWebhooks()
		waitFor(t, 10*time.Second, "the callbacks", func() bool { return len(shop.Callbacks()) == round })
	}
	if n := fake.Payments(); n != 3 {
		t.Fatalf("%d payments at Cyclos for 3 orders", n)
	}
	var ds []struct{ Type string }
	if adminGet(t, admin, "/checkout/deliveries", &ds); len(ds) != 3 {
		t.Fatalf("%d callbacks queued for 3 orders", len(ds))
	}
	for _, typ := range site.callbackTypes() {
		if typ != "order.paid" {
			t.Fatalf("callback %s", typ)
		}
	}
	for _, tk := range fake.Tickets() {
		if tk.CustomValues["invoice_nr"] == "" {
			t.Fatalf("ticket %s without the invoice number", tk.Number)
		}
	}
}
