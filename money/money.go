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
// units (cents for USD, yen for JPY, 10^-8 for 0xBTC) together with their
// number of decimal places, so that an amount reads and writes itself
// without asking any registry. The zero Amount is invalid; use Parse or
// FromMinor (or a Currencies' methods for tokens).
type Amount struct {
	currency string
	minor    *big.Int // never modified after construction
	exp      int      // decimal places of a minor unit
}

// ErrUnknownCurrency is returned for a currency code without known minor units.
var ErrUnknownCurrency = errors.New("unknown currency")

// builtin are the currencies every Currencies knows: ISO 4217, and
// 0xBitcoin (the erc20 provider's default token). Read-only after init.
var builtin = map[string]int{}

func init() {
	for _, c := range strings.Fields(iso4217two) {
		builtin[c] = 2
	}
	for _, c := range strings.Fields(iso4217zero) {
		builtin[c] = 0
	}
	for _, c := range strings.Fields(iso4217three) {
		builtin[c] = 3
	}
	builtin["CLF"] = 4
	builtin["UYW"] = 4
	builtin["0xBTC"] = 8
}

// isISO reports whether code is an ISO 4217 code, whose decimals are the
// standard's and cannot be registered otherwise.
func isISO(code string) bool {
	_, ok := builtin[code]
	return ok && code != "0xBTC"
}

// Currencies is a registry of the currencies one site takes: the built-in
// ones plus the tokens its providers register (an ERC-20 token's symbol
// and decimals). Each site has its own, made anew with each config, so a
// reload may change a token's decimals and two sites may differ. The zero
// value knows the built-in currencies only. Safe for concurrent use.
type Currencies struct {
	mu     sync.RWMutex
	tokens map[string]int
}

// Register makes a token symbol known with the given number of decimals.
// An ISO 4217 code with other decimals than the standard's, or a symbol
// this registry already has with other decimals, is refused.
func (c *Currencies) Register(symbol string, decimals int) error {
	if c == nil {
		return fmt.Errorf("currency %s: no registry to register it in", symbol)
	}
	if !validCode(symbol) {
		return fmt.Errorf("currency symbol %q: use 2-12 letters and digits", symbol)
	}
	if decimals < 0 || decimals > 36 {
		return fmt.Errorf("currency %s: decimals %d out of range 0-36", symbol, decimals)
	}
	if d, ok := builtin[symbol]; ok && isISO(symbol) && d != decimals {
		return fmt.Errorf("currency %s has %d decimals (ISO 4217), not %d", symbol, d, decimals)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.tokens[symbol]; ok && d != decimals {
		return fmt.Errorf("currency %s already has %d decimals here, not %d", symbol, d, decimals)
	}
	if c.tokens == nil {
		c.tokens = map[string]int{}
	}
	c.tokens[symbol] = decimals
	return nil
}

// Exponent reports the number of minor-unit digits of a currency here.
func (c *Currencies) Exponent(currency string) (int, bool) {
	if c != nil {
		c.mu.RLock()
		e, ok := c.tokens[currency]
		c.mu.RUnlock()
		if ok {
			return e, true
		}
	}
	e, ok := builtin[currency]
	return e, ok
}

// Parse is the package's Parse with this registry's currencies.
func (c *Currencies) Parse(s, currency string) (Amount, error) {
	exp, ok := c.Exponent(currency)
	if !ok {
		return Amount{}, fmt.Errorf("%w %q", ErrUnknownCurrency, currency)
	}
	return parse(s, currency, exp)
}

// FromMinor is the package's FromMinor with this registry's currencies.
func (c *Currencies) FromMinor(minor *big.Int, currency string) (Amount, error) {
	exp, ok := c.Exponent(currency)
	if !ok {
		return Amount{}, fmt.Errorf("%w %q", ErrUnknownCurrency, currency)
	}
	return fromMinor(minor, currency, exp)
}

// Exponent reports the number of minor-unit digits of a built-in currency
// (ISO 4217, 0xBTC).
func Exponent(currency string) (int, bool) {
	var none *Currencies
	return none.Exponent(currency)
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
	var none *Currencies
	return none.Parse(s, currency)
}

// ParseLike is Parse in the currency and decimal places of like (an
// order's amount), whatever the registry of currencies says.
func ParseLike(s string, like Amount) (Amount, error) {
	if !like.Valid() {
		return Amount{}, fmt.Errorf("amount %q: no currency to read it in", s)
	}
	return parse(s, like.currency, like.exp)
}

func parse(s, currency string, exp int) (Amount, error) {
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
	a := Amount{currency: currency, minor: n, exp: exp}
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
	var none *Currencies
	return none.FromMinor(minor, currency)
}

func fromMinor(minor *big.Int, currency string, exp int) (Amount, error) {
	if minor == nil || minor.Sign() < 0 {
		return Amount{}, fmt.Errorf("amount in minor units must not be negative")
	}
	return Amount{currency: currency, minor: new(big.Int).Set(minor), exp: exp}, nil
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
	exp := a.exp
	s := a.minor.String()
	if exp == 0 {
		return s
	}
	if len(s) <= exp {
		s = strings.Repeat("0", exp-len(s)+1) + s
	}
	return s[:len(s)-exp] + "." + s[len(s)-exp:]
}

// Exp is the number of decimal places of a minor unit.
func (a Amount) Exp() int { return a.exp }

// scaled returns a's and b's minor units at the larger of their decimal
// places, so that amounts of a token whose decimals changed between
// configs still compare by value.
func scaled(a, b Amount) (x, y *big.Int, exp int) {
	x, y, exp = a.Minor(), b.Minor(), max(a.exp, b.exp)
	if d := exp - a.exp; d > 0 {
		x.Mul(x, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d)), nil))
	}
	if d := exp - b.exp; d > 0 {
		y.Mul(y, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d)), nil))
	}
	return x, y, exp
}

// Equal reports whether a and b are the same amount of the same currency.
func (a Amount) Equal(b Amount) bool {
	if a.currency != b.currency || a.minor == nil || b.minor == nil {
		return false
	}
	x, y, _ := scaled(a, b)
	return x.Cmp(y) == 0
}

// Cmp compares two amounts of the same currency: -1, 0 or +1. It panics on
// different currencies, which is always a programming error.
func (a Amount) Cmp(b Amount) int {
	if a.currency != b.currency {
		panic("money: comparing " + a.currency + " with " + b.currency)
	}
	x, y, _ := scaled(a, b)
	return x.Cmp(y)
}

// Add returns a+b; both must be of the same currency.
func (a Amount) Add(b Amount) Amount {
	if a.currency != b.currency {
		panic("money: adding " + a.currency + " to " + b.currency)
	}
	x, y, exp := scaled(a, b)
	return Amount{currency: a.currency, minor: x.Add(x, y), exp: exp}
}

// Sub returns a-b; both must be of the same currency, and b at most a.
func (a Amount) Sub(b Amount) Amount {
	if a.currency != b.currency {
		panic("money: subtracting " + b.currency + " from " + a.currency)
	}
	x, y, exp := scaled(a, b)
	if x.Cmp(y) < 0 {
		panic("money: subtracting more than there is")
	}
	return Amount{currency: a.currency, minor: x.Sub(x, y), exp: exp}
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
	// A stored amount has exactly its currency's decimal places (String
	// writes them all), so it tells its own exponent: a token's decimals
	// need no registry to read it back. An ISO code must have the
	// standard's.
	whole, frac, _ := strings.Cut(w.Amount, ".")
	if whole == "" || !digits(whole) || !digits(frac) || !validCode(w.Currency) {
		return fmt.Errorf("stored amount %q %s is malformed", w.Amount, w.Currency)
	}
	exp := len(frac)
	if isISO(w.Currency) && builtin[w.Currency] != exp {
		return fmt.Errorf("stored amount %q %s is malformed: %s has %d decimal places", w.Amount, w.Currency, w.Currency, builtin[w.Currency])
	}
	n, _ := new(big.Int).SetString(whole+frac, 10)
	*a = Amount{currency: w.Currency, minor: n, exp: exp}
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
