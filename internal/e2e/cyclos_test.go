package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-checkout/checkout/internal/cyclostest"
	"github.com/caddy-checkout/checkout/internal/demoshop"
	"github.com/caddy-checkout/checkout/sign"
)

// TestCyclosThroughCaddy runs a Caddy configured from a Caddyfile whose
// cyclos block points at the fake Cyclos: the customer buys at the shop,
// approves the ticket on Cyclos's page, and Cyclos calls the webhook while
// it redirects the customer to the success URL. The order is paid once,
// the shop gets one callback and the customer lands at the shop as paid.
func TestCyclosThroughCaddy(t *testing.T) {
	fake := cyclostest.New(t, cyclostest.WithCustomFields("invoice_nr"))
	fake.AddUser("alice", "alice-pw", "100.00")
	secret := sign.NewSecret()
	shop, err := demoshop.New(secret)
	if err != nil {
		t.Fatal(err)
	}
	shopSrv := httptest.NewServer(shop)
	t.Cleanup(shopSrv.Close)
	base := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	t.Setenv("E2E_CYCLOS_TOKEN", fake.AccessClientToken())
	cf := caddyfile(filepath.Join(t.TempDir(), "checkout.db"), admin, base, secret, shopSrv.URL+"/payments/webhook", strings.TrimPrefix(shopSrv.URL, "http://"))
	cf = strings.Replace(cf, "\t\tsandbox\n", "\t\tcyclos {\n"+
		"\t\t\turl "+fake.URL+"\n"+
		"\t\t\taccess_client_token {env.E2E_CYCLOS_TOKEN}\n"+
		"\t\t\tcustom_value invoice_nr {order_id}\n"+
		"\t\t}\n", 1)
	loadCaddy(t, cf)
	t.Cleanup(func() { _ = caddy.Stop() })

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
		var final string
		for i := 0; i < 3 && loc != ""; i++ {
			if strings.HasPrefix(loc, "/") {
				loc = "http://" + base + loc
			}
			r, err := c.Get(loc)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			final, loc = string(b), r.Header.Get("Location")
		}
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
	for _, cb := range shop.Callbacks() {
		var b struct{ Type string }
		_ = json.Unmarshal([]byte(cb.Body), &b)
		if b.Type != "order.paid" {
			t.Fatalf("callback %s", b.Type)
		}
	}
	for _, tk := range fake.Tickets() {
		if tk.CustomValues["invoice_nr"] == "" {
			t.Fatalf("ticket %s without the invoice number", tk.Number)
		}
	}
}
