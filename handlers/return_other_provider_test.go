package handlers_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/handlers/handlerstest"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/sandbox"
)

type quietReturner struct{}

func (quietReturner) Name() string { return "other" }
func (quietReturner) Start(_ context.Context, p provider.Payment) (provider.Start, error) {
	return provider.Start{Redirect: "https://other.example/" + p.Ref}, nil
}
func (quietReturner) Return(context.Context, *http.Request, provider.Payment) (provider.Finding, error) {
	return provider.Finding{}, nil // still open at the provider
}

// TestReturnThroughAnotherProviderIsRefused: anyone holding a pay link
// who opens /return/{another provider}/{ref} for an attempt of the
// sandbox gets the "return does not match" page (400), not a 500, and the
// order does not move.
func TestReturnThroughAnotherProviderIsRefused(t *testing.T) {
	e := handlerstest.New(t, func(c *handlers.Config) {
		c.Providers = []provider.Provider{&sandbox.Sandbox{}, quietReturner{}}
	})
	r := e.API(http.MethodPost, "/_checkout/api/orders", e.SecretText, `{"order_id":"R-1","amount":"12.00","currency":"USD"}`)
	if r.Code != http.StatusCreated {
		t.Fatalf("api: %d %s", r.Code, r.Body)
	}
	o, err := e.Store.Get(context.Background(), order.Key{Site: "shop", ID: "R-1"})
	if err != nil {
		t.Fatal(err)
	}
	ref := o.Current().Ref
	e.Get(e.Client(), "/_checkout/pay/"+ref+"?provider=sandbox")
	if p := e.OrderByRef(ref).Current().Provider; p != "sandbox" {
		t.Fatalf("attempt provider %q, want sandbox", p)
	}
	got := e.Get(e.Client(), "/_checkout/return/other/"+ref)
	if got.Code != http.StatusBadRequest {
		t.Fatalf("GET /return/other/{a sandbox attempt} = %d, want 400", got.Code)
	}
	if o := e.OrderByRef(ref); o.Status != order.Pending || len(o.History) != 1 {
		t.Fatalf("order after the return through another provider: %s with %d events", o.Status, len(o.History))
	}
}
