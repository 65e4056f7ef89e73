package komoju_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/handlers/handlerstest"
	"github.com/caddy-checkout/checkout/internal/komojutest"
	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/komoju"
)

func TestSetupRefusesBadSettingsWithoutShowingSecrets(t *testing.T) {
	env := provider.Env{Site: "shop", Now: time.Now, Lookup: func(context.Context, string) (*order.Order, provider.Payment, error) {
		return nil, provider.Payment{}, nil
	}}
	for name, tc := range map[string]struct {
		k    komoju.Komoju
		want string
	}{
		"fail/publishable-key": {komoju.Komoju{SecretKey: "pk_test_supersecretvalue", WebhookSecret: webhookSecret}, "secret_key"},
		"fail/no-key":          {komoju.Komoju{WebhookSecret: webhookSecret}, "secret_key"},
		"fail/short-webhook":   {komoju.Komoju{SecretKey: komojutest.SecretKey, WebhookSecret: "short"}, "webhook_secret"},
		"fail/payment-type":    {komoju.Komoju{SecretKey: komojutest.SecretKey, WebhookSecret: webhookSecret, PaymentTypes: []string{"Credit Card"}}, "payment_types"},
		"fail/locale":          {komoju.Komoju{SecretKey: komojutest.SecretKey, WebhookSecret: webhookSecret, Locale: "fr"}, "locale"},
		"fail/api-url-path":    {komoju.Komoju{SecretKey: komojutest.SecretKey, WebhookSecret: webhookSecret, APIURL: "https://komoju.com/api/v1"}, "api_url"},
		"fail/api-url-user":    {komoju.Komoju{SecretKey: komojutest.SecretKey, WebhookSecret: webhookSecret, APIURL: "https://user:supersecretvalue@komoju.com"}, "api_url"},
	} {
		err := tc.k.Setup(env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", name, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "supersecretvalue") || strings.Contains(err.Error(), webhookSecret) || strings.Contains(err.Error(), "short\"") {
			t.Errorf("%s: the error shows a secret: %v", name, err)
		}
	}
	ok := komoju.Komoju{SecretKey: komojutest.SecretKey, WebhookSecret: webhookSecret, PaymentTypes: []string{"konbini"}, Locale: "ja"}
	if err := ok.Setup(env); err != nil {
		t.Fatal(err)
	}
	if !ok.Accepts("JPY") || !ok.Accepts("USD") || ok.Accepts("0xBTC") || ok.Accepts("INR") {
		t.Fatal("Accepts disagrees with KOMOJU's currency list")
	}
	if got := ok.PageOrigins(); len(got) != 1 || got[0] != "https://komoju.com" {
		t.Fatalf("PageOrigins %v", got)
	}
}

// TestSessionLifeIsTheOrdersTimeLeft: expires_in_seconds comes from the
// attempt's stored creation, so a click an hour later sends the same body.
func TestSessionLifeIsTheOrdersTimeLeft(t *testing.T) {
	fake := komojutest.New(t)
	k := &komoju.Komoju{SecretKey: komojutest.SecretKey, WebhookSecret: webhookSecret, APIURL: fake.URL}
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	if err := k.Setup(provider.Env{Site: "shop", Now: func() time.Time { return now }, Lookup: func(context.Context, string) (*order.Order, provider.Payment, error) {
		return nil, provider.Payment{}, nil
	}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		left time.Duration
		want float64
	}{{30 * time.Minute, 1800}, {3 * 24 * time.Hour, 86400}, {20 * time.Second, 60}} {
		p := provider.Payment{Site: "shop", OrderID: "o1", Ref: order.NewRef(), Amount: money.MustParse("1200", "JPY"),
			CreatedAt: now, ExpiresAt: now.Add(tc.left), ReturnURL: "https://shop.example/_checkout/return/komoju/x", Locale: "ja"}
		if _, err := k.Start(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Hour) // a later click, same attempt
		if _, err := k.Start(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		reqs := fake.Requests()
		a, b := reqs[len(reqs)-2], reqs[len(reqs)-1]
		if a.Body["expires_in_seconds"] != tc.want || string(a.Raw) != string(b.Raw) || a.IdempotencyKey != b.IdempotencyKey {
			t.Fatalf("order with %s left: expires_in_seconds %v (want %v); bodies equal %v", tc.left, a.Body["expires_in_seconds"], tc.want, string(a.Raw) == string(b.Raw))
		}
		if a.Body["amount"] != float64(1200) || a.Body["default_locale"] != "ja" {
			t.Fatalf("body %s", a.Raw)
		}
	}
}

func TestStartErrors(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	ke := newEnv(t, func(c *handlers.Config, k *komoju.Komoju) {
		c.Logger = handlerstest.BufferLogger(&logs, &mu)
		k.PaymentTypes = []string{"credit_card", "carrier_pigeon"} // one KOMOJU does not know
	})
	c := ke.Client()
	r := ke.Post(c, "/buy", map[string][]string{"product": {"tea"}})
	if r.Code != http.StatusBadGateway || !strings.Contains(r.Body, "KOMOJU could not accept this payment") {
		t.Fatalf("KOMOJU refusing the session: %d\n%s", r.Code, r.Body)
	}
	mu.Lock()
	logged := logs.String()
	mu.Unlock()
	if !strings.Contains(logged, "bad_request") || !strings.Contains(logged, "payment_types") || strings.Contains(logged, komojutest.SecretKey) {
		t.Fatalf("operator log should name KOMOJU's code and param, never the key:\n%s", logged)
	}

	ke = newEnv(t)
	ke.fake.FailNext(1, http.StatusServiceUnavailable)
	r = ke.Post(ke.Client(), "/buy", map[string][]string{"product": {"tea"}})
	if r.Code != http.StatusServiceUnavailable || !strings.Contains(r.Body, "try again") {
		t.Fatalf("KOMOJU down: %d\n%s", r.Code, r.Body)
	}
	// It is back: the customer's next try works, under the same key.
	ke.buy(ke.Client(), "mug")
}
