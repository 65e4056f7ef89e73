package vouchersafe_test

import (
	"strings"
	"testing"

	"github.com/caddy-checkout/checkout/providers/vouchersafe"
)

// FuzzParseLine: whatever the pickup prints, ParseLine returns a payment
// with its four fields, NOT FOUND, or a bounded error; it never lets a
// baggage pair pass for a field of the payment.
func FuzzParseLine(f *testing.F) {
	f.Add(`{"PAYER":"a@vouchi.com","AMOUNT":"19.95","UNITS":"CAD","ISSUER":"VI-USV","orderId":"r1"}`)
	f.Add(`NOT FOUND`)
	f.Add(`{"PAYER":"a","AMOUNT":"1","UNITS":"x","ISSUER":"i","amount":"2"}`)
	f.Add(`{"PAYER":"a","PAYER":"b"}`)
	f.Add(`{"AMOUNT":{"x":1}}`)
	f.Add(strings.Repeat("\u0085", 400)) // C1 controls: %q writes each as six bytes
	f.Fuzz(func(t *testing.T, line string) {
		p, err := vouchersafe.ParseLine(line)
		if err != nil {
			if len(err.Error()) > 600 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			return
		}
		if p.Payer == "" || p.Amount == "" || p.Units == "" || p.Issuer == "" {
			t.Fatalf("payment without its fields: %+v", p)
		}
		for k := range p.Baggage {
			switch strings.ToUpper(k) {
			case "PAYER", "AMOUNT", "UNITS", "ASSET", "ISSUER":
				t.Fatalf("baggage %q passed as a field's name", k)
			}
		}
	})
}
