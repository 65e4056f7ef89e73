package stripe

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/caddy-checkout/checkout/provider"
)

const (
	testSecret  = "whsec_test_0123456789abcdef"
	otherSecret = "whsec_test_fedcba9876543210"
)

// signed is a Stripe-Signature header made by stripe-go's test helper.
func signed(body []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: at}).Header
}

func TestVerifyStripeSignature(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"evt_1","type":"checkout.session.completed"}`)
	good := signed(body, testSecret, now)
	sigNew := webhook.ComputeSignature(now, body, testSecret)
	sigOld := webhook.ComputeSignature(now, body, otherSecret)
	rolling := fmt.Sprintf("t=%d,v1=%x,v1=%x,v0=deadbeef", now.Unix(), sigOld, sigNew)

	cases := []struct {
		name    string
		header  string
		body    []byte
		secret  string
		at      time.Time
		wantErr bool
	}{
		{"ok", good, body, testSecret, now, false},
		{"ok/299s-late", good, body, testSecret, now.Add(299 * time.Second), false},
		{"ok/rolling-new-secret", rolling, body, testSecret, now, false},
		{"ok/rolling-old-secret", rolling, body, otherSecret, now, false},
		{"fail/stale-301s", good, body, testSecret, now.Add(301 * time.Second), true},
		{"fail/from-the-future", good, body, testSecret, now.Add(-301 * time.Second), true},
		{"fail/forged-other-secret", signed(body, otherSecret, now), body, testSecret, now, true},
		{"fail/tampered-body", good, []byte(`{"id":"evt_1","type":"checkout.session.expired"}`), testSecret, now, true},
		{"fail/empty", "", body, testSecret, now, true},
		{"fail/no-v1", fmt.Sprintf("t=%d,v0=%x", now.Unix(), sigNew), body, testSecret, now, true},
		{"fail/no-t", fmt.Sprintf("v1=%x", sigNew), body, testSecret, now, true},
		{"fail/bad-t", fmt.Sprintf("t=abc,v1=%x", sigNew), body, testSecret, now, true},
		{"fail/timestamp-moved", fmt.Sprintf("t=%d,v1=%x", now.Unix()+1, sigNew), body, testSecret, now, true},
		{"fail/garbage", "garbage", body, testSecret, now, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := verify(c.header, c.body, c.secret, c.at)
			if c.wantErr != (err != nil) {
				t.Fatalf("verify: %v, want error %v", err, c.wantErr)
			}
			if err != nil && !errors.Is(err, provider.ErrUnauthenticated) {
				t.Fatalf("error %v is not ErrUnauthenticated (the core answers 401 for those)", err)
			}
		})
	}
}
