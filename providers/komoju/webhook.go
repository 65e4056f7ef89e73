// KOMOJU webhooks at {base}/webhook/komoju, and what a payment object says
// about our attempts (shared by webhooks, returns and the reconciler).
package komoju

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/store"
)

// verify checks X-Komoju-Signature: the lowercase hex HMAC-SHA256 of the
// raw body under the webhook's secret token, compared in constant time.
// The signature has no timestamp: a replayed event is stopped by the
// core's deduplication on the event id.
func verify(sig string, body []byte, secret string) error {
	if sig == "" {
		return fmt.Errorf("%w: no X-Komoju-Signature header", provider.ErrUnauthenticated)
	}
	got, err := hex.DecodeString(strings.TrimSpace(sig))
	if err != nil {
		return fmt.Errorf("%w: X-Komoju-Signature is not hex", provider.ErrUnauthenticated)
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	if !hmac.Equal(got, m.Sum(nil)) {
		return fmt.Errorf("%w: X-Komoju-Signature does not match webhook_secret", provider.ErrUnauthenticated)
	}
	return nil
}

// maxEventID bounds an event id, which is stored to recognise replays
// (KOMOJU's ids are 25 characters).
const maxEventID = 100

// event is a KOMOJU event (komoju-node-sdk Event.md): its data is a Payment
// for every payment.* type.
type event struct {
	ID       string          `json:"id"`
	Type     string          `json:"type"`
	Resource string          `json:"resource"`
	Data     json.RawMessage `json:"data"`
}

// Webhook verifies a KOMOJU event and reports what it says about our
// attempts. Pings, types we do not act on, and payments of another
// account, site or attempt are answered 200 with no findings.
func (k *Komoju) Webhook(ctx context.Context, r *http.Request, body []byte) ([]provider.Finding, error) {
	if err := verify(r.Header.Get("X-Komoju-Signature"), body, k.webhookSecret); err != nil {
		return nil, err
	}
	var ev event
	if err := json.Unmarshal(body, &ev); err != nil || ev.Type == "" {
		return nil, fmt.Errorf("%w: not a KOMOJU event", provider.ErrMalformed)
	}
	if ev.ID == "" || len(ev.ID) > maxEventID {
		// The id is what a replay is recognised by: it must be the signed
		// body's, never the unsigned X-Komoju-ID header's.
		return nil, fmt.Errorf("%w: KOMOJU event without an id of at most %d characters", provider.ErrMalformed, maxEventID)
	}
	switch ev.Type {
	case "payment.authorized", "payment.captured", "payment.expired", "payment.cancelled",
		"payment.refunded", "payment.failed":
	default:
		return nil, nil // ping, payment.updated, refund requests, settlements...
	}
	var pay payment
	if err := json.Unmarshal(ev.Data, &pay); err != nil || pay.ID == "" || pay.Status == "" {
		return nil, fmt.Errorf("%w: %s without a payment", provider.ErrMalformed, ev.Type)
	}
	// The payment object's status is its state, and decides: the type is
	// a label. A partial refund's payment.refunded carries a payment still
	// captured, with its amount_refunded: that is a refund of part.
	f, ok, err := k.finding(ctx, &pay, "")
	if err != nil || !ok {
		return nil, err
	}
	if ev.Type == "payment.refunded" && f.Status == order.Paid && pay.AmountRefunded > 0 {
		if f.Refunded, err = refundedOf(&pay); err != nil {
			return nil, err
		}
		f.Status, f.Paid, f.Data, f.Note = order.Refunded, money.Amount{}, nil, "partly refunded at KOMOJU"
	}
	f.EventID = ev.ID
	return []provider.Finding{f}, nil
}

// refOf is the attempt a payment names: its external_order_num is our
// attempt reference, with "-<session>" after it for a later session of the
// same attempt.
func refOf(pay *payment) string {
	ref, _, _ := strings.Cut(pay.ExternalOrderNum, "-")
	return ref
}

// finding is what a payment object, verified as KOMOJU's (signed, or
// fetched from its API), says about the attempt it names. sessionID, when
// set, is the session the payment was fetched through. It reports !ok for a
// payment of another site or attempt, or one that cannot change this
// attempt: a stale session's cancel or expiry never touches an order that a
// newer payment paid or holds (komoju-woocommerce #166, #83).
func (k *Komoju) finding(ctx context.Context, pay *payment, sessionID string) (provider.Finding, bool, error) {
	ref := refOf(pay)
	if ref == "" {
		return provider.Finding{}, false, nil
	}
	o, p, err := k.env.Lookup(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		return provider.Finding{}, false, nil // not one of our attempts
	}
	if err != nil {
		// The store cannot say now: KOMOJU is answered 503 and retries.
		return provider.Finding{}, false, fmt.Errorf("%w: looking up the attempt: %v", provider.ErrUnavailable, err)
	}
	if o.Site != k.env.Site || p.ProviderRef == "" {
		return provider.Finding{}, false, nil // another site's attempt, or one never sent to KOMOJU
	}
	if pay.Session == "" {
		pay.Session = sessionID
	}
	ownSession := pay.Session == p.ProviderRef
	units, err := toKomoju(p.Amount)
	agrees := err == nil && pay.Amount != nil && *pay.Amount == units && pay.Currency == p.Amount.Currency()
	f := provider.Finding{Ref: ref, Transaction: pay.ID, Data: map[string]string{dataPayment: pay.ID, dataType: pay.PaymentDetails.Type}}
	// Only the payment the attempt holds can end it: the latest session's.
	holds := ownSession && (p.ProviderData[dataPayment] == "" || p.ProviderData[dataPayment] == pay.ID)
	switch pay.Status {
	case "captured":
		// Money taken: reported whatever the session, so that a payment
		// is never lost; the core refuses it for a wrong amount and
		// flags a second payment of one order.
		amt, err := fromKomoju(pay.Amount, pay.Currency)
		if err != nil {
			return provider.Finding{}, false, err
		}
		f.Status, f.Paid = order.Paid, amt
	case "authorized":
		amt, err := fromKomoju(pay.Amount, pay.Currency)
		if err != nil {
			return provider.Finding{}, false, err
		}
		if !agrees {
			return provider.Finding{}, false, nil
		}
		f.Status, f.Paid, f.Note = order.OnHold, amt, "waiting for payment at KOMOJU ("+methodName(pay.PaymentDetails.Type)+")"
		if pay.PaymentDeadline != nil {
			f.HoldUntil = pay.PaymentDeadline.UTC()
			f.Data[dataDeadline] = f.HoldUntil.Format("2006-01-02T15:04:05Z07:00")
		}
		d := pay.PaymentDetails
		for key, v := range map[string]string{dataStore: d.Store, dataConfirmation: d.ConfirmationCode, dataReceipt: d.Receipt, dataInstructions: d.InstructionsURL} {
			if v != "" {
				f.Data[key] = v
			}
		}
	case "expired", "cancelled":
		if !agrees || !holds || o.Current().Ref != ref {
			return provider.Finding{}, false, nil
		}
		if o.Status == order.OnHold && p.ProviderData[dataPayment] == pay.ID {
			// The slip that held the order ran out, or was cancelled.
			f.Status, f.Note = order.Expired, "KOMOJU payment expired before it was paid"
			if pay.Status == "cancelled" {
				f.Status, f.Note = order.Cancelled, "KOMOJU payment cancelled"
			}
			return f, true, nil
		}
		// A payment that never held the order: that attempt failed, the
		// order stays payable.
		f.Status, f.Note = order.Failed, "KOMOJU payment "+pay.Status
	case "failed":
		// A declined card: KOMOJU's session stays open, and the customer
		// may still pay in it (another card, a konbini slip). The attempt
		// fails only when they come back without paying (Return).
		return provider.Finding{}, false, nil
	case "refunded":
		if !agrees || o.Transaction != pay.ID {
			return provider.Finding{}, false, nil
		}
		f.Status, f.Note = order.Refunded, "refunded at KOMOJU"
		f.Data = nil
		if pay.AmountRefunded > 0 {
			if f.Refunded, err = refundedOf(pay); err != nil {
				return provider.Finding{}, false, err
			}
		}
	default:
		return provider.Finding{}, false, nil // pending: nothing yet
	}
	return f, true, nil
}

// methodName is a payment type for the order's history.
func methodName(t string) string {
	if t == "" {
		return "unknown method"
	}
	return t
}
