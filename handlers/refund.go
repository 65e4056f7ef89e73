// Refunds an operator asks for through the admin API: the provider that
// took the payment refunds it in full, and the order moves to refunded
// with the shop's callback, like any other verified change.
package handlers

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
)

// ErrNotRefundable is provider.ErrNotRefundable, kept for callers of
// Refund: an order that is not paid, or whose provider cannot refund
// through its API here.
var ErrNotRefundable = provider.ErrNotRefundable

// Refund refunds a paid order in full through the provider that took the
// payment. Repeating it is safe: the provider is asked under the same
// idempotency key, and the order is refunded once.
func (s *Site) Refund(ctx context.Context, id string) (*order.Order, error) {
	o, err := s.cfg.Store.Get(ctx, order.Key{Site: s.cfg.Site, ID: id})
	if err != nil {
		return nil, err
	}
	if o.Status == order.Refunded {
		return o, nil
	}
	if o.Status != order.Paid {
		return nil, fmt.Errorf("%w: the order is %s; only a paid order can be refunded", ErrNotRefundable, o.Status)
	}
	att := o.PaidAttempt()
	if att == nil {
		return nil, fmt.Errorf("%w: no record of the attempt that paid it", ErrNotRefundable)
	}
	p, ok := s.providers[o.PaidWith]
	rf, can := p.(provider.Refunder)
	if !ok || !can {
		return nil, fmt.Errorf("%w: provider %q cannot refund through the admin API; refund it with the provider and the order follows its webhook", ErrNotRefundable, o.PaidWith)
	}
	f, err := rf.Refund(ctx, s.payment(nil, o, att, o.PaidWith))
	if err != nil {
		s.log.Error("refunding order", zap.String("site", o.Site), zap.String("order", o.ID), zap.String("provider", o.PaidWith), zap.Error(err))
		return nil, err
	}
	f.Ref = att.Ref
	o, out, err := s.Apply(ctx, order.ByAdmin, f)
	if err != nil {
		return nil, err
	}
	if out.Err != nil {
		return o, fmt.Errorf("the provider refunded, but the order refused the change: %w", out.Err)
	}
	return o, nil
}
