// Amounts in Stripe's units. Stripe takes integer amounts in a currency's
// "minor unit", which is ISO 4217's for most currencies but not all
// (docs.stripe.com/currencies): MGA is zero-decimal at Stripe though ISO
// gives it two places, ISK stays two-decimal at Stripe though only whole
// krónur may be charged, and three-decimal currencies must end in 0.
package stripe

import (
	"fmt"
	"math/big"
	"strings"

	"github.com/caddy-checkout/checkout/money"
)

// zeroDecimal are Stripe's zero-decimal currencies: the amount is sent
// without multiplying.
var zeroDecimal = map[string]bool{
	"BIF": true, "CLP": true, "DJF": true, "GNF": true, "JPY": true, "KMF": true,
	"KRW": true, "MGA": true, "PYG": true, "RWF": true, "UGX": true, "VND": true,
	"VUV": true, "XAF": true, "XOF": true, "XPF": true,
}

// wholeOnly are currencies Stripe keeps two-decimal in its API while
// accepting only whole units (amounts divisible by 100).
var wholeOnly = map[string]bool{"ISK": true}

// stripeExponent is the number of decimal places of Stripe's unit_amount
// for a currency.
func stripeExponent(currency string) (int, error) {
	switch {
	case zeroDecimal[currency]:
		return 0, nil
	case wholeOnly[currency]:
		return 2, nil
	}
	e, ok := money.Exponent(currency)
	if !ok {
		return 0, fmt.Errorf("currency %s is unknown", currency)
	}
	if e > 3 {
		return 0, fmt.Errorf("Stripe does not take payments in %s", currency)
	}
	return e, nil
}

// toStripe converts an amount to Stripe's integer unit_amount and its
// lower-case currency code. Amounts Stripe would refuse (fractions of a
// zero-decimal or whole-only currency, a three-decimal amount not ending
// in 0) are refused here with a message the operator can act on.
func toStripe(a money.Amount) (int64, string, error) {
	cur := a.Currency()
	exp, err := stripeExponent(cur)
	if err != nil {
		return 0, "", err
	}
	iso, _ := money.Exponent(cur)
	minor := new(big.Int).Set(a.Minor())
	shift := exp - iso
	ten := big.NewInt(10)
	for ; shift > 0; shift-- {
		minor.Mul(minor, ten)
	}
	for ; shift < 0; shift++ {
		var rem big.Int
		minor.QuoRem(minor, ten, &rem)
		if rem.Sign() != 0 {
			return 0, "", fmt.Errorf("Stripe takes %s in whole units only; %s has a fraction", cur, a)
		}
	}
	if wholeOnly[cur] && new(big.Int).Rem(minor, big.NewInt(100)).Sign() != 0 {
		return 0, "", fmt.Errorf("Stripe takes %s in whole units only; %s has a fraction", cur, a)
	}
	if exp == 3 && new(big.Int).Rem(minor, ten).Sign() != 0 {
		return 0, "", fmt.Errorf("Stripe takes %s amounts rounded to 0.01; %s is not", cur, a)
	}
	if !minor.IsInt64() || minor.Sign() <= 0 {
		return 0, "", fmt.Errorf("amount %s is out of Stripe's range", a)
	}
	return minor.Int64(), strings.ToLower(cur), nil
}

// fromStripe reads an amount Stripe reports (amount_total, amount) in its
// units back into an exact amount.
func fromStripe(units int64, currency string) (money.Amount, error) {
	cur := strings.ToUpper(currency)
	exp, err := stripeExponent(cur)
	if err != nil {
		return money.Amount{}, err
	}
	iso, _ := money.Exponent(cur)
	minor := big.NewInt(units)
	ten := big.NewInt(10)
	for shift := exp - iso; shift > 0; shift-- {
		var rem big.Int
		minor.QuoRem(minor, ten, &rem)
		if rem.Sign() != 0 {
			return money.Amount{}, fmt.Errorf("Stripe reported %d %s, a fraction of the currency's unit", units, currency)
		}
	}
	for shift := exp - iso; shift < 0; shift++ {
		minor.Mul(minor, ten)
	}
	return money.FromMinor(minor, cur)
}
