package vouchersafe_test

import (
	"net"
	"strings"
	"testing"
	"unicode"

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

// FuzzParseCustomerJID: whatever a customer types into the pickup form,
// ParseCustomerJID returns a bare-or-full JID with a local part and a DNS
// host name (never an IP address, never a control character), which
// reads back as the same JID, or a bounded error.
func FuzzParseCustomerJID(f *testing.F) {
	f.Add("alice@example.net/phone")
	f.Add(" bob@chat.example.org ")
	f.Add("example.net")
	f.Add("carol@127.0.0.1")
	f.Add("dave@[::1]")
	f.Add("eve@exa\x00mple.net")
	f.Add("@example.net")
	f.Add("frank@localhost")
	f.Add("grace@xn--.example")
	f.Add(strings.Repeat("a", 2000) + "@example.net")
	f.Fuzz(func(t *testing.T, in string) {
		j, err := vouchersafe.ParseCustomerJID(in)
		if err != nil {
			if len(err.Error()) > 400 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			return
		}
		s := j.String()
		if j.Localpart() == "" || j.Domainpart() == "" {
			t.Fatalf("%q accepted as %q, without a local part or a domain", in, s)
		}
		if net.ParseIP(strings.Trim(j.Domainpart(), "[]")) != nil {
			t.Fatalf("%q accepted with an IP address as its domain", in)
		}
		if strings.ContainsFunc(s, unicode.IsControl) {
			t.Fatalf("%q accepted with a control character", in)
		}
		again, err := vouchersafe.ParseCustomerJID(s)
		if err != nil || !again.Equal(j) {
			t.Fatalf("%q accepted as %q, which reads back as %q, %v", in, s, again, err)
		}
	})
}
