package komoju_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/internal/apitap"
	"github.com/caddy-checkout/checkout/internal/komojutest"
	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/komoju"
	"github.com/caddy-checkout/checkout/store"
)

// FuzzReturn: whatever query the customer comes back with, Return asks
// KOMOJU about the attempt's own session only (session_id naming it, or
// none) and then reports the attempt paid with KOMOJU's amount; a
// session_id naming anything else is refused as malformed with nothing
// reported and no request to KOMOJU at all.
func FuzzReturn(f *testing.F) {
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	fake := komojutest.New(f, komojutest.WithClock(clock))
	tap := apitap.New(f, fake.URL)
	pay := provider.Payment{Site: "shop", OrderID: "o1", Ref: order.NewRef(), Generation: 1, Amount: money.MustParse("1200", "JPY"),
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), ReturnURL: "https://shop.example/_checkout/return/komoju/r", Locale: "ja"}
	env := provider.Env{Site: "shop", Now: clock, Lookup: func(_ context.Context, ref string) (*order.Order, provider.Payment, error) {
		if ref != pay.Ref {
			return nil, provider.Payment{}, store.ErrNotFound
		}
		return &order.Order{Key: order.Key{Site: "shop", ID: pay.OrderID}, Status: order.Pending,
			Attempts: []order.Attempt{{Ref: pay.Ref, ProviderRef: pay.ProviderRef, Amount: pay.Amount}}}, pay, nil
	}}
	// Sessions are made straight at the fake (its session_url names its
	// own host, which Start checks); returns are read through the tap.
	starter := &komoju.Komoju{SecretKey: komojutest.SecretKey, WebhookSecret: webhookSecret, APIURL: fake.URL}
	k := &komoju.Komoju{SecretKey: komojutest.SecretKey, WebhookSecret: webhookSecret, APIURL: tap.URL}
	for _, p := range []*komoju.Komoju{starter, k} {
		if err := p.Setup(env); err != nil {
			f.Fatal(err)
		}
	}
	ctx := context.Background()
	st, err := starter.Start(ctx, pay)
	if err != nil || st.ProviderRef == "" {
		f.Fatalf("start: %v", err)
	}
	pay.ProviderRef = st.ProviderRef
	if _, err := fake.Pay(pay.ProviderRef, "credit_card", "4111111111111111"); err != nil {
		f.Fatal(err)
	}
	other, err := starter.Start(ctx, provider.Payment{Site: "shop", OrderID: "o2", Ref: order.NewRef(), Generation: 1, Amount: pay.Amount,
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), ReturnURL: pay.ReturnURL})
	if err != nil {
		f.Fatal(err)
	}
	tap.Take()

	for _, q := range []string{
		"session_id=" + pay.ProviderRef, "", "session_id=", "session_id=" + other.ProviderRef,
		"session_id=" + pay.ProviderRef + "&session_id=" + other.ProviderRef, "session_id=" + pay.ProviderRef + "%2F..",
		"session_id=../payments/x", "session_id=%zz", "session_id=" + pay.ProviderRef + ";x=1", "x=%00&session_id=A",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, query string) {
		r := httptest.NewRequest(http.MethodGet, "/_checkout/return/komoju/"+pay.Ref, nil)
		r.URL.RawQuery = query
		found, err := k.Return(ctx, r, pay)
		sent := tap.Take()
		id := r.URL.Query().Get("session_id")
		if id != "" && id != pay.ProviderRef {
			if !errors.Is(err, provider.ErrMalformed) || !reflect.DeepEqual(found, provider.Finding{}) || len(sent) != 0 {
				t.Fatalf("query %q (session %q): %+v, %v, KOMOJU got %q; want it refused as malformed, KOMOJU not asked", query, id, found, err, sent)
			}
			return
		}
		if err != nil || found.Status != order.Paid || found.Ref != pay.Ref || found.Paid.String() != pay.Amount.String() || found.Transaction == "" {
			t.Fatalf("query %q: the paid session read as %+v, %v", query, found, err)
		}
		for _, s := range sent {
			if s != "GET /api/v1/sessions/"+pay.ProviderRef {
				t.Fatalf("query %q: KOMOJU got %q", query, sent)
			}
		}
	})
}
