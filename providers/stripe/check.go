// Server-side checks with Stripe: the customer's return, the reconciler's
// question about an attempt, and refunds. None of them trusts anything
// but what Stripe's API answers.
package stripe

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	stripeapi "github.com/stripe/stripe-go/v76"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
)

// Return retrieves the session the customer comes back from (the
// session_id Stripe put in the success URL, else the attempt's own) and
// reports its state. A session made for another attempt is refused.
func (s *Stripe) Return(ctx context.Context, r *http.Request, p provider.Payment) (provider.Finding, error) {
	id := r.URL.Query().Get("session_id")
	if id == "" {
		id = p.ProviderRef
	}
	if id == "" {
		return provider.Finding{}, nil // nothing to ask about yet
	}
	sess, err := s.session(ctx, id, true)
	if isMissing(err) {
		return provider.Finding{}, fmt.Errorf("%w: no such session at Stripe", provider.ErrMalformed)
	}
	if err != nil {
		return provider.Finding{}, err
	}
	if !belongs(sess, p) {
		return provider.Finding{}, fmt.Errorf("%w: session %s was made for another payment", provider.ErrMalformed, sess.ID)
	}
	return s.fromSession(ctx, sess, p)
}

// Check asks Stripe about the attempt's latest session, for the
// reconciler: a lost webhook still ends in the right state.
func (s *Stripe) Check(ctx context.Context, p provider.Payment) (provider.Finding, error) {
	if p.ProviderRef == "" {
		return provider.Finding{}, nil
	}
	sess, err := s.session(ctx, p.ProviderRef, true)
	if err != nil {
		return provider.Finding{}, err
	}
	if !belongs(sess, p) {
		return provider.Finding{}, fmt.Errorf("session %s is not this attempt's", sess.ID)
	}
	return s.fromSession(ctx, sess, p)
}

// fromSession is what a retrieved session (payment intent expanded) says
// about the attempt.
func (s *Stripe) fromSession(ctx context.Context, sess *stripeapi.CheckoutSession, p provider.Payment) (provider.Finding, error) {
	f := provider.Finding{Ref: p.Ref, ProviderRef: sess.ID}
	if sess.PaymentIntent != nil {
		f.Transaction = sess.PaymentIntent.ID
	}
	switch {
	case sess.Status == stripeapi.CheckoutSessionStatusComplete && sess.PaymentStatus == stripeapi.CheckoutSessionPaymentStatusPaid:
		total := sess.AmountTotal
		amt, err := sessionAmount(&total, string(sess.Currency))
		if err != nil {
			return provider.Finding{}, err
		}
		f.Status, f.Paid = order.Paid, amt
	case sess.Status == stripeapi.CheckoutSessionStatusComplete && sess.PaymentStatus == stripeapi.CheckoutSessionPaymentStatusUnpaid:
		f.Status, f.Note = order.OnHold, "completed at Stripe; waiting for a delayed payment method"
		f.HoldUntil = voucherExpiry(sess.PaymentIntent)
		if pi := sess.PaymentIntent; pi != nil && (pi.Status == stripeapi.PaymentIntentStatusRequiresPaymentMethod || pi.Status == stripeapi.PaymentIntentStatusCanceled) {
			f.Status, f.Note = order.Failed, "delayed payment failed at Stripe"
		}
	case sess.Status == stripeapi.CheckoutSessionStatusExpired:
		ends, err := s.endsAttempt(ctx, p.Ref, sess.ID, sess.ExpiresAt)
		if err != nil {
			return provider.Finding{}, err
		}
		if ends {
			f.Status, f.Note = order.Expired, "Stripe Checkout session expired"
		}
	}
	return f, nil
}

// Refund returns r.Amount of the attempt's payment under the request's
// idempotency key, so that an operator's repeated request never refunds
// twice. A refund Stripe has accepted (succeeded, or pending with the
// bank) counts; the finding carries the charge's total refunded so far,
// read from the refund's expanded charge.
func (s *Stripe) Refund(ctx context.Context, p provider.Payment, r provider.Refund) (provider.Finding, error) {
	intentID := p.Transaction
	if !validID(intentID, "pi_") {
		if p.ProviderRef == "" {
			return provider.Finding{}, errors.New("no Stripe session is recorded for this payment")
		}
		sess, err := s.session(ctx, p.ProviderRef, false)
		if err != nil {
			return provider.Finding{}, err
		}
		if !belongs(sess, p) || sess.PaymentIntent == nil {
			return provider.Finding{}, fmt.Errorf("session %s holds no payment of this order", sess.ID)
		}
		intentID = sess.PaymentIntent.ID
	}
	units, _, err := toStripe(r.Amount)
	if err != nil {
		return provider.Finding{}, fmt.Errorf("%w: %v", provider.ErrNotRefundable, err)
	}
	params := &stripeapi.RefundParams{PaymentIntent: stripeapi.String(intentID), Amount: stripeapi.Int64(units)}
	params.Context = ctx
	params.SetIdempotencyKey(r.Key)
	params.AddExpand("charge")
	params.AddMetadata(metaSite, p.Site)
	params.AddMetadata(metaRef, p.Ref)
	if s.Account != "" {
		params.SetStripeAccount(s.Account)
	}
	re, err := s.api.Refunds.New(params)
	if err != nil {
		return provider.Finding{}, apiError("refunding payment", err)
	}
	switch re.Status {
	case stripeapi.RefundStatusSucceeded, stripeapi.RefundStatusPending:
	default:
		return provider.Finding{}, fmt.Errorf("Stripe refund %s is %s", re.ID, re.Status)
	}
	if re.Charge == nil || re.Charge.Currency == "" {
		return provider.Finding{}, fmt.Errorf("Stripe refund %s came without its charge", re.ID)
	}
	total, err := fromStripe(re.Charge.AmountRefunded, string(re.Charge.Currency))
	if err != nil {
		return provider.Finding{}, err
	}
	return provider.Finding{Ref: p.Ref, EventID: re.ID, Status: order.Refunded, Refunded: total, Transaction: intentID,
		Note: "refunded through Stripe (" + re.ID + ")"}, nil
}

// Close expires the attempt's session if it is still open, so that the
// customer can no longer pay an order that ended here or an attempt that
// a new amount replaced. A session already completed or expired is left
// as it is (its payment, if any, arrives by webhook as usual).
func (s *Stripe) Close(ctx context.Context, p provider.Payment) error {
	if p.ProviderRef == "" {
		return nil
	}
	sess, err := s.session(ctx, p.ProviderRef, false)
	if isMissing(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !belongs(sess, p) || sess.Status != stripeapi.CheckoutSessionStatusOpen {
		return nil
	}
	params := &stripeapi.CheckoutSessionExpireParams{}
	params.Context = ctx
	if s.Account != "" {
		params.SetStripeAccount(s.Account)
	}
	if _, err := s.api.CheckoutSessions.Expire(sess.ID, params); err != nil {
		return apiError("expiring checkout session", err)
	}
	return nil
}
