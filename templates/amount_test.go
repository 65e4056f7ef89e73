package templates_test

import (
	"math/big"
	"testing"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/templates"
)

func TestFormatAmount(t *testing.T) {
	big20, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	huge, err := money.FromMinor(big20, "USD")
	if err != nil {
		t.Fatal(err)
	}
	zero, err := money.FromMinor(new(big.Int), "USD")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		amount money.Amount
		locale string
		want   string
	}{
		{"en/usd", money.MustParse("75.00", "USD"), "en", "$75.00"},
		{"en/usd-cents", money.MustParse("0.5", "USD"), "en", "$0.50"},
		{"en/usd-thousands", money.MustParse("1234.56", "USD"), "en", "$1,234.56"},
		{"en/usd-millions", money.MustParse("1234567.89", "USD"), "en", "$1,234,567.89"},
		{"en/usd-exact-thousand", money.MustParse("100000", "USD"), "en", "$100,000.00"},
		{"en/usd-huge", huge, "en", "$1,234,567,890,123,456,789,012,345,678.90"},
		{"en/usd-zero-received", zero, "en", "$0.00"},
		{"en/eur", money.MustParse("75", "EUR"), "en", "€75.00"},
		{"en/gbp", money.MustParse("9.99", "GBP"), "en", "£9.99"},
		{"en/jpy", money.MustParse("1200", "JPY"), "en", "¥1,200"},
		{"en/jpy-small", money.MustParse("980", "JPY"), "en", "¥980"},
		{"en/0xbtc", money.MustParse("75", "0xBTC"), "en", "75.00000000 0xBTC"},
		{"en/0xbtc-thousands", money.MustParse("12345.5", "0xBTC"), "en", "12,345.50000000 0xBTC"},
		{"en/0xbtc-tiny", money.MustParse("0.00000001", "0xBTC"), "en", "0.00000001 0xBTC"},
		{"en/unlisted-iso", money.MustParse("1500.5", "CHF"), "en", "1,500.50 CHF"},
		{"en/three-decimals", money.MustParse("1.5", "KWD"), "en", "1.500 KWD"},
		{"en-US/usd", money.MustParse("75.00", "USD"), "en-US", "$75.00"},
		{"unknown-locale/usd", money.MustParse("75.00", "USD"), "de", "$75.00"},

		{"ja/jpy", money.MustParse("1200", "JPY"), "ja", "1,200円"},
		{"ja/jpy-big", money.MustParse("1234567", "JPY"), "ja", "1,234,567円"},
		{"ja-JP/jpy", money.MustParse("500", "JPY"), "ja-JP", "500円"},
		{"ja/usd", money.MustParse("75.00", "USD"), "ja", "$75.00"},
		{"ja/usd-thousands", money.MustParse("1234.56", "USD"), "ja", "$1,234.56"},
		{"ja/eur", money.MustParse("75", "EUR"), "ja", "€75.00"},
		{"ja/0xbtc", money.MustParse("75", "0xBTC"), "ja", "75.00000000 0xBTC"},
		{"ja/unlisted-iso", money.MustParse("20", "CHF"), "ja", "20.00 CHF"},

		{"invalid/zero-value", money.Amount{}, "en", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := templates.FormatAmount(tc.amount, tc.locale); got != tc.want {
				t.Errorf("FormatAmount(%s %s, %q) = %q, want %q", tc.amount, tc.amount.Currency(), tc.locale, got, tc.want)
			}
		})
	}
}
