package erc20_test

import (
	"context"
	"testing"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/providers/sandbox"
	"github.com/caddy-checkout/checkout/store"
)

// TestTransferToAForeignAttemptDoesNotHoldUpOthers: a confirmed transfer
// to an address whose attempt this provider cannot pay (its attempt is now
// another provider's) is refused by the site; the watcher drops it with an
// error in the log instead of retrying it for ever in front of every later
// transfer, so another order paid after it is still credited.
func TestTransferToAForeignAttemptDoesNotHoldUpOthers(t *testing.T) {
	ee := newERC20Env(t, func(c *handlers.Config) {
		c.Providers = append(c.Providers, &sandbox.Sandbox{})
	})
	ctx := context.Background()
	refA, addrA := ee.order("W-1", "1")
	o := ee.OrderByRef(refA)
	if _, err := ee.Store.Update(ctx, o.Key, func(cur *order.Order) (*order.Order, []store.Delivery, error) {
		cur.Current().Provider = sandbox.Name
		return cur, nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	refB, addrB := ee.order("W-2", "1")

	ee.chain.Transfer(ee.token, 0, addrA, units("0.00000001"))
	ee.chain.Commit()
	ee.chain.Transfer(ee.token, 0, addrB, units("1"))
	ee.chain.Commit()
	ee.chain.Mine(confirmations + 2)
	for range 3 {
		if _, err := ee.prov.PollOnce(ctx); err != nil {
			t.Fatalf("poll: %v", err)
		}
	}
	if o := ee.OrderByRef(refB); o.Status != order.Paid {
		t.Fatalf("order W-2, paid in full on chain, is %s: the watcher is held up by W-1's transfer", o.Status)
	}
	if o := ee.OrderByRef(refA); o.Status != order.Pending {
		t.Fatalf("order W-1, whose attempt is the sandbox's, became %s", o.Status)
	}
}
