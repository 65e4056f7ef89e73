package templates

import (
	"strings"

	"github.com/caddy-checkout/checkout/money"
)

// Symbols written before the number, as CLDR has them for each language.
// Currencies not listed, and tokens, are written "1,234.00 CHF".
var (
	enSymbols = map[string]string{
		"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$",
		"NZD": "NZ$", "HKD": "HK$", "CNY": "CN¥", "INR": "₹", "KRW": "₩", "ILS": "₪",
		"BRL": "R$", "MXN": "MX$", "TWD": "NT$", "VND": "₫",
	}
	jaSymbols = map[string]string{
		"USD": "$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$", "NZD": "NZ$",
		"HKD": "HK$", "INR": "₹", "KRW": "₩", "ILS": "₪", "BRL": "R$", "MXN": "MX$",
		"TWD": "NT$", "VND": "₫",
	}
)

// FormatAmount writes an amount for a customer reading locale: "$1,234.56",
// "¥1,200" and "75.00000000 0xBTC" in English; "1,200円" and "$75.00" in
// Japanese. The digits are exactly those of a.String(), grouped by
// thousands. Locales other than ja (and ja-*) use the English rules. The
// zero Amount gives "".
func FormatAmount(a money.Amount, locale string) string {
	if !a.Valid() {
		return ""
	}
	num := groupThousands(a.String())
	cur := a.Currency()
	symbols := enSymbols
	if isJapanese(locale) {
		if cur == "JPY" {
			return num + "円"
		}
		symbols = jaSymbols
	}
	if sym, ok := symbols[cur]; ok {
		return sym + num
	}
	return num + " " + cur
}

func isJapanese(locale string) bool {
	l := strings.ToLower(locale)
	return l == "ja" || strings.HasPrefix(l, "ja-") || strings.HasPrefix(l, "ja_")
}

// groupThousands puts commas into the whole part of a decimal string:
// "1234567.50" → "1,234,567.50".
func groupThousands(s string) string {
	whole, frac, dot := strings.Cut(s, ".")
	if len(whole) <= 3 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(whole)/3)
	first := len(whole) % 3
	if first == 0 {
		first = 3
	}
	b.WriteString(whole[:first])
	for i := first; i < len(whole); i += 3 {
		b.WriteByte(',')
		b.WriteString(whole[i : i+3])
	}
	if dot {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}
