// Tests of what one try does and records, driven with Tick and the
// injected clock against a real bbolt store and a loopback shop.

package notify_test

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/notify"
	"github.com/caddy-checkout/checkout/sign"
	"github.com/caddy-checkout/checkout/store"
)

// verify checks a hit as a shop would, with the secret it knows.
func verify(t *testing.T, secret sign.Secret, h hit, now time.Time, wantID string) {
	t.Helper()
	id, err := secret.VerifyWebhook(h.Header, h.Body, now)
	if err != nil {
		t.Fatalf("shop cannot verify the callback: %v", err)
	}
	if id != wantID {
		t.Fatalf("webhook-id = %q, want the delivery id %q", id, wantID)
	}
}

func TestDeliveredOnce(t *testing.T) {
	e := newEnv(t)
	s := newShop(t, nil)
	d := e.add("1001", s.URL+"/hook")

	e.tick()
	e.clock.Add(100 * time.Hour)
	e.tick()

	hits := s.Hits()
	if len(hits) != 1 {
		t.Fatalf("shop got %d callbacks, want 1", len(hits))
	}
	h := hits[0]
	verify(t, e.secret, h, e.clock.Now().Add(-100*time.Hour), d.ID)
	if string(h.Body) != string(d.Body) {
		t.Errorf("body = %s, want the stored bytes %s", h.Body, d.Body)
	}
	if ct := h.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if ua := h.Header.Get("User-Agent"); ua != "caddy-checkout" {
		t.Errorf("User-Agent = %q", ua)
	}
	got := e.get(d.ID)
	if got.State != store.DeliveryDelivered || got.LastStatus != http.StatusNoContent || got.Tries != 1 {
		t.Errorf("after 204: state %s, status %d, tries %d", got.State, got.LastStatus, got.Tries)
	}
	if st := e.n.Stats(); !reflect.DeepEqual(st, notify.Stats{Delivered: 1}) {
		t.Errorf("Stats = %+v", st)
	}
}

func TestShopDownRetriedWithSameIDAndFreshSignature(t *testing.T) {
	// Jitter factor 1.1: the delays are the schedule's plus 10 %.
	e := newEnv(t, func(c *notify.Config) { c.Rand = func() float64 { return 0.75 } })
	s := newShop(t, status(http.StatusInternalServerError))
	d := e.add("1002", s.URL+"/hook")
	start := e.clock.Now()

	// Three failures, each retried exactly when the schedule says, not before.
	wantDelays := []time.Duration{5500 * time.Millisecond, 330 * time.Second, 33 * time.Minute}
	var stamps []string
	for i, delay := range wantDelays {
		tryAt := e.clock.Now()
		e.tick()
		hits := s.Hits()
		if len(hits) != i+1 {
			t.Fatalf("try %d: shop got %d callbacks, want %d", i+1, len(hits), i+1)
		}
		verify(t, e.secret, hits[i], tryAt, d.ID)
		stamps = append(stamps, hits[i].Header.Get("webhook-timestamp"))

		got := e.get(d.ID)
		if got.State != store.DeliveryPending || got.Tries != i+1 || got.LastStatus != 500 {
			t.Fatalf("try %d: state %s, tries %d, status %d", i+1, got.State, got.Tries, got.LastStatus)
		}
		if !strings.Contains(got.LastError, "500") {
			t.Errorf("try %d: LastError = %q, want the status", i+1, got.LastError)
		}
		if !got.LastAt.Equal(tryAt) || !got.RetryFrom.Equal(start) {
			t.Errorf("try %d: LastAt %v, RetryFrom %v", i+1, got.LastAt, got.RetryFrom)
		}
		if want := tryAt.Add(delay); !got.NextAt.Equal(want) {
			t.Fatalf("try %d: NextAt = %v, want %v (+%v)", i+1, got.NextAt, want, delay)
		}

		e.clock.Set(got.NextAt.Add(-time.Millisecond))
		e.tick()
		if n := len(s.Hits()); n != i+1 {
			t.Fatalf("try %d: retried before NextAt", i+1)
		}
		e.clock.Set(got.NextAt)
	}

	s.setAnswer(status(http.StatusOK))
	tryAt := e.clock.Now()
	e.tick()
	hits := s.Hits()
	if len(hits) != 4 {
		t.Fatalf("shop got %d callbacks, want 4", len(hits))
	}
	verify(t, e.secret, hits[3], tryAt, d.ID)
	stamps = append(stamps, hits[3].Header.Get("webhook-timestamp"))
	for i := 1; i < len(stamps); i++ {
		if stamps[i] == stamps[i-1] {
			t.Errorf("try %d reused webhook-timestamp %s", i+1, stamps[i])
		}
	}
	if got := e.get(d.ID); got.State != store.DeliveryDelivered || got.LastError != "" {
		t.Errorf("after recovery: state %s, LastError %q", got.State, got.LastError)
	}
	if st := e.n.Stats(); !reflect.DeepEqual(st, notify.Stats{Delivered: 1, Failed: 3}) {
		t.Errorf("Stats = %+v", st)
	}
}

func TestGoneStopsRetrying(t *testing.T) {
	e := newEnv(t)
	s := newShop(t, status(http.StatusGone))
	d := e.add("1003", s.URL+"/hook")

	e.tick()
	for range 5 {
		e.clock.Add(24 * time.Hour)
		e.tick()
	}
	if n := len(s.Hits()); n != 1 {
		t.Fatalf("shop got %d callbacks after 410, want 1", n)
	}
	got := e.get(d.ID)
	if got.State != store.DeliveryGone || got.LastStatus != http.StatusGone {
		t.Errorf("after 410: state %s, status %d", got.State, got.LastStatus)
	}
	if st := e.n.Stats(); !reflect.DeepEqual(st, notify.Stats{Gone: 1}) {
		t.Errorf("Stats = %+v", st)
	}
	if !strings.Contains(e.logs.String(), "level=WARN") {
		t.Errorf("410 not logged at warn:\n%s", e.logs)
	}
}

func TestRedirectIsAFailureAndNotFollowed(t *testing.T) {
	var targetHits atomic.Int32
	target := newShop(t, func(w http.ResponseWriter, r *http.Request, h hit) {
		targetHits.Add(1)
	})
	e := newEnv(t)
	s := newShop(t, func(w http.ResponseWriter, r *http.Request, h hit) {
		http.Redirect(w, r, target.URL+"/elsewhere", http.StatusFound)
	})
	d := e.add("1004", s.URL+"/hook")

	e.tick()
	if n := targetHits.Load(); n != 0 {
		t.Fatalf("redirect target fetched %d times", n)
	}
	got := e.get(d.ID)
	if got.State != store.DeliveryPending || got.Tries != 1 || got.LastStatus != http.StatusFound {
		t.Errorf("after 302: state %s, tries %d, status %d", got.State, got.Tries, got.LastStatus)
	}
	if !strings.Contains(got.LastError, "not followed") {
		t.Errorf("LastError = %q, want it to say redirects are not followed", got.LastError)
	}
}

func TestRedirectNotFollowedWithCallersClient(t *testing.T) {
	var targetHits atomic.Int32
	target := newShop(t, func(w http.ResponseWriter, r *http.Request, h hit) { targetHits.Add(1) })
	caller := &http.Client{Timeout: 5 * time.Second} // follows redirects by default
	e := newEnv(t, func(c *notify.Config) { c.Client = caller })
	s := newShop(t, func(w http.ResponseWriter, r *http.Request, h hit) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	})
	e.add("1005", s.URL)
	e.tick()
	if n := targetHits.Load(); n != 0 {
		t.Fatalf("redirect target fetched %d times", n)
	}
	if caller.CheckRedirect != nil {
		t.Errorf("New changed the caller's client")
	}
}

func TestDeadAfterHorizon(t *testing.T) {
	e := newEnv(t)
	s := newShop(t, status(http.StatusServiceUnavailable))
	d := e.add("1006", s.URL+"/hook")
	start := e.clock.Now()

	var lastTry time.Time
	for tries := 1; ; tries++ {
		if tries > 20 {
			t.Fatal("still pending after 20 tries")
		}
		lastTry = e.clock.Now()
		e.tick()
		got := e.get(d.ID)
		if got.State == store.DeliveryDead {
			break
		}
		if got.State != store.DeliveryPending {
			t.Fatalf("try %d: state %s", tries, got.State)
		}
		if got.NextAt.After(start.Add(72 * time.Hour)) {
			t.Fatalf("try %d: next try %v is past the horizon", tries, got.NextAt)
		}
		e.clock.Set(got.NextAt)
	}
	// The schedule's nine delays reach 51 h 35 min; the tenth try is
	// moved to the horizon rather than dropped.
	if n := len(s.Hits()); n != 10 {
		t.Errorf("shop got %d tries, want 10", n)
	}
	if want := start.Add(72 * time.Hour); !lastTry.Equal(want) {
		t.Errorf("last try at %v, want at the horizon %v", lastTry, want)
	}
	e.clock.Add(48 * time.Hour)
	e.tick()
	if n := len(s.Hits()); n != 10 {
		t.Errorf("a dead delivery was tried again")
	}
	if st := e.n.Stats(); !reflect.DeepEqual(st, notify.Stats{Failed: 10, Dead: 1, DeadBySite: map[string]uint64{site: 1}}) {
		t.Errorf("Stats = %+v", st)
	}
	if !strings.Contains(e.logs.String(), "level=ERROR") {
		t.Errorf("dead letter not logged at error")
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	tests := []struct {
		name   string
		code   int
		header func(now time.Time) string
		after  time.Duration
	}{
		{"429 seconds", http.StatusTooManyRequests, func(time.Time) string { return "3600" }, time.Hour},
		{"503 date", http.StatusServiceUnavailable, func(now time.Time) string {
			return now.Add(2 * time.Hour).Format(http.TimeFormat)
		}, 2 * time.Hour},
		{"shorter than the schedule", http.StatusTooManyRequests, func(time.Time) string { return "1" }, 5 * time.Second},
		{"capped at a day", http.StatusTooManyRequests, func(time.Time) string { return "2592000" }, 24 * time.Hour},
		{"ignored on 500", http.StatusInternalServerError, func(time.Time) string { return "3600" }, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			s := newShop(t, func(w http.ResponseWriter, r *http.Request, h hit) {
				w.Header().Set("Retry-After", tt.header(e.clock.Now()))
				w.WriteHeader(tt.code)
			})
			d := e.add("1007", s.URL)
			now := e.clock.Now()
			e.tick()
			got := e.get(d.ID)
			if want := now.Add(tt.after); !got.NextAt.Equal(want) {
				t.Errorf("NextAt = +%v, want +%v", got.NextAt.Sub(now), tt.after)
			}
		})
	}
}

func TestUnknownSiteIsRetried(t *testing.T) {
	e := newEnv(t)
	s := newShop(t, nil)
	e.setSite(false)
	d := e.add("1008", s.URL)

	e.tick()
	got := e.get(d.ID)
	if len(s.Hits()) != 0 {
		t.Fatal("sent a callback for a site that is not configured")
	}
	if got.State != store.DeliveryPending || got.Tries != 1 || got.LastError != "site no longer configured" {
		t.Fatalf("state %s, tries %d, LastError %q", got.State, got.Tries, got.LastError)
	}

	e.setSite(true)
	e.clock.Set(got.NextAt)
	e.tick()
	if got := e.get(d.ID); got.State != store.DeliveryDelivered {
		t.Errorf("site back: state %s", got.State)
	}
}

func TestRotatedSecretSignsNextTry(t *testing.T) {
	e := newEnv(t)
	s := newShop(t, status(http.StatusInternalServerError))
	d := e.add("1009", s.URL)
	e.tick()

	fresh := e.rotate()
	s.setAnswer(nil)
	e.clock.Set(e.get(d.ID).NextAt)
	e.tick()
	hits := s.Hits()
	if len(hits) != 2 {
		t.Fatalf("shop got %d callbacks", len(hits))
	}
	verify(t, fresh, hits[1], e.clock.Now(), d.ID)
}

func TestInterruptedTryStaysPending(t *testing.T) {
	e := newEnv(t)
	entered := make(chan struct{})
	s := newShop(t, func(w http.ResponseWriter, r *http.Request, h hit) {
		close(entered)
		<-r.Context().Done() // hang until the notifier gives up
	})
	d := e.add("1010", s.URL)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.n.Tick(ctx) }()
	<-entered
	cancel()
	<-done

	got := e.get(d.ID)
	if got.State != store.DeliveryPending || got.Tries != 0 || !got.LastAt.IsZero() || got.NextAt.After(e.clock.Now()) {
		t.Errorf("interrupted try was recorded: state %s, tries %d, LastAt %v, NextAt %v",
			got.State, got.Tries, got.LastAt, got.NextAt)
	}
	s.setAnswer(nil)
	e.tick()
	if got := e.get(d.ID); got.State != store.DeliveryDelivered {
		t.Errorf("interrupted delivery not tried again: %s", got.State)
	}
}

func TestNoSecretsInLogsOrLastError(t *testing.T) {
	e := newEnv(t)
	s := newShop(t, nil)
	// A closed port: the try fails with a network error that names the address.
	dead := newShop(t, nil)
	deadURL := dead.URL + "/hook?token=QUERYSECRET"
	// Close the listener now; the Cleanup's second Close is harmless.
	closeShop(t, dead)

	d1 := e.add("1011", deadURL)
	d2 := e.add("1012", s.URL+"/hook?token=QUERYSECRET")
	e.tick()

	h := s.Hits()
	if len(h) != 1 {
		t.Fatalf("shop got %d callbacks", len(h))
	}
	got := e.get(d1.ID)
	if got.State != store.DeliveryPending || got.LastError == "" {
		t.Fatalf("closed port: state %s, LastError %q", got.State, got.LastError)
	}
	logs := e.logs.String()
	for _, leak := range []string{"QUERYSECRET", h[0].Header.Get("webhook-signature"), string(d2.Body), "whsec_", "order.paid\",\"data"} {
		if strings.Contains(logs, leak) || strings.Contains(got.LastError, leak) {
			t.Errorf("log or LastError contains %q:\nLastError: %s\nlogs:\n%s", leak, got.LastError, logs)
		}
	}
	for _, want := range []string{d1.ID, d2.ID, "order=1011", "site=" + site} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}
