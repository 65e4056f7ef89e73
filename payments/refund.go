// This file is an operator's refunds, all of a payment or part, each
// made once however often it is asked.

package payments

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
)

// RefundRequest is an operator's refund: Amount (zero: all that is
// left) and an idempotency key (optional).
type RefundRequest struct {
	Amount money.Amount
	// Key names the request: the same key refunds once, however often
	// and however concurrently it is sent. Without one, the same amount
	// asked again within RepeatWindow of the last refund of that amount
	// (a double click, a retried call) is the same request.
	Key string
}

// RepeatWindow is how long a refund made without an Idempotency-Key
// stands for a repeat of the same amount: a second refund of that amount
// within it needs a key of its own.
const RepeatWindow = time.Minute

// Errors of Refund: a refund of more than is left of the payment, and an
// idempotency key sent again with another amount.
var (
	ErrRefundTooLarge = errors.New("refund is more than what is left of the payment")
	ErrKeyReused      = errors.New("Idempotency-Key already used for another refund")
)

// Refund returns all or part of a paid order's payment through the
// provider that took it, and reports whether the request repeated one
// already made (the order is then returned as it is). Repeating a
// request is safe: a key already recorded on the order, or the same
// amount without a key within RepeatWindow, answers with the order; the
// provider is asked under the request's idempotency key; the order
// records each refund once.
func (s *Site) Refund(ctx context.Context, id string, req RefundRequest) (o *order.Order, repeated bool, err error) {
	// One refund of the site at a time in this process: requests sent
	// together find the first one recorded.
	s.refunding.Lock()
	defer s.refunding.Unlock()
	if o, err = s.cfg.Store.Get(ctx, order.Key{Site: s.cfg.Site, ID: id}); err != nil {
		return nil, false, err
	}
	if req.Key != "" {
		if ev := o.Event(refundCause(o, req.Key)); ev != nil {
			if req.Amount.Valid() && ev.Asked.Valid() && !ev.Asked.Equal(req.Amount) {
				return nil, false, fmt.Errorf("%w: it asked for %s %s, this asks for %s", ErrKeyReused, ev.Asked, ev.Asked.Currency(), req.Amount)
			}
			return o, true, nil
		}
	}
	if o.Status == order.Refunded && !req.Amount.Valid() {
		return o, true, nil
	}
	if o.Status != order.Paid {
		return nil, false, fmt.Errorf("%w: the order is %s; only a paid order can be refunded", provider.ErrNotRefundable, o.Status)
	}
	left := o.Refundable()
	amount := req.Amount
	if !amount.Valid() {
		amount = left
	}
	switch {
	case amount.Currency() != o.Amount.Currency():
		return nil, false, fmt.Errorf("%w: refund in %s of an order in %s", ErrRefundTooLarge, amount.Currency(), o.Amount.Currency())
	case amount.IsZero():
		return nil, false, fmt.Errorf("%w: a refund must be more than zero", ErrRefundTooLarge)
	}
	if req.Key == "" {
		// The same amount again soon after a refund of it, however that
		// refund was recorded (this request's first try, whose answer was
		// lost, or the provider's webhook of it): a repeat.
		if req.Amount.Valid() && o.RefundedRecently(amount, s.now().Add(-RepeatWindow)) {
			return o, true, nil
		}
		// Named by what it sees, so that the same request from another
		// instance at the same moment is the same refund at the provider.
		req.Key = "auto:" + o.Refunded().String() + ":" + amount.String()
	}
	if amount.Cmp(left) > 0 {
		return nil, false, fmt.Errorf("%w: %s %s asked, %s %s left of %s %s", ErrRefundTooLarge,
			amount, amount.Currency(), left, left.Currency(), o.Amount, o.Amount.Currency())
	}
	att := o.PaidAttempt()
	if att == nil {
		return nil, false, fmt.Errorf("%w: no record of the attempt that paid it", provider.ErrNotRefundable)
	}
	p, ok := s.providers[o.PaidWith]
	rf, can := p.(provider.Refunder)
	if !ok || !can {
		return nil, false, fmt.Errorf("%w: provider %q cannot refund through the admin API; refund it with the provider and the order follows its webhook", provider.ErrNotRefundable, o.PaidWith)
	}
	cause := refundCause(o, req.Key)
	f, err := rf.Refund(ctx, s.Payment(Origin{}, o, att, o.PaidWith), provider.Refund{
		Amount: amount, Before: o.RefundedAtProvider(), Key: cause.Ref, Partial: amount.Cmp(left) < 0,
	})
	if err != nil {
		s.log.Error("refunding order", zap.String("site", o.Site), zap.String("order", o.ID), zap.String("provider", o.PaidWith), zap.Error(err))
		return nil, false, err
	}
	f.Ref, f.From, f.EventID, f.Asked = att.Ref, att.Provider, cause.Ref, amount
	if f.Transaction == "" {
		f.Transaction = o.Transaction
	}
	o, out, err := s.Apply(ctx, order.ByAdmin, f)
	if err != nil {
		return nil, false, err
	}
	if out.Err != nil {
		return o, false, fmt.Errorf("the provider refunded, but the order refused the change: %w", out.Err)
	}
	return o, false, nil
}

// refundCause names an operator's refund request in the order's history:
// the provider's idempotency key, made of the attempt that paid and the
// request's key (hashed, so that any key fits every provider's limit).
func refundCause(o *order.Order, key string) order.Cause {
	sum := sha256.Sum256([]byte(o.Site + "\x00" + o.ID + "\x00" + o.PaidRef + "\x00" + key))
	return order.Cause{Kind: order.ByAdmin, Ref: "checkout-refund-" + hex.EncodeToString(sum[:16])}
}
