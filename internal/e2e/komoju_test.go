package e2e

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/internal/komojutest"
)

// TestKomojuThroughCaddy runs a Caddy configured from a Caddyfile whose
// komoju block points at the fake KOMOJU: a card payment lands at the shop
// as paid, a konbini slip holds its order until it is paid at the store, a
// return from a foreign Referer is logged and counted, and the admin API
// refunds the card payment and refuses the konbini one with the reason.
func TestKomojuThroughCaddy(t *testing.T) {
	fake := komojutest.New(t)
	site := komojuSite(t, fake)
	base, admin, shop := site.base, site.admin, site.shop
	c := noRedirectClient()

	buy := func() string {
		t.Helper()
		r, err := c.PostForm("http://"+base+"/buy", url.Values{"product": {"tea"}})
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		loc := r.Header.Get("Location")
		if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, fake.URL+"/sessions/") {
			t.Fatalf("buy: %d %q, want 303 to a KOMOJU session", r.StatusCode, loc)
		}
		return loc
	}
	press := func(page, action string) string {
		t.Helper()
		r, err := c.PostForm(page, url.Values{"action": {action}, "card": {"4111111111111111"}})
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		loc := r.Header.Get("Location")
		if !strings.HasPrefix(loc, "http://"+base+"/_checkout/return/komoju/") {
			t.Fatalf("KOMOJU sent the customer to %q", loc)
		}
		return loc
	}

	card := buy()
	back := press(card, "credit_card")
	req, _ := http.NewRequest(http.MethodGet, back, nil)
	req.Header.Set("Referer", "https://elsewhere.example/page?secret=x")
	r, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if final := site.follow(t, c, r.Header.Get("Location")); !strings.Contains(final, "<strong>paid</strong>: 1800 JPY") {
		t.Fatalf("customer did not land at the shop as paid:\n%s", final)
	}

	slip := buy()
	page := site.follow(t, c, press(slip, "konbini"))
	if !strings.Contains(page, "Confirmation code") || !strings.Contains(page, "7-Eleven") {
		t.Fatalf("the konbini slip page:\n%s", page)
	}
	sessionID := strings.TrimPrefix(slip, fake.URL+"/sessions/")
	if err := fake.Capture(fake.PaymentOf(sessionID)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "order.paid, order.pending, order.paid callbacks", func() bool { return len(shop.Callbacks()) == 3 })

	var orders []struct {
		OrderID     string `json:"order_id"`
		Transaction string `json:"transaction"`
	}
	if code := adminGet(t, admin, "/checkout/orders?status=paid", &orders); code != 200 || len(orders) != 2 {
		t.Fatalf("admin orders: %d %+v", code, orders)
	}
	refunded, refused := 0, 0
	for _, o := range orders {
		code, body := adminRefund(t, admin, o.OrderID)
		switch {
		case o.Transaction == fake.PaymentOf(sessionID) && code == http.StatusConflict && strings.Contains(body, "konbini") && strings.Contains(body, "bank account"):
			refused++
		case code == http.StatusOK && strings.Contains(body, `"status": "refunded"`):
			refunded++
		default:
			t.Fatalf("refund of %s: %d %s", o.OrderID, code, body)
		}
	}
	if refunded != 1 || refused != 1 {
		t.Fatalf("%d refunded and %d refused, want one of each", refunded, refused)
	}
	waitFor(t, 10*time.Second, "the order.refunded callback", func() bool { return len(shop.Callbacks()) == 4 })
	if types := site.callbackTypes(); strings.Join(types, ",") != "order.paid,order.pending,order.paid,order.refunded" {
		t.Fatalf("shop callbacks %v", types)
	}

	mr, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mr.Body)
	mr.Body.Close()
	if !strings.Contains(string(metrics), `caddy_checkout_foreign_referers_total{action="logged",provider="komoju",site="default"} 1`) {
		t.Fatalf("the foreign referer was not counted:\n%s", grepLines(string(metrics), "caddy_checkout_"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
