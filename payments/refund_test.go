package payments_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/payments"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/store/bolt"
)

// ledgerProvider refunds like Stripe: one refund per idempotency key,
// reports the charge's total; failAfter makes the next call act and then
// time out.
type ledgerProvider struct {
	gateProvider
	mu        sync.Mutex
	keys      map[string]money.Amount
	total     money.Amount
	failAfter bool
	hook      func(total money.Amount) // called with the new total before answering
}

func (p *ledgerProvider) Refund(_ context.Context, pay provider.Payment, r provider.Refund) (provider.Finding, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.keys[r.Key]; !ok {
		p.keys[r.Key] = r.Amount
		p.total = p.total.Add(r.Amount)
	}
	if p.failAfter {
		p.failAfter = false
		return provider.Finding{}, errors.New("context deadline exceeded")
	}
	if p.hook != nil {
		p.hook(p.total)
	}
	return provider.Finding{Ref: pay.Ref, EventID: "re_" + r.Key, Status: order.Refunded, Refunded: p.total, Transaction: pay.Transaction}, nil
}

// ledgerEnv is a site whose provider "led" took o1's 10.00 USD (pi_1).
func ledgerEnv(t *testing.T) (*payments.Site, *ledgerProvider, store.Store, string, *time.Time) {
	t.Helper()
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "c.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	zero := money.MustParse("0.01", "USD")
	p := &ledgerProvider{gateProvider: gateProvider{name: "led"}, keys: map[string]money.Amount{}, total: zero.Sub(zero)}
	s, err := payments.New(payments.Config{Site: "shop", Expire: time.Hour, Providers: []provider.Provider{p}, Store: st,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	k := order.Key{Site: "shop", ID: "o1"}
	if _, err := st.Update(ctx, k, func(*order.Order) (*order.Order, []store.Delivery, error) {
		o, err := order.New(order.Intake{Key: k, Amount: money.MustParse("10.00", "USD")}, now, time.Hour)
		if err == nil {
			o.Current().Provider, o.Current().StartedAt = "led", now
		}
		return o, nil, err
	}); err != nil {
		t.Fatal(err)
	}
	o, _ := st.Get(ctx, k)
	ref := o.Current().Ref
	if _, out, err := s.Apply(ctx, order.ByWebhook, provider.Finding{Ref: ref, Status: order.Paid, Paid: o.Amount, Transaction: "pi_1",
		EventID: "e-paid", From: "led"}); err != nil || !out.Changed {
		t.Fatal(err, out)
	}
	return s, p, st, ref, &now
}

func usd(s string) money.Amount { return money.MustParse(s, "USD") }

// TestKeylessRetryAfterATimeoutRefundsOnce: the provider refunded but the
// answer was lost; its webhook recorded the refund; the operator's retry
// of the same amount soon after is a repeat, and nothing more goes back.
func TestKeylessRetryAfterATimeoutRefundsOnce(t *testing.T) {
	ctx := context.Background()
	s, p, _, ref, now := ledgerEnv(t)
	p.failAfter = true
	if _, _, err := s.Refund(ctx, "o1", payments.RefundRequest{Amount: usd("3.00")}); err == nil {
		t.Fatal("want the timeout")
	}
	if _, out, err := s.Apply(ctx, order.ByWebhook, provider.Finding{Ref: ref, Status: order.Refunded, Refunded: p.total,
		Transaction: "pi_1", EventID: "evt_refund", From: "led"}); err != nil || !out.Changed {
		t.Fatal(err, out)
	}
	*now = now.Add(10 * time.Second)
	o, repeated, err := s.Refund(ctx, "o1", payments.RefundRequest{Amount: usd("3.00")})
	if err != nil || !repeated || !o.Refunded().Equal(usd("3.00")) || !p.total.Equal(usd("3.00")) {
		t.Fatalf("the retry: repeated %v, %v, order refunded %s, provider refunded %s; want one refund of 3.00", repeated, err, o.Refunded(), p.total)
	}
	// Past the window, the same amount again is a second refund.
	*now = now.Add(payments.RepeatWindow)
	if o, repeated, err = s.Refund(ctx, "o1", payments.RefundRequest{Amount: usd("3.00")}); err != nil || repeated || !o.Refunded().Equal(usd("6.00")) {
		t.Fatalf("3.00 again after the window: repeated %v, %v, refunded %s", repeated, err, o.Refunded())
	}
}

// TestIdempotencyKeyOfAnotherAmountIsRefused: a key sent again with
// another amount is refused and refunds nothing; with its own amount it is
// a repeat, even when the provider's webhook recorded the refund first.
func TestIdempotencyKeyOfAnotherAmountIsRefused(t *testing.T) {
	ctx := context.Background()
	s, p, _, ref, _ := ledgerEnv(t)
	if _, _, err := s.Refund(ctx, "o1", payments.RefundRequest{Amount: usd("4.00"), Key: "rma-1"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Refund(ctx, "o1", payments.RefundRequest{Amount: usd("5.00"), Key: "rma-1"}); !errors.Is(err, payments.ErrKeyReused) {
		t.Fatalf("rma-1 with 5.00: %v, want ErrKeyReused", err)
	}
	if !p.total.Equal(usd("4.00")) {
		t.Fatalf("the provider refunded %s, want 4.00", p.total)
	}
	// The rest, whose webhook lands before the site records the answer:
	// the order is refunded by the webhook, and the request repeated
	// answers with the order.
	p.hook = func(total money.Amount) {
		if _, _, err := s.Apply(ctx, order.ByWebhook, provider.Finding{Ref: ref, Status: order.Refunded, Refunded: total,
			Transaction: "pi_1", EventID: "evt_rest", From: "led"}); err != nil {
			t.Error(err)
		}
	}
	o, _, err := s.Refund(ctx, "o1", payments.RefundRequest{Key: "rma-2"})
	if err != nil || o.Status != order.Refunded {
		t.Fatalf("the rest: %v %+v", err, o)
	}
	if o, repeated, err := s.Refund(ctx, "o1", payments.RefundRequest{Amount: usd("6.00"), Key: "rma-2"}); err != nil || !repeated || o.Status != order.Refunded {
		t.Fatalf("rma-2 again: repeated %v, %v", repeated, err)
	}
}
