// Stripe webhooks at {base}/webhook/stripe: the Stripe-Signature header is
// checked on the raw body, then the event is read defensively (only the
// fields used here, whatever API version the endpoint sends) and turned
// into findings about our attempts.
package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	stripeapi "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
)

// Tolerance is how far a signature's timestamp may be from our clock,
// either way: stripe-go's default, and a bound on replays.
const Tolerance = 300 * time.Second

// verify checks a Stripe-Signature header, t=<unix>,v1=<hex>[,v1=...],
// with stripe-go's webhook package: any v1 made with the secret verifies
// (Stripe sends one per secret while a secret is rolled); v0 and unknown
// parts are ignored. The package's own timestamp check is not used, for
// two reasons: it reads the wall clock, where ours is injected (tests move
// it by days), and it accepts a timestamp in the future, which would let a
// forward-dated signature be replayed for as long as its date is ahead.
// The timestamp is checked here, both ways, after the signature.
func verify(header string, body []byte, secret string, now time.Time) error {
	switch err := webhook.ValidatePayloadIgnoringTolerance(body, header, secret); {
	case errors.Is(err, webhook.ErrNotSigned):
		return fmt.Errorf("%w: no Stripe-Signature header", provider.ErrUnauthenticated)
	case errors.Is(err, webhook.ErrInvalidHeader):
		return fmt.Errorf("%w: Stripe-Signature is not t=<unix>,v1=<hex>", provider.ErrUnauthenticated)
	case errors.Is(err, webhook.ErrNoValidSignature):
		return fmt.Errorf("%w: no v1 signature matches webhook_secret", provider.ErrUnauthenticated)
	case err != nil:
		return fmt.Errorf("%w: %v", provider.ErrUnauthenticated, err)
	}
	// The signature covers the timestamp, and the package read it as a
	// number already; a header without one cannot have verified.
	var signedAt time.Time
	for part := range strings.SplitSeq(header, ",") {
		if v, ok := strings.CutPrefix(part, "t="); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			signedAt = time.Unix(n, 0)
		}
	}
	if d := now.Sub(signedAt); d > Tolerance || d < -Tolerance {
		return fmt.Errorf("%w: Stripe-Signature timestamp is %s away from now (tolerance %s)", provider.ErrUnauthenticated, d.Round(time.Second), Tolerance)
	}
	return nil
}

// event is the part of a Stripe event read here. Fields of newer API
// versions are ignored; missing ones read as empty.
type event struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Type    string `json:"type"`
	Account string `json:"account"`
	Created int64  `json:"created"`
	Data    struct {
		Object json.RawMessage `json:"object"`
	} `json:"data"`
}

// sessionObject is the part of a Checkout Session read from events.
type sessionObject struct {
	ID                string            `json:"id"`
	Object            string            `json:"object"`
	ClientReferenceID string            `json:"client_reference_id"`
	Metadata          map[string]string `json:"metadata"`
	AmountTotal       *int64            `json:"amount_total"`
	Currency          string            `json:"currency"`
	Status            string            `json:"status"`
	PaymentStatus     string            `json:"payment_status"`
	PaymentIntent     json.RawMessage   `json:"payment_intent"` // an id, or the object when expanded
	ExpiresAt         int64             `json:"expires_at"`
}

// chargeObject is the part of a Charge read from charge.refunded.
type chargeObject struct {
	ID             string            `json:"id"`
	Object         string            `json:"object"`
	Refunded       bool              `json:"refunded"`
	AmountRefunded int64             `json:"amount_refunded"`
	Currency       string            `json:"currency"`
	PaymentIntent  json.RawMessage   `json:"payment_intent"`
	Metadata       map[string]string `json:"metadata"`
}

// disputeObject is the part of a Dispute read from charge.dispute.*.
type disputeObject struct {
	ID            string          `json:"id"`
	Object        string          `json:"object"`
	Amount        int64           `json:"amount"`
	Currency      string          `json:"currency"`
	Reason        string          `json:"reason"`
	Status        string          `json:"status"`
	PaymentIntent json.RawMessage `json:"payment_intent"`
}

// disputeStages places each of Stripe's dispute statuses in a dispute's
// life (an inquiry, warning_*, may become a chargeback), so that of two
// events of one second the later stage wins; the outcome of the closed
// ones: warning_closed is an inquiry that ended with the money kept, and
// prevented a dispute the card network resolved before it was filed
// (the merchant keeps the money).
var disputeStages = map[string]struct {
	stage   int
	outcome string
}{
	"warning_needs_response": {1, ""}, "warning_under_review": {2, ""}, "warning_closed": {3, "won"}, "prevented": {3, "won"},
	"needs_response": {4, ""}, "under_review": {5, ""}, "won": {6, "won"}, "lost": {6, "lost"},
}

// disputeEvent turns a dispute of one of this site's payments into a
// finding. Like a refund, the dispute names the payment intent, whose
// metadata names the attempt; it is fetched from Stripe.
func (s *Stripe) disputeEvent(ctx context.Context, ev event, d disputeObject) (provider.Finding, bool, error) {
	st, known := disputeStages[d.Status]
	if !known {
		// A status of a newer Stripe: refusing the event would have
		// Stripe retry it for days and put the endpoint at risk.
		if s.env.Logger != nil {
			s.env.Logger.Warn("Stripe dispute event with a status this build does not know; ignored",
				zap.String("dispute", truncate(d.ID, 40)), zap.String("status", truncate(d.Status, 40)))
		}
		return provider.Finding{}, false, nil
	}
	amount, err := fromStripe(d.Amount, d.Currency)
	if err != nil {
		return provider.Finding{}, false, fmt.Errorf("%w: %s: %v", provider.ErrMalformed, ev.Type, err)
	}
	pi := idOf(d.PaymentIntent)
	if pi == "" {
		return provider.Finding{}, false, nil // a charge made outside Checkout: not ours
	}
	intent, err := s.intent(ctx, pi)
	if isMissing(err) {
		return provider.Finding{}, false, nil
	}
	if err != nil {
		return provider.Finding{}, false, err
	}
	if intent.Metadata[metaRef] == "" || intent.Metadata[metaSite] != s.env.Site {
		return provider.Finding{}, false, nil
	}
	return provider.Finding{Ref: intent.Metadata[metaRef], Transaction: pi, Dispute: &order.DisputeNews{
		ID: d.ID, Amount: amount, Reason: truncate(d.Reason, 60), Status: d.Status, Outcome: st.outcome,
		At: time.Unix(ev.Created, int64(st.stage)), Transaction: pi,
	}}, true, nil
}

// idOf reads an expandable field: an id string, or an object with an id.
func idOf(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var id string
	if json.Unmarshal(raw, &id) == nil {
		return id
	}
	var obj struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		return obj.ID
	}
	return ""
}

// Webhook verifies a Stripe event and reports what it says about our
// attempts. Events of other accounts, other sites, sessions we did not
// make, and types we do not act on are answered 200 with no findings, as
// Stripe expects.
func (s *Stripe) Webhook(ctx context.Context, r *http.Request, body []byte) ([]provider.Finding, error) {
	if err := verify(r.Header.Get("Stripe-Signature"), body, s.webhookSecret, s.env.Now()); err != nil {
		return nil, err
	}
	var ev event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" || ev.Type == "" {
		return nil, fmt.Errorf("%w: not a Stripe event", provider.ErrMalformed)
	}
	if ev.Account != s.Account {
		return nil, nil // another account's event (or the platform's, when we act for one)
	}
	switch ev.Type {
	case "checkout.session.completed", "checkout.session.async_payment_succeeded",
		"checkout.session.async_payment_failed", "checkout.session.expired":
		var sess sessionObject
		if err := json.Unmarshal(ev.Data.Object, &sess); err != nil || sess.ID == "" {
			return nil, fmt.Errorf("%w: %s without a checkout session", provider.ErrMalformed, ev.Type)
		}
		f, ok, err := s.sessionEvent(ctx, ev.Type, sess)
		if err != nil || !ok {
			return nil, err
		}
		f.EventID = ev.ID
		return []provider.Finding{f}, nil
	case "charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed":
		var d disputeObject
		if err := json.Unmarshal(ev.Data.Object, &d); err != nil || d.ID == "" || d.Object != "dispute" {
			return nil, fmt.Errorf("%w: %s without a dispute", provider.ErrMalformed, ev.Type)
		}
		f, ok, err := s.disputeEvent(ctx, ev, d)
		if err != nil || !ok {
			return nil, err
		}
		f.EventID = ev.ID
		return []provider.Finding{f}, nil
	case "charge.refunded":
		var ch chargeObject
		if err := json.Unmarshal(ev.Data.Object, &ch); err != nil || ch.ID == "" {
			return nil, fmt.Errorf("%w: %s without a charge", provider.ErrMalformed, ev.Type)
		}
		f, ok, err := s.refundEvent(ctx, ch)
		if err != nil || !ok {
			return nil, err
		}
		f.EventID = ev.ID
		return []provider.Finding{f}, nil
	}
	return nil, nil
}

// sessionEvent turns a checkout.session.* event into a finding, or
// reports !ok when it is not about one of this site's attempts.
func (s *Stripe) sessionEvent(ctx context.Context, typ string, sess sessionObject) (provider.Finding, bool, error) {
	ref := sess.Metadata[metaRef]
	if ref == "" || sess.ClientReferenceID != ref || sess.Metadata[metaSite] != s.env.Site {
		return provider.Finding{}, false, nil
	}
	f := provider.Finding{Ref: ref, ProviderRef: sess.ID, Transaction: idOf(sess.PaymentIntent)}
	switch {
	case typ == "checkout.session.expired":
		ends, err := s.endsAttempt(ctx, ref, sess.ID, sess.ExpiresAt)
		if err != nil || !ends {
			return f, false, err
		}
		f.Status, f.Note = order.Expired, "Stripe Checkout session expired"
		return f, true, nil
	case typ == "checkout.session.async_payment_failed":
		f.Status, f.Note = order.Failed, "delayed payment failed at Stripe"
		return f, true, nil
	case sess.PaymentStatus == "paid":
		amt, err := sessionAmount(sess.AmountTotal, sess.Currency)
		if err != nil {
			return f, false, err
		}
		f.Status, f.Paid = order.Paid, amt
		return f, true, nil
	case typ == "checkout.session.completed" && sess.PaymentStatus == "unpaid":
		f.Status, f.Note = order.OnHold, "completed at Stripe; waiting for a delayed payment method"
		if id := idOf(sess.PaymentIntent); id != "" {
			// A konbini voucher says until when it can be paid: the
			// order is held until then, not its own expiry.
			pi, err := s.intent(ctx, id)
			if err != nil {
				return f, false, err
			}
			f.HoldUntil = voucherExpiry(pi)
		}
		return f, true, nil
	}
	return f, false, nil
}

// endsAttempt reports whether the expiry of a session ends its attempt:
// only the open order's current attempt and its latest session count (a
// session we expired ourselves, because the order ended or a new amount
// replaced the attempt, ends nothing more), and only when the order's own
// deadline is not later (a long order outlives Stripe's 24 h sessions, and
// the customer may start anew).
func (s *Stripe) endsAttempt(ctx context.Context, ref, sessionID string, sessionEnds int64) (bool, error) {
	o, p, err := s.env.Lookup(ctx, ref)
	if err != nil {
		return false, nil // unknown attempt: nothing to end
	}
	if !o.Status.Open() || o.Current().Ref != ref || p.ProviderRef != sessionID {
		return false, nil
	}
	return !p.ExpiresAt.After(time.Unix(sessionEnds, 0).Add(time.Minute)), nil
}

// refundEvent turns a refunded charge, in full or in part, into a finding
// of the total refunded so far. The charge does not carry the session's
// metadata, so the payment intent, which does, names the attempt; it is
// fetched from Stripe.
func (s *Stripe) refundEvent(ctx context.Context, ch chargeObject) (provider.Finding, bool, error) {
	if ch.AmountRefunded <= 0 && !ch.Refunded {
		return provider.Finding{}, false, nil
	}
	var total money.Amount
	if ch.AmountRefunded > 0 {
		var err error
		if total, err = fromStripe(ch.AmountRefunded, ch.Currency); err != nil {
			return provider.Finding{}, false, fmt.Errorf("%w: charge.refunded: %v", provider.ErrMalformed, err)
		}
	}
	meta := ch.Metadata
	if meta[metaRef] == "" {
		pi := idOf(ch.PaymentIntent)
		if pi == "" {
			return provider.Finding{}, false, nil
		}
		intent, err := s.intent(ctx, pi)
		if isMissing(err) {
			return provider.Finding{}, false, nil
		}
		if err != nil {
			return provider.Finding{}, false, err
		}
		meta = intent.Metadata
	}
	if meta[metaRef] == "" || meta[metaSite] != s.env.Site {
		return provider.Finding{}, false, nil
	}
	return provider.Finding{Ref: meta[metaRef], Status: order.Refunded, Refunded: total, Transaction: idOf(ch.PaymentIntent),
		Note: "refunded at Stripe (charge " + ch.ID + ")"}, true, nil
}

// voucherExpiry is when a konbini voucher of pi lapses
// (next_action.konbini_display_details.expires_at), or zero.
func voucherExpiry(pi *stripeapi.PaymentIntent) time.Time {
	if pi == nil || pi.NextAction == nil || pi.NextAction.KonbiniDisplayDetails == nil || pi.NextAction.KonbiniDisplayDetails.ExpiresAt <= 0 {
		return time.Time{}
	}
	return time.Unix(pi.NextAction.KonbiniDisplayDetails.ExpiresAt, 0).UTC()
}

func (s *Stripe) intent(ctx context.Context, id string) (*stripeapi.PaymentIntent, error) {
	if !validID(id, "pi_") {
		return nil, fmt.Errorf("%w: %q is not a payment intent id", provider.ErrMalformed, truncate(id, 80))
	}
	params := &stripeapi.PaymentIntentParams{}
	params.Context = ctx
	if s.Account != "" {
		params.SetStripeAccount(s.Account)
	}
	pi, err := s.api.PaymentIntents.Get(id, params)
	if err != nil {
		return nil, apiError("retrieving payment intent", err)
	}
	return pi, nil
}

// sessionAmount reads a session's amount_total.
func sessionAmount(total *int64, currency string) (money.Amount, error) {
	if total == nil || currency == "" {
		return money.Amount{}, fmt.Errorf("%w: paid session without amount_total or currency", provider.ErrMalformed)
	}
	amt, err := fromStripe(*total, currency)
	if err != nil {
		return money.Amount{}, fmt.Errorf("%w: %v", provider.ErrMalformed, err)
	}
	return amt, nil
}
