package vouchersafe

import (
	"strings"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
)

// TestOutcomeChecksEveryField: an altered client can change any field of
// a payment; each must agree with the order before it pays.
func TestOutcomeChecksEveryField(t *testing.T) {
	v := &VoucherSafe{MerchantVS: "m-1@vouchi.com", Issuers: []string{"VI-USV"}}
	v.env = provider.Env{Currencies: new(money.Currencies), Now: time.Now}
	p := provider.Payment{Ref: "ref1", Amount: money.MustParse("19.95", "CAD")}
	line := func(fields string) Output {
		return Output{Line: `{"PAYER":"joe@vouchi.com","ASSET":"USV",` + fields + `}`}
	}
	for _, tc := range []struct {
		name   string
		out    Output
		status order.State
		why    string
	}{
		{"paid", line(`"AMOUNT":19.95,"UNITS":"CAD","ISSUER":"VI-USV","orderId":"ref1"`), order.Paid, ""},
		{"paid more", line(`"AMOUNT":"20.00","UNITS":"CAD","ISSUER":"VI-USV","orderId":"ref1"`), order.Paid, ""},
		{"another order", line(`"AMOUNT":19.95,"UNITS":"CAD","ISSUER":"VI-USV","orderId":"ref2"`), order.Failed, "baggage orderId"},
		{"no order", line(`"AMOUNT":19.95,"UNITS":"CAD","ISSUER":"VI-USV"`), order.Failed, "baggage orderId"},
		{"units", line(`"AMOUNT":19.95,"UNITS":"USV","ISSUER":"VI-USV","orderId":"ref1"`), order.Failed, "not the order's CAD"},
		{"issuer", line(`"AMOUNT":19.95,"UNITS":"CAD","ISSUER":"VI-EUV","orderId":"ref1"`), order.Failed, "issuer VI-EUV"},
		{"amount unreadable", line(`"AMOUNT":"19.951","UNITS":"CAD","ISSUER":"VI-USV","orderId":"ref1"`), order.Failed, "cannot be read"},
		{"less", line(`"AMOUNT":"9.95","UNITS":"CAD","ISSUER":"VI-USV","orderId":"ref1"`), order.OnHold, ""},
		{"not found", Output{Line: "NOT FOUND"}, "", ""},
		{"garbage", Output{Line: "Exception in thread main"}, "", ""},
	} {
		f := v.outcome(p, tc.out)
		if f.Status != tc.status || (tc.why != "" && !strings.Contains(f.Data[dataAttention], tc.why)) || f.Data[dataOutput] != tc.out.Line {
			t.Errorf("%s: status %q, attention %q, output %q", tc.name, f.Status, f.Data[dataAttention], f.Data[dataOutput])
		}
		if _, touched := f.Data[dataAttention]; tc.status == order.Paid && touched {
			t.Errorf("%s: a payment clears the operator's note of an earlier problem", tc.name)
		}
		if tc.status == order.Paid && (f.Transaction != "joe@vouchi.com" || f.EventID == "") {
			t.Errorf("%s: transaction %q event %q", tc.name, f.Transaction, f.EventID)
		}
	}
}
