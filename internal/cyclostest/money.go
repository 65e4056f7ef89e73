// Amounts in the fake's single currency, held as integer cents so balances
// are exact: Cyclos amounts are decimal strings ("format: number") and the
// currency has 2 decimal digits.
package cyclostest

import (
	"fmt"
	"strconv"
	"strings"
)

// The currency every account of the fake holds.
const (
	currencyName     = "Currents"
	currencyInternal = "currents"
	currencySymbol   = "C$"
	currencyDecimals = 2
)

// maxIntegerDigits bounds amounts well inside int64 cents.
const maxIntegerDigits = 13

// parseAmount reads a non-negative decimal such as "75", "75.5" or "75.50"
// into cents. It returns why s is not an amount, or "". Digits past the
// second decimal are refused unless they are zeros, since the currency
// cannot hold them.
func parseAmount(s string) (int64, string) {
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || !allDigits(whole) || (strings.Contains(s, ".") && (frac == "" || !allDigits(frac))) {
		return 0, "is not a valid number"
	}
	if len(strings.TrimLeft(whole, "0")) > maxIntegerDigits {
		return 0, "is too large"
	}
	if len(frac) > currencyDecimals {
		if strings.Trim(frac[currencyDecimals:], "0") != "" {
			return 0, fmt.Sprintf("cannot have more than %d decimal digits", currencyDecimals)
		}
		frac = frac[:currencyDecimals]
	}
	frac += strings.Repeat("0", currencyDecimals-len(frac))
	w, _ := strconv.ParseInt(whole, 10, 64)
	f, _ := strconv.ParseInt(frac, 10, 64)
	return w*100 + f, ""
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// formatCents writes cents as Cyclos writes amounts: "75.00".
func formatCents(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}
