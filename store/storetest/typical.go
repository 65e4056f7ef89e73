// Orders of a typical life, written the same way into any store, so that
// the stores' bytes-per-order figures (BENCHMARKS.md §8 and §9) compare.
package storetest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
)

// WriteTypicalOrders writes n orders of a typical life into s, from
// writers goroutines at once: each is created with a description and an
// e-mail address, paid by a provider's webhook (its history two events)
// and written in one Update with its order.paid callback. Then every
// callback is claimed and saved as delivered, as the notifier does within
// seconds. The orders are site "shop", ids "order-1" to "order-<n>".
func WriteTypicalOrders(ctx context.Context, s store.Store, n, writers int) error {
	amount := money.MustParse("75.00", "USD")
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for failed.Load() == nil {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				if err := writeTypicalOrder(ctx, s, i, amount); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if p := failed.Load(); p != nil {
		return *p
	}
	delivered := 0
	for delivered < n {
		due, err := s.Due(ctx, time.Unix(1_900_000_000, 0), n-delivered)
		if err != nil {
			return fmt.Errorf("claiming the callbacks: %w", err)
		}
		if len(due) == 0 {
			return fmt.Errorf("%d of %d callbacks due, want all", delivered, n)
		}
		for _, d := range due {
			d.State = store.DeliveryDelivered
			if err := s.SaveDelivery(ctx, d); err != nil {
				return fmt.Errorf("saving callback %s: %w", d.ID, err)
			}
		}
		delivered += len(due)
	}
	return nil
}

func writeTypicalOrder(ctx context.Context, s store.Store, i int64, amount money.Amount) error {
	now := time.Unix(1_800_000_000, 0).Add(time.Duration(i) * time.Millisecond)
	key := order.Key{Site: "shop", ID: "order-" + strconv.FormatInt(i, 10)}
	o, err := order.New(order.Intake{Key: key, Amount: amount, Description: "Gopher T-shirt, size M, blue",
		Email: "customer@example.com"}, now, 30*time.Minute)
	if err != nil {
		return err
	}
	o.Current().Provider = "stripe"
	if out := o.Apply(order.Transition{To: order.Paid, Ref: o.Current().Ref, Paid: amount, Provider: "stripe",
		Transaction: "pi_3PZxv2Lkdi0Hfx5s1ABCDEFG", Cause: order.Cause{Kind: order.ByWebhook, Ref: "evt_1PZxv2Lkdi0Hfx5s"}}, now); out.Err != nil || !out.Changed {
		return fmt.Errorf("paying %s: %+v", key.ID, out)
	}
	body := []byte(`{"type":"order.paid","timestamp":"2026-11-21T07:00:00Z","data":{"order_id":"` + key.ID +
		`","status":"paid","amount":"75.00","currency":"USD","provider":"stripe","transaction":"pi_3PZxv2Lkdi0Hfx5s1ABCDEFG","attempt":1,"paid_at":"2026-11-21T06:59:58Z","late":false,"metadata":{}}}`)
	d := store.Delivery{ID: "msg_" + key.ID, Type: "order.paid", URL: "https://shop.example/payments/webhook", Body: body, NextAt: now}
	_, err = s.Update(ctx, key, func(*order.Order) (*order.Order, []store.Delivery, error) {
		return o, []store.Delivery{d}, nil
	})
	return err
}
