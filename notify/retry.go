// This file is the operator's redelivery (SPEC §9, POST
// /checkout/deliveries/{id}/retry): a dead, gone or waiting callback is
// queued to be tried now, with a fresh retry horizon.

package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/caddy-checkout/checkout/store"
)

// Errors of Retry, besides store.ErrNotFound (passed through unchanged).
var (
	// ErrDelivered refuses to resend a callback that the shop accepted:
	// the shop has it, and a redelivery would only test its dedupe.
	ErrDelivered = errors.New("the shop already accepted this callback; there is nothing to redeliver")
	// ErrBusy means a try of this delivery is in flight right now; its
	// outcome is about to be saved, and a retry saved alongside would
	// overwrite it. Asking again a moment later works.
	ErrBusy = errors.New("this callback is being sent right now; ask again in a moment")
)

// Retry queues a delivery for a try now, whatever its state but
// delivered, and returns it as saved. Its retry horizon starts again now
// and its try count starts again at 0, so that a failure after the
// redelivery is retried on the schedule from its start (5 s, 5 min, ...)
// for a full horizon, rather than once a day from where it stopped. Its
// last status and error are kept until the next try replaces them.
func (n *Notifier) Retry(ctx context.Context, id string) (*store.Delivery, error) {
	if !n.claim(id) {
		return nil, fmt.Errorf("delivery %s: %w", id, ErrBusy)
	}
	d, err := n.requeue(ctx, id)
	n.release(id)
	if err == nil {
		n.Wake() // after the release, or the loop would find it still claimed
	}
	return d, err
}

func (n *Notifier) requeue(ctx context.Context, id string) (*store.Delivery, error) {
	d, err := n.store.Delivery(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.State == store.DeliveryDelivered {
		return nil, fmt.Errorf("delivery %s: %w", id, ErrDelivered)
	}
	from := d.State
	now := n.now()
	d.State = store.DeliveryPending
	d.RetryFrom = now
	d.NextAt = now
	d.Tries = 0
	if err := n.store.SaveDelivery(ctx, d); err != nil {
		return nil, fmt.Errorf("delivery %s: saving redelivery: %w", id, err)
	}
	n.log.Info("callback queued for redelivery by an operator",
		slog.String("delivery", d.ID), slog.String("site", d.Site), slog.String("order", d.OrderID),
		slog.String("type", d.Type), slog.String("was", string(from)))
	return d, nil
}
