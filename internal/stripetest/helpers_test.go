// Helpers shared by the tests: a real stripe-go client pointed at the fake,
// a settable clock and typical Checkout Session parameters.
package stripetest_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/caddy-checkout/checkout/internal/stripetest"
)

// newClient is a stripe-go client for srv, set up as stripe-go's own tests
// set one up for stripe-mock, without retries so each call is one request.
func newClient(srv *stripetest.Server) *client.API {
	return client.New("sk_test_123", stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL:               stripe.String(srv.URL),
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	}))
}

// clock is a settable clock for WithClock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_750_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// sessionParams is a one-line-item Checkout Session in payment mode.
func sessionParams(currency string, unitAmount, quantity int64) *stripe.CheckoutSessionParams {
	return &stripe.CheckoutSessionParams{
		Mode:       stripe.String(string(stripe.CheckoutSessionModePayment)),
		SuccessURL: stripe.String("https://shop.example/done?session={CHECKOUT_SESSION_ID}"),
		CancelURL:  stripe.String("https://shop.example/cart"),
		LineItems: []*stripe.CheckoutSessionLineItemParams{{
			PriceData: &stripe.CheckoutSessionLineItemPriceDataParams{
				Currency:    stripe.String(currency),
				UnitAmount:  stripe.Int64(unitAmount),
				ProductData: &stripe.CheckoutSessionLineItemPriceDataProductDataParams{Name: stripe.String("Tea")},
			},
			Quantity: stripe.Int64(quantity),
		}},
	}
}

// stripeError unwraps the *stripe.Error stripe-go returns for an API error.
func stripeError(t *testing.T, err error) *stripe.Error {
	t.Helper()
	var se *stripe.Error
	if !errors.As(err, &se) {
		t.Fatalf("error = %v (%T), want a *stripe.Error", err, err)
	}
	return se
}

// mustCreate creates a session or fails the test.
func mustCreate(t *testing.T, sc *client.API, p *stripe.CheckoutSessionParams) *stripe.CheckoutSession {
	t.Helper()
	cs, err := sc.CheckoutSessions.New(p)
	if err != nil {
		t.Fatalf("creating session: %v", err)
	}
	return cs
}
