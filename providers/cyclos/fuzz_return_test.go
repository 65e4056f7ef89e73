package cyclos_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/internal/apitap"
	"github.com/caddy-checkout/checkout/internal/cyclostest"
	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/cyclos"
	"github.com/caddy-checkout/checkout/templates"
)

// FuzzReturn: whatever query the customer comes back from Cyclos with,
// Return refuses as malformed, with nothing reported and no request to
// Cyclos, an orderId or ticketNumber that is not the attempt's; otherwise
// it looks at the attempt's own ticket only (never one the query names)
// and reports the approved ticket paid with Cyclos's amount.
func FuzzReturn(f *testing.F) {
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	fake := cyclostest.New(f, cyclostest.WithClock(clock))
	fake.AddUser("alice", "alice-pw", "100.00")
	tap := apitap.New(f, fake.URL)
	c := &cyclos.Cyclos{URL: tap.URL, AccessClientToken: fake.AccessClientToken()}
	err := c.Setup(provider.Env{Site: "shop", Now: clock,
		Lookup: func(context.Context, string) (*order.Order, provider.Payment, error) {
			return nil, provider.Payment{}, errors.New("not used")
		},
		Report: func(context.Context, order.CauseKind, provider.Finding) (*order.Order, error) {
			return nil, errors.New("not used")
		},
		Render: func(http.ResponseWriter, *http.Request, int, string, templates.Page) {},
	})
	if err != nil {
		f.Fatal(err)
	}
	// Where the fake delivers the success webhook on approval; the return
	// is what is under test, so the webhook is only taken.
	shop := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	f.Cleanup(shop.Close)
	ctx := context.Background()
	start := func(orderID string) provider.Payment {
		p := provider.Payment{Site: "shop", OrderID: orderID, Ref: order.NewRef(), Generation: 1, Amount: money.MustParse("12.50", "USD"),
			Description: "Caddy mug", CreatedAt: now, ExpiresAt: now.Add(time.Hour),
			ReturnURL: shop.URL + "/_checkout/return/cyclos/r", WebhookURL: shop.URL + "/_checkout/webhook/cyclos"}
		st, err := c.Start(ctx, p)
		if err != nil || st.ProviderRef == "" {
			f.Fatalf("start: %v", err)
		}
		p.ProviderRef = st.ProviderRef
		return p
	}
	pay, other := start("1001"), start("1002")
	if _, err := fake.Approve(pay.ProviderRef, "alice"); err != nil {
		f.Fatal(err)
	}
	if _, err := fake.Approve(other.ProviderRef, "alice"); err != nil {
		f.Fatal(err)
	}
	tap.Take()

	own := url.Values{"orderId": {pay.Ref}, "ticketNumber": {pay.ProviderRef}}.Encode()
	for _, q := range []string{
		own, "", "orderId=" + pay.Ref, "ticketNumber=" + pay.ProviderRef,
		url.Values{"orderId": {other.Ref}, "ticketNumber": {other.ProviderRef}}.Encode(),
		url.Values{"orderId": {pay.Ref}, "ticketNumber": {other.ProviderRef}}.Encode(),
		"ticketNumber=" + pay.ProviderRef + "%2F..%2Fprocess", "ticketNumber=%zz&orderId=x", own + ";x", "ticketNumber=&orderId=",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, query string) {
		r := httptest.NewRequest(http.MethodGet, "/_checkout/return/cyclos/"+pay.Ref, nil)
		r.URL.RawQuery = query
		found, err := c.Return(ctx, r, pay)
		sent := tap.Take()
		q := r.URL.Query()
		ref, ticket := q.Get("orderId"), q.Get("ticketNumber")
		if ref != "" && ref != pay.Ref || ticket != "" && ticket != pay.ProviderRef {
			if !errors.Is(err, provider.ErrMalformed) || !reflect.DeepEqual(found, provider.Finding{}) || len(sent) != 0 {
				t.Fatalf("query %q: %+v, %v, Cyclos got %q; want it refused as malformed, Cyclos not asked", query, found, err, sent)
			}
			return
		}
		if err != nil || found.Status != order.Paid || found.Ref != pay.Ref || found.ProviderRef != pay.ProviderRef ||
			found.Paid.String() != pay.Amount.String() || found.Transaction == "" {
			t.Fatalf("query %q: the approved ticket read as %+v, %v", query, found, err)
		}
		ticketPath := "/api/tickets/" + url.PathEscape(pay.ProviderRef)
		for _, s := range sent {
			if s != "GET "+ticketPath && s != "POST "+ticketPath+"/process" {
				t.Fatalf("query %q: Cyclos got %q", query, sent)
			}
		}
	})
}
