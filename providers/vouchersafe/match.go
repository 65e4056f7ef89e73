// What a pickup's payment means for the attempt. An altered client can
// change any field of a payment, so each is checked against the order:
// the baggage must name the attempt, the units must be the order's
// currency, the issuer one accepted, and the amount the order's.
package vouchersafe

import (
	"fmt"
	"time"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
)

// What the provider records on an attempt (provider.Finding.Data).
const (
	dataTo        = "vs_sent_to"       // the JID the order message went to
	dataCode      = "vs_code"          // the code it is encrypted under, shown to the customer
	dataIssuer    = "vs_issuer"        // the issuer asked for
	dataSends     = "vs_sends"         // how many sends this attempt made
	dataPickup    = "vs_pickup"        // "started <time>" while a pickup runs: a crash leaves it
	dataOutput    = "vs_pickup_output" // the last pickup's last line, as printed
	dataLast      = "vs_last_result"   // not_found, found, error
	dataAttention = "vs_attention"     // what the operator must check
)

// outcome turns a pickup's output into a finding about the attempt.
func (v *VoucherSafe) outcome(p provider.Payment, out Output) provider.Finding {
	f := provider.Finding{Ref: p.Ref, Data: map[string]string{dataPickup: "", dataOutput: truncate(out.Line, 500)}}
	pay, err := ParseLine(out.Line)
	switch {
	case err == ErrNotFound:
		f.Data[dataLast] = "not_found"
		return f
	case err != nil:
		f.Data[dataLast] = "error"
		return f
	}
	f.Data[dataLast] = "found"
	// Each pickup takes one voucher out: two alike (two equal part
	// payments) are two payments, so the id is the pickup's own.
	f.EventID = "vs-pickup-" + order.NewRef()
	f.Transaction = pay.Payer
	problem := ""
	amt, perr := v.env.Currencies.Parse(pay.Amount, p.Amount.Currency())
	switch {
	case pay.Baggage[BaggageKey] != p.Ref:
		problem = fmt.Sprintf("the payment's baggage orderId is %q, not this attempt's", truncate(pay.Baggage[BaggageKey], 60))
	case pay.Units != p.Amount.Currency():
		problem = fmt.Sprintf("paid in %s, not the order's %s", truncate(pay.Units, 12), p.Amount.Currency())
	case !v.accepts(pay.Issuer):
		problem = fmt.Sprintf("vouchers of issuer %s, which this shop does not accept", truncate(pay.Issuer, 40))
	case perr != nil:
		problem = fmt.Sprintf("the amount %q cannot be read in %s", truncate(pay.Amount, 40), p.Amount.Currency())
	}
	if problem != "" {
		// The voucher left the safe but does not pay this order: the
		// attempt fails (the customer may pay again another way) and the
		// operator is told what to sort out with the payer.
		f.Status = order.Failed
		f.Note = "Voucher-Safe payment picked up but not accepted: " + problem
		f.Data[dataAttention] = fmt.Sprintf("%s: a Voucher-Safe payment from %s (%s %s, issuer %s) was taken out of %s but not accepted: %s. Refund or settle it with the payer.",
			v.env.Now().UTC().Format(time.RFC3339), truncate(pay.Payer, 80), truncate(pay.Amount, 40), truncate(pay.Units, 12), truncate(pay.Issuer, 40), v.MerchantVS, problem)
		return f
	}
	if r := p.Received; r.Valid() && r.Currency() == amt.Currency() {
		// A payment for the rest of a short one: each pickup takes one
		// voucher out, so what arrived adds up.
		amt = amt.Add(r)
	}
	switch c := amt.Cmp(p.Amount); {
	case c < 0:
		f.Status, f.Paid = order.OnHold, amt
		f.Note = fmt.Sprintf("Voucher-Safe payments from %s come to %s %s, less than the %s due", pay.Payer, amt, amt.Currency(), p.Amount)
	default:
		f.Status, f.Paid, f.AcceptOver = order.Paid, amt, true
		f.Note = "Voucher-Safe payment from " + pay.Payer + " (issuer " + pay.Issuer + ")"
	}
	return f
}

func (v *VoucherSafe) accepts(issuer string) bool {
	for _, is := range v.Issuers {
		if is == issuer {
			return true
		}
	}
	return false
}
