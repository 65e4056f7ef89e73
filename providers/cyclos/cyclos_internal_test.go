package cyclos

import (
	"strings"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/provider"
)

func TestParseCyclosAmount(t *testing.T) {
	for _, c := range []struct{ in, cur, want string }{
		{"75", "USD", "75.00"},
		{"75.00", "USD", "75.00"},
		{"75.000000", "USD", "75.00"},
		{"75.5", "USD", "75.50"},
		{"1200.00", "JPY", "1200"},
	} {
		got, err := parseAmount(c.in, c.cur)
		if err != nil || got.String() != c.want {
			t.Errorf("%s %s → %s, %v; want %s", c.in, c.cur, got, err, c.want)
		}
	}
	for _, bad := range []string{"75.001", "-75", "", "7e1", "1200.50 JPY"} {
		if _, err := parseAmount(bad, "USD"); err == nil {
			t.Errorf("%q read as an amount", bad)
		}
	}
}

func TestTemplates(t *testing.T) {
	p := provider.Payment{OrderID: "1001", Ref: "r1", Generation: 2, Amount: money.MustParse("75.00", "USD"),
		Description: "Mug", Email: "ann@example.com"}
	at := time.Date(2011, 7, 29, 13, 15, 0, 0, time.FixedZone("x", 3600))
	got := fill("INV-{order_id}/{attempt} {amount} {currency} {description} {email} {ref} {date}", p, at)
	if want := "INV-1001/2 75.00 USD Mug ann@example.com r1 2011-07-29T12:15:00Z"; got != want {
		t.Fatalf("fill = %q, want %q", got, want)
	}
	for _, bad := range []string{"{order}", "{order_id", "x {DATE}"} {
		if err := checkTemplate(bad); err == nil || !strings.Contains(err.Error(), bad[:2]) {
			t.Errorf("template %q: %v", bad, err)
		}
	}
	if err := checkTemplate("plain text and {order_id}"); err != nil {
		t.Fatal(err)
	}
}
