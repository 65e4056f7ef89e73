package stripe

import (
	"strings"
	"testing"

	"github.com/caddy-checkout/checkout/money"
)

func TestToStripeUnits(t *testing.T) {
	cases := []struct {
		amount, currency string
		units            int64
		code             string
	}{
		{"75.00", "USD", 7500, "usd"},
		{"0.50", "EUR", 50, "eur"},
		{"1200", "JPY", 1200, "jpy"},   // zero-decimal: not multiplied
		{"50000", "KRW", 50000, "krw"}, // zero-decimal
		{"3000", "UGX", 3000, "ugx"},
		{"10", "MGA", 10, "mga"},      // zero-decimal at Stripe, two places in ISO 4217
		{"40", "ISK", 4000, "isk"},    // two-decimal at Stripe, whole krónur only
		{"5.120", "KWD", 5120, "kwd"}, // three-decimal, last digit 0
		{"1234.5", "BHD", 1234500, "bhd"},
	}
	for _, c := range cases {
		units, code, err := toStripe(money.MustParse(c.amount, c.currency))
		if err != nil || units != c.units || code != c.code {
			t.Errorf("%s %s → %d %s, %v; want %d %s", c.amount, c.currency, units, code, err, c.units, c.code)
			continue
		}
		back, err := fromStripe(units, code)
		if err != nil || !back.Equal(money.MustParse(c.amount, c.currency)) {
			t.Errorf("%d %s read back as %s, %v; want %s %s", units, code, back, err, c.amount, c.currency)
		}
	}
}

func TestToStripeRefusesWhatStripeRefuses(t *testing.T) {
	cases := []struct{ amount, currency, want string }{
		{"10.50", "MGA", "whole units"},
		{"5.124", "KWD", "rounded to 0.01"},
		{"100000000000000000000.00", "USD", "out of Stripe's range"},
		{"1.2345", "CLF", "does not take"},
	}
	for _, c := range cases {
		_, _, err := toStripe(money.MustParse(c.amount, c.currency))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: err %v, want one saying %q", c.amount, c.currency, err, c.want)
		}
	}
	if _, err := fromStripe(4010, "isk"); err == nil {
		t.Error("Stripe reporting fractional ISK was read without error")
	}
	if _, err := fromStripe(100, "xyz"); err == nil {
		t.Error("an unknown currency from Stripe was read without error")
	}
}
