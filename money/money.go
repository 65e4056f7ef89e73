// Package money is exact decimal amounts with a currency: the only way
// caddy-checkout represents a price. Floats never appear.
package money

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
)

// Amount is an exact amount of one currency, held in the currency's minor
// units (cents for USD, yen for JPY, 10^-8 for 0xBTC). The zero Amount is
// invalid; use Parse or FromMinor.
type Amount struct {
	currency string
	minor    *big.Int // never modified after construction
}

// ErrUnknownCurrency is returned for a currency code without known minor units.
var ErrUnknownCurrency = errors.New("unknown currency")

var (
	mu        sync.RWMutex
	exponents = map[string]int{}
)

func init() {
	for _, c := range strings.Fields(iso4217two) {
		exponents[c] = 2
	}
	for _, c := range strings.Fields(iso4217zero) {
		exponents[c] = 0
	}
	for _, c := range strings.Fields(iso4217three) {
		exponents[c] = 3
	}
	exponents["CLF"] = 4
	exponents["UYW"] = 4
	exponents["0xBTC"] = 8
}

// Register makes a token symbol (such as an ERC-20 token's) known with the
// given number of decimals. Registering an ISO 4217 code with other
// decimals than the standard's is refused.
func Register(symbol string, decimals int) error {
	if !validCode(symbol) {
		return fmt.Errorf("currency symbol %q: use 2-12 letters and digits", symbol)
	}
	if decimals < 0 || decimals > 36 {
		return fmt.Errorf("currency %s: decimals %d out of range 0-36", symbol, decimals)
	}
	mu.Lock()
	defer mu.Unlock()
	if d, ok := exponents[symbol]; ok && d != decimals {
		return fmt.Errorf("currency %s already has %d decimals, not %d", symbol, d, decimals)
	}
	exponents[symbol] = decimals
	return nil
}

// Exponent reports the number of minor-unit digits of a currency.
func Exponent(currency string) (int, bool) {
	mu.RLock()
	defer mu.RUnlock()
	e, ok := exponents[currency]
	return e, ok
}

func validCode(s string) bool {
	if len(s) < 2 || len(s) > 12 {
		return false
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}

// Parse reads a decimal string in major units ("75.00", "1200", "0.5") of
// the currency. It refuses signs, exponents, separators, more fractional
// digits than the currency has, and zero. Fewer digits are padded: "0.5"
// USD is 50 cents.
func Parse(s, currency string) (Amount, error) {
	exp, ok := Exponent(currency)
	if !ok {
		return Amount{}, fmt.Errorf("%w %q", ErrUnknownCurrency, currency)
	}
	if s == "" || len(s) > 80 {
		return Amount{}, fmt.Errorf("amount %q: want a decimal number such as 75.00", s)
	}
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || (dot && frac == "") || !digits(whole) || !digits(frac) {
		return Amount{}, fmt.Errorf("amount %q: want a decimal number such as 75.00", s)
	}
	if len(frac) > exp {
		return Amount{}, fmt.Errorf("amount %q: %s has %d decimal places", s, currency, exp)
	}
	n, _ := new(big.Int).SetString(whole+frac+strings.Repeat("0", exp-len(frac)), 10)
	if n.Sign() <= 0 {
		return Amount{}, fmt.Errorf("amount %q: must be more than zero", s)
	}
	a := Amount{currency: currency, minor: n}
	// The limit holds for the canonical form too, so that whatever Parse
	// accepts, Parse(a.String()) accepts as well.
	if len(a.String()) > 80 {
		return Amount{}, fmt.Errorf("amount %q: too many digits for %s (at most 80 characters with %d decimal places)", s, currency, exp)
	}
	return a, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FromMinor makes an Amount from a count of minor units. Zero is allowed
// here (a received total may be zero); negative is not.
func FromMinor(minor *big.Int, currency string) (Amount, error) {
	if _, ok := Exponent(currency); !ok {
		return Amount{}, fmt.Errorf("%w %q", ErrUnknownCurrency, currency)
	}
	if minor == nil || minor.Sign() < 0 {
		return Amount{}, fmt.Errorf("amount in minor units must not be negative")
	}
	return Amount{currency: currency, minor: new(big.Int).Set(minor)}, nil
}

// MustParse is Parse for constants in tests and examples; it panics on error.
func MustParse(s, currency string) Amount {
	a, err := Parse(s, currency)
	if err != nil {
		panic(err)
	}
	return a
}

// IsZero reports whether a is the zero value (no currency) or zero units.
func (a Amount) IsZero() bool { return a.minor == nil || a.minor.Sign() == 0 }

// Valid reports whether a was made by Parse or FromMinor.
func (a Amount) Valid() bool { return a.minor != nil && a.currency != "" }

// Currency is the currency code or token symbol.
func (a Amount) Currency() string { return a.currency }

// Minor returns a copy of the amount in minor units.
func (a Amount) Minor() *big.Int {
	if a.minor == nil {
		return new(big.Int)
	}
	return new(big.Int).Set(a.minor)
}

// MinorInt64 returns the minor units when they fit in an int64.
func (a Amount) MinorInt64() (int64, bool) {
	if a.minor == nil || !a.minor.IsInt64() {
		return 0, false
	}
	return a.minor.Int64(), true
}

// String is the amount in major units with exactly the currency's decimal
// places, without the currency: "75.00", "1200", "0.50000000".
func (a Amount) String() string {
	if a.minor == nil {
		return ""
	}
	exp, _ := Exponent(a.currency)
	s := a.minor.String()
	if exp == 0 {
		return s
	}
	if len(s) <= exp {
		s = strings.Repeat("0", exp-len(s)+1) + s
	}
	return s[:len(s)-exp] + "." + s[len(s)-exp:]
}

// Equal reports whether a and b are the same amount of the same currency.
func (a Amount) Equal(b Amount) bool {
	return a.currency == b.currency && a.minor != nil && b.minor != nil && a.minor.Cmp(b.minor) == 0
}

// Cmp compares two amounts of the same currency: -1, 0 or +1. It panics on
// different currencies, which is always a programming error.
func (a Amount) Cmp(b Amount) int {
	if a.currency != b.currency {
		panic("money: comparing " + a.currency + " with " + b.currency)
	}
	return a.Minor().Cmp(b.Minor())
}

// Add returns a+b; both must be of the same currency.
func (a Amount) Add(b Amount) Amount {
	if a.currency != b.currency {
		panic("money: adding " + a.currency + " to " + b.currency)
	}
	return Amount{currency: a.currency, minor: new(big.Int).Add(a.Minor(), b.Minor())}
}

type wire struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

// MarshalJSON writes {"amount":"75.00","currency":"USD"}.
func (a Amount) MarshalJSON() ([]byte, error) {
	if !a.Valid() {
		return []byte("null"), nil
	}
	return json.Marshal(wire{a.String(), a.currency})
}

// UnmarshalJSON reads what MarshalJSON writes. Zero is accepted here
// because stored received totals may be zero.
func (a *Amount) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*a = Amount{}
		return nil
	}
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	exp, ok := Exponent(w.Currency)
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownCurrency, w.Currency)
	}
	whole, frac, _ := strings.Cut(w.Amount, ".")
	if whole == "" || !digits(whole) || !digits(frac) || len(frac) > exp {
		return fmt.Errorf("stored amount %q %s is malformed", w.Amount, w.Currency)
	}
	n, _ := new(big.Int).SetString(whole+frac+strings.Repeat("0", exp-len(frac)), 10)
	*a = Amount{currency: w.Currency, minor: n}
	return nil
}

// ISO 4217 active codes by number of minor units (the standard's list
// one, 2024 edition).
const (
	iso4217zero  = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
	iso4217three = "BHD IQD JOD KWD LYD OMR TND"
	iso4217two   = `AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL
BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB
EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD
KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO
NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD
SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER
ZAR ZMW ZWG ZWL`
)
