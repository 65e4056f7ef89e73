package payments_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/payments"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/store/bolt"
)

// gateProvider starts at once, or, when gate is set, once gate is closed
// (a provider API call that takes a while: Stripe's session create).
type gateProvider struct {
	name    string
	gate    chan struct{}
	entered chan struct{}
	mu      sync.Mutex
	checked int
}

func (p *gateProvider) Name() string { return p.name }
func (p *gateProvider) Start(_ context.Context, pay provider.Payment) (provider.Start, error) {
	if p.gate != nil {
		close(p.entered)
		<-p.gate
	}
	return provider.Start{Redirect: "https://" + p.name + ".example/pay/" + pay.Ref, ProviderRef: p.name + "-" + pay.Ref}, nil
}
func (p *gateProvider) Check(context.Context, provider.Payment) (provider.Finding, error) {
	p.mu.Lock()
	p.checked++
	p.mu.Unlock()
	return provider.Finding{}, nil
}

// TestConcurrentStartsWithTwoProvidersGetAnAttemptEach: two clicks on
// the pay page (two tabs, or a double click on two buttons) start the
// same, not yet started, attempt with two providers while the first
// provider is still answering. Each provider gets an attempt of its own,
// so the payment the customer makes at either is applied: the webhook of
// the provider that finished first is not refused as another provider's.
func TestConcurrentStartsWithTwoProvidersGetAnAttemptEach(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "checkout.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	slow := &gateProvider{name: "slow", gate: make(chan struct{}), entered: make(chan struct{})}
	fast := &gateProvider{name: "fast"}
	ps, err := payments.New(payments.Config{Site: "shop", BasePath: "/_checkout", PublicURL: "https://shop.example",
		Expire: time.Hour, Providers: []provider.Provider{slow, fast}, Store: st, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	o, _, err := ps.Receive(ctx, order.Intake{Key: order.Key{ID: "A-1"}, Amount: money.MustParse("1200", "JPY")}, "")
	if err != nil {
		t.Fatal(err)
	}
	first := o.Current().Ref

	// Both requests read the order before either wrote (as servePayPost
	// does); the slow provider is still answering when the fast one is
	// chosen.
	done := make(chan error)
	go func() {
		_, _, err := ps.Start(ctx, payments.Origin{}, o, "slow")
		done <- err
	}()
	<-slow.entered
	stFast, _, err := ps.Start(ctx, payments.Origin{}, o, "fast")
	if err != nil || stFast.Redirect == "" {
		t.Fatalf("fast start: %+v %v", stFast, err)
	}
	close(slow.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	fastRef := stFast.Redirect[strings.LastIndex(stFast.Redirect, "/")+1:]
	cur, err := st.Get(ctx, order.Key{Site: "shop", ID: "A-1"})
	if err != nil {
		t.Fatal(err)
	}
	if fastRef == first || cur.Attempt(first).Provider != "slow" || cur.Attempt(fastRef) == nil || cur.Attempt(fastRef).Provider != "fast" {
		t.Fatalf("after both starts: the fast provider was given attempt %s; attempts %+v; want one attempt for each provider", fastRef, cur.Attempts)
	}
	if a := cur.Attempt(first); a.StartedAt.IsZero() || a.ProviderRef != "slow-"+first {
		t.Fatalf("the slow provider's attempt is not recorded as started there: %+v", a)
	}

	// The customer pays on the fast provider's page: its webhook applies.
	_, out, err := ps.Apply(ctx, order.ByWebhook, provider.Finding{Ref: fastRef, From: "fast", EventID: "evt_1",
		Status: order.Paid, Paid: money.MustParse("1200", "JPY"), Transaction: "txn_1"})
	if err != nil || !out.Changed {
		t.Fatalf("the fast provider's paid webhook: %+v %v", out, err)
	}
	// And the slow one cannot settle the fast one's attempt.
	if _, _, err := ps.Apply(ctx, order.ByWebhook, provider.Finding{Ref: fastRef, From: "slow", EventID: "evt_2",
		Status: order.Failed}); !errors.Is(err, order.ErrUnknownRef) {
		t.Fatalf("the slow provider reporting on the fast one's attempt: %v, want refused", err)
	}
}
