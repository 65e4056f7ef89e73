package stripe_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/internal/apitap"
	"github.com/caddy-checkout/checkout/internal/stripetest"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/stripe"
)

// sessionID is the form of a Checkout Session id.
var sessionID = regexp.MustCompile(`^cs_[A-Za-z0-9_]+$`)

// FuzzReturn: whatever query the customer comes back with, Return reports
// the attempt paid only for the attempt's own paid session (named in
// session_id, or none named), with Stripe's amount; any other session_id is
// refused as malformed with nothing reported, and the only request Stripe
// gets is a read of a well-formed session id, at its own path.
func FuzzReturn(f *testing.F) {
	now := func() time.Time { return t0 }
	fake := stripetest.New(f, stripetest.WithClock(now))
	tap := apitap.New(f, fake.URL)
	prov := &stripe.Stripe{SecretKey: "sk_test_fuzzreturn", WebhookSecret: "whsec_fuzz_0123456789", APIURL: tap.URL}
	err := prov.Setup(provider.Env{Site: "shop", Now: now,
		Lookup: func(context.Context, string) (*order.Order, provider.Payment, error) {
			return nil, provider.Payment{}, errors.New("not used")
		}})
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	start := func(p provider.Payment) string {
		st, err := prov.Start(ctx, p)
		if err != nil || st.ProviderRef == "" {
			f.Fatalf("start: %v", err)
		}
		return st.ProviderRef
	}
	pay := payment("12.50", "USD", time.Hour)
	pay.ProviderRef = start(pay)
	if _, err := fake.Pay(pay.ProviderRef); err != nil {
		f.Fatal(err)
	}
	other := payment("12.50", "USD", 2*time.Hour) // another attempt, same amount
	otherID := start(other)
	tap.Take()

	for _, q := range []string{
		"session_id=" + pay.ProviderRef, "", "session_id=", "session_id=" + otherID,
		"session_id=cs_test_doesnotexist", "session_id=../../v1/charges", "session_id=" + pay.ProviderRef + "%2F..%2Fx",
		"session_id=" + pay.ProviderRef + "&session_id=" + otherID, "session_id=%zz", "session_id=cs_x;y", "x=1&session_id=cs_%0A",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, query string) {
		r := httptest.NewRequest(http.MethodGet, "/_checkout/return/stripe/"+pay.Ref, nil)
		r.URL.RawQuery = query
		found, err := prov.Return(ctx, r, pay)
		sent := tap.Take()
		id := r.URL.Query().Get("session_id")
		if id == "" {
			id = pay.ProviderRef
		}
		for _, s := range sent {
			if !sessionID.MatchString(id) || s != "GET /v1/checkout/sessions/"+id {
				t.Fatalf("query %q: Stripe got %q", query, s)
			}
		}
		if id == pay.ProviderRef {
			if err != nil || found.Status != order.Paid || found.Ref != pay.Ref || found.ProviderRef != pay.ProviderRef ||
				found.Paid.String() != pay.Amount.String() || found.Paid.Currency() != "USD" || !strings.HasPrefix(found.Transaction, "pi_") {
				t.Fatalf("query %q: the paid session read as %+v, %v", query, found, err)
			}
			return
		}
		if !errors.Is(err, provider.ErrMalformed) || !reflect.DeepEqual(found, provider.Finding{}) {
			t.Fatalf("query %q (session %q): %+v, %v; want it refused as malformed", query, id, found, err)
		}
		if len(sent) > 1 {
			t.Fatalf("query %q: Stripe got %q", query, sent)
		}
	})
}
