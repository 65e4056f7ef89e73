// The site's payment logic is package payments; these are the site's ways
// into it, with what a request says about the customer (the public URL
// they used, their language).
package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/payments"
	"github.com/caddy-checkout/checkout/provider"
)

// origin is what r says about how the customer reaches the site.
func (s *Site) origin(r *http.Request) payments.Origin {
	return payments.Origin{Public: s.publicURL(r), Locale: s.cfg.Pages.Locale(r)}
}

// Receive stores the order the shop announced: payments.Site.Receive.
func (s *Site) Receive(ctx context.Context, in order.Intake, startWith string) (*order.Order, order.IntakeResult, error) {
	return s.pay.Receive(ctx, in, startWith)
}

// Apply applies a verified finding: payments.Site.Apply.
func (s *Site) Apply(ctx context.Context, cause order.CauseKind, f provider.Finding) (*order.Order, order.Outcome, error) {
	return s.pay.Apply(ctx, cause, f)
}

// Expire ends open orders whose deadline passed: payments.Site.Expire.
func (s *Site) Expire(ctx context.Context, limit int) (int, error) { return s.pay.Expire(ctx, limit) }

// Retain erases the customer data of orders final for longer than
// retain_personal: payments.Site.Retain.
func (s *Site) Retain(ctx context.Context, limit int) (int, error) { return s.pay.Retain(ctx, limit) }

// Reconcile asks providers about stale attempts: payments.Site.Reconcile.
func (s *Site) Reconcile(ctx context.Context, age time.Duration, limit int) (int, error) {
	return s.pay.Reconcile(ctx, age, limit)
}

// Refund returns all or part of a paid order's payment:
// payments.Site.Refund.
func (s *Site) Refund(ctx context.Context, id string, req RefundRequest) (o *order.Order, repeated bool, err error) {
	return s.pay.Refund(ctx, id, req)
}

// RefundRequest is payments.RefundRequest: an amount (zero: all that is
// left) and an idempotency key.
type RefundRequest = payments.RefundRequest

// Errors of Refund: provider.ErrNotRefundable (the provider cannot refund
// this payment) and payments.ErrRefundTooLarge (more than is left).
var (
	ErrNotRefundable  = provider.ErrNotRefundable
	ErrRefundTooLarge = payments.ErrRefundTooLarge
	ErrKeyReused      = payments.ErrKeyReused
)

// start asks a provider to take the current attempt: payments.Site.Start
// for the customer of r (nil outside a request).
func (s *Site) start(ctx context.Context, r *http.Request, o *order.Order, name string) (provider.Start, *order.Order, error) {
	return s.pay.Start(ctx, s.origin(r), o, name)
}

// payment is what a provider is told about an attempt, for r's customer.
func (s *Site) payment(r *http.Request, o *order.Order, att *order.Attempt, name string) provider.Payment {
	return s.pay.Payment(s.origin(r), o, att, name)
}
