package money_test

import (
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/caddy-checkout/checkout/money"
)

func TestParseValid(t *testing.T) {
	for _, tc := range []struct {
		name, in, currency string
		minor              string // expected minor units
		str                string // expected String()
	}{
		{"usd/full", "75.00", "USD", "7500", "75.00"},
		{"usd/whole", "75", "USD", "7500", "75.00"},
		{"usd/short-fraction", "0.5", "USD", "50", "0.50"},
		{"usd/one-cent", "0.01", "USD", "1", "0.01"},
		{"jpy/whole", "1200", "JPY", "1200", "1200"},
		{"0xbtc/one-unit", "0.00000001", "0xBTC", "1", "0.00000001"},
		{"0xbtc/whole", "3", "0xBTC", "300000000", "3.00000000"},
		{"kwd/three-places", "1.234", "KWD", "1234", "1.234"},
		{"clf/four-places", "1.2345", "CLF", "12345", "1.2345"},
		{"usd/80-chars", strings.Repeat("9", 77) + ".99", "USD", strings.Repeat("9", 79), strings.Repeat("9", 77) + ".99"},
		{"jpy/80-digits", strings.Repeat("9", 80), "JPY", strings.Repeat("9", 80), strings.Repeat("9", 80)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := money.Parse(tc.in, tc.currency)
			if err != nil {
				t.Fatalf("Parse(%q, %s): %v", tc.in, tc.currency, err)
			}
			if !a.Valid() || a.IsZero() {
				t.Errorf("Parse(%q): Valid=%v IsZero=%v, want valid and non-zero", tc.in, a.Valid(), a.IsZero())
			}
			if a.Currency() != tc.currency {
				t.Errorf("Currency() = %q, want %q", a.Currency(), tc.currency)
			}
			if got := a.Minor().String(); got != tc.minor {
				t.Errorf("Minor() = %s, want %s", got, tc.minor)
			}
			if got := a.String(); got != tc.str {
				t.Errorf("String() = %q, want %q", got, tc.str)
			}
		})
	}
}

func TestParseRefused(t *testing.T) {
	for _, tc := range []struct {
		name, in, currency string
		want               string // part of the error message
	}{
		{"empty", "", "USD", "want a decimal number"},
		{"negative", "-1", "USD", "want a decimal number"},
		{"plus-sign", "+1", "USD", "want a decimal number"},
		{"exponent", "1e3", "USD", "want a decimal number"},
		{"comma-decimal", "1,00", "USD", "want a decimal number"},
		{"thousands-separator", "1,000.00", "USD", "want a decimal number"},
		{"trailing-dot", "1.", "USD", "want a decimal number"},
		{"leading-dot", ".5", "USD", "want a decimal number"},
		{"leading-space", " 1", "USD", "want a decimal number"},
		{"trailing-space", "1 ", "USD", "want a decimal number"},
		{"two-dots", "1.0.0", "USD", "want a decimal number"},
		{"hex", "0x10", "USD", "want a decimal number"},
		{"underscore", "1_000", "USD", "want a decimal number"},
		{"non-ascii-digit", "１", "USD", "want a decimal number"},
		{"too-many-places-usd", "1.001", "USD", "USD has 2 decimal places"},
		{"fraction-on-jpy", "1.5", "JPY", "JPY has 0 decimal places"},
		{"zero", "0", "USD", "more than zero"},
		{"zero-with-places", "0.00", "USD", "more than zero"},
		{"zero-many-digits", "000", "JPY", "more than zero"},
		{"unknown-currency", "1.00", "XXX", "unknown currency"},
		{"lowercase-currency", "1.00", "usd", "unknown currency"},
		{"empty-currency", "1.00", "", "unknown currency"},
		{"81-digits", strings.Repeat("1", 81), "JPY", "want a decimal number"},
		// 80 characters in, but 83 once written with USD's two places:
		// String of such an amount could not be parsed back.
		{"80-digits-usd", strings.Repeat("9", 80), "USD", "too many digits"},
		{"78-digits-0xbtc", strings.Repeat("9", 78), "0xBTC", "too many digits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := money.Parse(tc.in, tc.currency)
			if err == nil {
				t.Fatalf("Parse(%q, %q) = %s, want an error", tc.in, tc.currency, a)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse(%q, %q) error %q does not say %q", tc.in, tc.currency, err, tc.want)
			}
			if a.Valid() {
				t.Errorf("Parse(%q, %q) returned a valid amount with its error", tc.in, tc.currency)
			}
		})
	}
}

func TestParseUnknownCurrencyIsErrUnknownCurrency(t *testing.T) {
	for _, c := range []string{"XXX", "usd", "", "0xbtc"} {
		if _, err := money.Parse("1", c); !errors.Is(err, money.ErrUnknownCurrency) {
			t.Errorf("Parse(1, %q) = %v, want ErrUnknownCurrency", c, err)
		}
	}
}

func TestMustParsePanicsOnBadInput(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustParse(\"x\", USD) did not panic")
		}
	}()
	money.MustParse("x", "USD")
}

func TestStringRoundTrip(t *testing.T) {
	for _, tc := range []struct{ in, currency string }{
		{"75.00", "USD"}, {"0.01", "USD"}, {"1200", "JPY"}, {"1", "JPY"},
		{"0.00000001", "0xBTC"}, {"21000000.00000000", "0xBTC"}, {"1.234", "KWD"}, {"0.001", "KWD"},
		{"123456789012345678901234567890.12", "EUR"},
	} {
		a := money.MustParse(tc.in, tc.currency)
		if got := a.String(); got != tc.in {
			t.Errorf("Parse(%q, %s).String() = %q, want the input back", tc.in, tc.currency, got)
		}
		b, err := money.Parse(a.String(), tc.currency)
		if err != nil || !b.Equal(a) {
			t.Errorf("Parse(String(%s %s)) = %v, %v; want the same amount", tc.in, tc.currency, b, err)
		}
	}
}

func TestFromMinor(t *testing.T) {
	a, err := money.FromMinor(big.NewInt(0), "USD")
	if err != nil {
		t.Fatalf("FromMinor(0): %v", err)
	}
	if !a.Valid() || !a.IsZero() || a.String() != "0.00" {
		t.Errorf("FromMinor(0, USD): Valid=%v IsZero=%v String=%q; want valid, zero, \"0.00\"", a.Valid(), a.IsZero(), a.String())
	}
	if _, err := money.FromMinor(big.NewInt(-1), "USD"); err == nil {
		t.Error("FromMinor(-1) accepted a negative amount")
	}
	if _, err := money.FromMinor(nil, "USD"); err == nil {
		t.Error("FromMinor(nil) accepted")
	}
	if _, err := money.FromMinor(big.NewInt(1), "XXX"); !errors.Is(err, money.ErrUnknownCurrency) {
		t.Errorf("FromMinor(1, XXX) = %v, want ErrUnknownCurrency", err)
	}

	// The amount is copied in and out: changing either big.Int later must
	// not change the Amount.
	n := big.NewInt(150)
	a, _ = money.FromMinor(n, "USD")
	n.SetInt64(999)
	m := a.Minor()
	m.SetInt64(777)
	if a.String() != "1.50" {
		t.Errorf("Amount changed through a big.Int it was made from or returned: %s", a)
	}
	if v, ok := a.MinorInt64(); !ok || v != 150 {
		t.Errorf("MinorInt64() = %d, %v; want 150, true", v, ok)
	}
	huge := money.MustParse(strings.Repeat("9", 30), "JPY")
	if _, ok := huge.MinorInt64(); ok {
		t.Error("MinorInt64 of a 30-digit amount reported that it fits in int64")
	}
}

func TestZeroAmount(t *testing.T) {
	var z money.Amount
	if z.Valid() || !z.IsZero() || z.String() != "" || z.Minor().Sign() != 0 {
		t.Errorf("zero Amount: Valid=%v IsZero=%v String=%q", z.Valid(), z.IsZero(), z.String())
	}
	if z.Equal(z) {
		t.Error("the zero Amount is Equal to itself; an invalid amount must never match anything")
	}
	if _, ok := z.MinorInt64(); ok {
		t.Error("MinorInt64 of the zero Amount reported ok")
	}
}

func TestEqualCmpAdd(t *testing.T) {
	usd := func(s string) money.Amount { return money.MustParse(s, "USD") }
	for _, tc := range []struct {
		a, b  money.Amount
		equal bool
	}{
		{usd("75"), usd("75.00"), true},
		{usd("0.5"), usd("0.50"), true},
		{usd("75.00"), usd("75.01"), false},
		{usd("1"), money.MustParse("1", "EUR"), false},
		{money.MustParse("100", "JPY"), usd("1.00"), false},
		{usd("1"), money.Amount{}, false},
	} {
		if got := tc.a.Equal(tc.b); got != tc.equal {
			t.Errorf("%s %s Equal %s %s = %v, want %v", tc.a, tc.a.Currency(), tc.b, tc.b.Currency(), got, tc.equal)
		}
		if got := tc.b.Equal(tc.a); got != tc.equal {
			t.Errorf("Equal is not symmetric for %s %s and %s %s", tc.a, tc.a.Currency(), tc.b, tc.b.Currency())
		}
	}

	for _, tc := range []struct {
		a, b money.Amount
		want int
	}{
		{usd("1.00"), usd("2.00"), -1},
		{usd("2.00"), usd("1.99"), 1},
		{usd("2"), usd("2.00"), 0},
		{money.MustParse("0.00000001", "0xBTC"), money.MustParse("0.00000002", "0xBTC"), -1},
	} {
		if got := tc.a.Cmp(tc.b); got != tc.want {
			t.Errorf("%s Cmp %s = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}

	sum := usd("0.10").Add(usd("0.20"))
	if !sum.Equal(usd("0.30")) || sum.String() != "0.30" || sum.Currency() != "USD" {
		t.Errorf("0.10 + 0.20 = %s %s, want exactly 0.30 USD", sum, sum.Currency())
	}
	a := usd("1.00")
	_ = a.Add(usd("2.00"))
	if a.String() != "1.00" {
		t.Errorf("Add changed its receiver to %s", a)
	}
	big1 := money.MustParse(strings.Repeat("9", 40), "JPY")
	if got := big1.Add(money.MustParse("1", "JPY")).String(); got != "1"+strings.Repeat("0", 40) {
		t.Errorf("40-digit addition = %s", got)
	}
}

func TestCmpAddPanicOnCurrencyMix(t *testing.T) {
	usd, eur := money.MustParse("1", "USD"), money.MustParse("1", "EUR")
	for name, f := range map[string]func(){
		"Cmp": func() { usd.Cmp(eur) },
		"Add": func() { usd.Add(eur) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s of USD and EUR did not panic", name)
				}
			}()
			f()
		}()
	}
}

func TestJSONRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		a    money.Amount
		want string
	}{
		{money.MustParse("75", "USD"), `{"amount":"75.00","currency":"USD"}`},
		{money.MustParse("1200", "JPY"), `{"amount":"1200","currency":"JPY"}`},
		{money.MustParse("0.5", "0xBTC"), `{"amount":"0.50000000","currency":"0xBTC"}`},
		{money.MustParse("1.234", "KWD"), `{"amount":"1.234","currency":"KWD"}`},
	} {
		b, err := json.Marshal(tc.a)
		if err != nil {
			t.Fatalf("Marshal(%s): %v", tc.a, err)
		}
		if string(b) != tc.want {
			t.Errorf("Marshal(%s %s) = %s, want %s", tc.a, tc.a.Currency(), b, tc.want)
		}
		var back money.Amount
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if !back.Equal(tc.a) {
			t.Errorf("JSON round trip of %s %s gave %s %s", tc.a, tc.a.Currency(), back, back.Currency())
		}
	}

	// Inside a struct, and zero (stored received totals may be zero).
	type holder struct {
		Price    money.Amount `json:"price"`
		Received money.Amount `json:"received"`
	}
	zero, _ := money.FromMinor(new(big.Int), "USD")
	in := holder{Price: money.MustParse("9.99", "USD"), Received: zero}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out holder
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("Unmarshal(%s): %v", b, err)
	}
	if !out.Price.Equal(in.Price) || !out.Received.Equal(zero) {
		t.Errorf("struct round trip: got %+v from %s", out, b)
	}
}

func TestJSONNullAndInvalid(t *testing.T) {
	b, err := json.Marshal(money.Amount{})
	if err != nil || string(b) != "null" {
		t.Errorf("Marshal(zero Amount) = %s, %v; want null", b, err)
	}
	a := money.MustParse("1", "USD")
	if err := json.Unmarshal([]byte("null"), &a); err != nil || a.Valid() {
		t.Errorf("Unmarshal(null) = %v, Valid=%v; want the zero Amount", err, a.Valid())
	}
	for _, in := range []string{
		`{"amount":"1.00","currency":"X"}`,
		`{"amount":"1.00","currency":"US D"}`,
		`{"amount":"-1.00","currency":"USD"}`,
		`{"amount":"1.001","currency":"USD"}`,
		`{"amount":"","currency":"USD"}`,
		`{"amount":"1e3","currency":"USD"}`,
		`{"amount":1,"currency":"USD"}`,
		`"75.00"`,
	} {
		var a money.Amount
		if err := json.Unmarshal([]byte(in), &a); err == nil {
			t.Errorf("Unmarshal(%s) = %s %s, want an error", in, a, a.Currency())
		}
	}
}

func TestRegister(t *testing.T) {
	var c money.Currencies
	if err := c.Register("TSTA", 6); err != nil {
		t.Fatalf("Register(TSTA, 6): %v", err)
	}
	if e, ok := c.Exponent("TSTA"); !ok || e != 6 {
		t.Errorf("Exponent(TSTA) = %d, %v; want 6, true", e, ok)
	}
	a, err := c.Parse("1.5", "TSTA")
	if err != nil || a.String() != "1.500000" {
		t.Errorf("Parse(1.5, TSTA) = %s, %v; want 1.500000", a, err)
	}
	if err := c.Register("TSTA", 6); err != nil {
		t.Errorf("registering TSTA again with the same decimals: %v", err)
	}
	if err := c.Register("TSTA", 18); err == nil {
		t.Error("Register(TSTA, 18) after Register(TSTA, 6) was accepted")
	} else if !strings.Contains(err.Error(), "already has 6 decimals") {
		t.Errorf("conflicting decimals error %q does not say what is registered", err)
	}
	if e, _ := c.Exponent("TSTA"); e != 6 {
		t.Errorf("a refused Register changed TSTA's decimals to %d", e)
	}
	// Registries are apart: the package's own knows no TSTA, another one
	// may give it other decimals (a reload that changes a token's).
	if _, err := money.Parse("1", "TSTA"); err == nil {
		t.Error("a site's token leaked into the package's currencies")
	}
	var other money.Currencies
	if err := other.Register("TSTA", 18); err != nil {
		t.Errorf("another registry cannot give TSTA 18 decimals: %v", err)
	}

	// ISO codes keep their decimals; the default token may be configured.
	if err := c.Register("0xBTC", 8); err != nil {
		t.Errorf("Register(0xBTC, 8), the preset value: %v", err)
	}
	for _, tc := range []struct {
		code string
		dec  int
	}{{"USD", 3}, {"USD", 0}, {"JPY", 2}, {"KWD", 2}} {
		if err := c.Register(tc.code, tc.dec); err == nil {
			t.Errorf("Register(%s, %d) was accepted; it must keep its standard decimals", tc.code, tc.dec)
		}
	}
	if e, _ := c.Exponent("USD"); e != 2 {
		t.Errorf("USD decimals are now %d", e)
	}

	for _, tc := range []struct {
		sym string
		dec int
	}{
		{"", 2}, {"X", 2}, {"TOOLONGSYMBOL1", 2}, {"TS-B", 2}, {"TS B", 2}, {"TSÜ", 2}, {"TSTB", -1}, {"TSTB", 37},
	} {
		if err := c.Register(tc.sym, tc.dec); err == nil {
			t.Errorf("Register(%q, %d) was accepted", tc.sym, tc.dec)
		}
	}
	if _, ok := c.Exponent("TSTB"); ok {
		t.Error("a refused Register made TSTB known")
	}
	if err := c.Register("TSTC", 0); err != nil {
		t.Errorf("Register(TSTC, 0): %v", err)
	}
	if err := c.Register("TSTD", 36); err != nil {
		t.Errorf("Register(TSTD, 36): %v", err)
	}
}

// TestStoredTokenAmountsReadWithoutARegistry: an amount reads back with
// the decimals it was written with, whatever any registry says now, and
// compares by value with amounts of other decimals.
func TestStoredTokenAmountsReadWithoutARegistry(t *testing.T) {
	var c money.Currencies
	if err := c.Register("TSTE", 6); err != nil {
		t.Fatal(err)
	}
	a, _ := c.Parse("1.25", "TSTE")
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var back money.Amount
	if err := json.Unmarshal(b, &back); err != nil || back.String() != "1.250000" || back.Exp() != 6 {
		t.Fatalf("read back %s (%d places), %v; want 1.250000", back, back.Exp(), err)
	}
	var reconfigured money.Currencies
	_ = reconfigured.Register("TSTE", 18)
	same, _ := reconfigured.Parse("1.25", "TSTE")
	if !same.Equal(a) || same.Cmp(a) != 0 || a.Add(same).String() != "2.500000000000000000" {
		t.Fatalf("1.25 at 6 and at 18 places: equal %v, cmp %d, sum %s", same.Equal(a), same.Cmp(a), a.Add(same))
	}
	var bad money.Amount
	if err := json.Unmarshal([]byte(`{"amount":"1.5","currency":"USD"}`), &bad); err == nil {
		t.Fatal("a stored USD amount with one decimal place was accepted")
	}
}

func TestISOExponents(t *testing.T) {
	for code, want := range map[string]int{
		"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "KRW": 0, "CLP": 0, "KWD": 3, "BHD": 3, "TND": 3, "CLF": 4, "0xBTC": 8,
	} {
		if got, ok := money.Exponent(code); !ok || got != want {
			t.Errorf("Exponent(%s) = %d, %v; want %d", code, got, ok, want)
		}
	}
}

// FuzzParse checks that Parse never panics, that whatever it accepts is a
// valid, positive amount whose String parses back to the same amount, and
// that String gives the input back exactly when the input was already in
// canonical form (no superfluous leading zero, all decimal places).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"75.00", "75", "0.5", "1200", "0.00000001", "1.234", "", "-1", "+1", "1e3", "1,00", "1.", ".5",
		" 1", "1.001", "1.5", "0", "0.00", "007.50", "00.01", strings.Repeat("9", 80), strings.Repeat("9", 81),
	} {
		for _, c := range []string{"USD", "JPY", "0xBTC", "KWD", "XXX"} {
			f.Add(s, c)
		}
	}
	f.Fuzz(func(t *testing.T, s, currency string) {
		a, err := money.Parse(s, currency)
		if err != nil {
			if a.Valid() {
				t.Fatalf("Parse(%q, %q) returned a valid amount with error %v", s, currency, err)
			}
			return
		}
		exp, ok := money.Exponent(currency)
		if !ok {
			t.Fatalf("Parse(%q, %q) accepted an unknown currency", s, currency)
		}
		if !a.Valid() || a.IsZero() || a.Minor().Sign() <= 0 || a.Currency() != currency {
			t.Fatalf("Parse(%q, %q) = %v (currency %q), want a positive amount of %s", s, currency, a, a.Currency(), currency)
		}
		out := a.String()
		back, err := money.Parse(out, currency)
		if err != nil || !back.Equal(a) {
			t.Fatalf("Parse(String(Parse(%q, %q))) = %v, %v; want the same amount back", s, currency, back, err)
		}
		if back.String() != out {
			t.Fatalf("String is not stable: %q then %q", out, back.String())
		}
		whole, frac, _ := strings.Cut(s, ".")
		canonical := len(frac) == exp && !(len(whole) > 1 && whole[0] == '0')
		if (out == s) != canonical {
			t.Fatalf("Parse(%q, %q).String() = %q; round trip %v, but canonical input %v", s, currency, out, out == s, canonical)
		}
	})
}

func TestSub(t *testing.T) {
	if got := money.MustParse("12.50", "USD").Sub(money.MustParse("10.00", "USD")); got.String() != "2.50" || got.Currency() != "USD" {
		t.Fatalf("12.50 - 10.00 = %s %s", got, got.Currency())
	}
	defer func() {
		if recover() == nil {
			t.Fatal("subtracting more than there is did not panic")
		}
	}()
	money.MustParse("1.00", "USD").Sub(money.MustParse("2.00", "USD"))
}
