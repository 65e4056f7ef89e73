// Tests of the operator's redelivery.

package notify_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/notify"
	"github.com/caddy-checkout/checkout/store"
)

// killUntilDead fails d until it is dead-lettered (a 10 s horizon keeps
// that to three tries).
func killUntilDead(t *testing.T, e *env, s *shop, id string) {
	t.Helper()
	s.setAnswer(status(http.StatusBadGateway))
	for range 5 {
		e.tick()
		d := e.get(id)
		if d.State == store.DeliveryDead {
			return
		}
		e.clock.Set(d.NextAt)
	}
	t.Fatalf("delivery %s not dead", id)
}

func shortHorizon(c *notify.Config) { c.Horizon = 10 * time.Second }

func TestRetryOfDeadDeliveryDelivers(t *testing.T) {
	e := newEnv(t, shortHorizon)
	s := newShop(t, nil)
	d := e.add("3001", s.URL)
	killUntilDead(t, e, s, d.ID)
	tries := len(s.Hits())

	e.clock.Add(7 * 24 * time.Hour)
	now := e.clock.Now()
	got, err := e.n.Retry(context.Background(), d.ID)
	if err != nil {
		t.Fatalf("Retry: %v", err)
	}
	if got.State != store.DeliveryPending || got.Tries != 0 || !got.RetryFrom.Equal(now) || !got.NextAt.Equal(now) {
		t.Fatalf("Retry returned state %s, tries %d, RetryFrom %v, NextAt %v", got.State, got.Tries, got.RetryFrom, got.NextAt)
	}
	if stored := e.get(d.ID); stored.State != store.DeliveryPending || !stored.NextAt.Equal(now) {
		t.Fatalf("Retry not saved: %s at %v", stored.State, stored.NextAt)
	}

	s.setAnswer(nil)
	e.tick()
	hits := s.Hits()
	if len(hits) != tries+1 {
		t.Fatalf("shop got %d callbacks after Retry, want %d", len(hits), tries+1)
	}
	verify(t, e.secret, hits[tries], now, d.ID) // same webhook-id as the dead tries
	if got := e.get(d.ID); got.State != store.DeliveryDelivered {
		t.Errorf("after Retry: state %s", got.State)
	}
}

func TestRetryStartsAFreshScheduleAndHorizon(t *testing.T) {
	e := newEnv(t, shortHorizon)
	s := newShop(t, nil)
	d := e.add("3002", s.URL)
	killUntilDead(t, e, s, d.ID)

	e.clock.Add(time.Hour)
	now := e.clock.Now()
	if _, err := e.n.Retry(context.Background(), d.ID); err != nil {
		t.Fatal(err)
	}
	e.tick() // still failing
	got := e.get(d.ID)
	if got.State != store.DeliveryPending || got.Tries != 1 || !got.NextAt.Equal(now.Add(5*time.Second)) {
		t.Errorf("first failure after Retry: state %s, tries %d, next +%v; want pending, 1, +5s",
			got.State, got.Tries, got.NextAt.Sub(now))
	}
}

func TestRetryOfGoneAndWaitingDeliveries(t *testing.T) {
	e := newEnv(t)
	s := newShop(t, status(http.StatusGone))
	gone := e.add("3003", s.URL)
	e.tick()
	s.setAnswer(status(http.StatusInternalServerError))
	waiting := e.add("3004", s.URL)
	e.tick()
	if e.get(gone.ID).State != store.DeliveryGone || e.get(waiting.ID).NextAt.Equal(e.clock.Now()) {
		t.Fatal("setup: want one gone and one waiting delivery")
	}

	s.setAnswer(nil)
	for _, id := range []string{gone.ID, waiting.ID} {
		if _, err := e.n.Retry(context.Background(), id); err != nil {
			t.Fatalf("Retry(%s): %v", id, err)
		}
	}
	e.tick() // no clock change: the waiting one is tried at once
	for _, id := range []string{gone.ID, waiting.ID} {
		if got := e.get(id); got.State != store.DeliveryDelivered {
			t.Errorf("%s after Retry: %s", id, got.State)
		}
	}
}

func TestRetryRefusesDeliveredAndUnknown(t *testing.T) {
	e := newEnv(t)
	s := newShop(t, nil)
	d := e.add("3005", s.URL)
	e.tick()
	before := e.get(d.ID)

	if _, err := e.n.Retry(context.Background(), d.ID); !errors.Is(err, notify.ErrDelivered) {
		t.Errorf("Retry of a delivered callback: err %v, want ErrDelivered", err)
	}
	if after := e.get(d.ID); after.State != store.DeliveryDelivered || !after.NextAt.Equal(before.NextAt) {
		t.Errorf("refused Retry changed the delivery: %+v", after)
	}
	if _, err := e.n.Retry(context.Background(), "msg_nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Retry of an unknown id: err %v, want store.ErrNotFound", err)
	}
	e.tick()
	if n := len(s.Hits()); n != 1 {
		t.Errorf("shop got %d callbacks, want 1", n)
	}
}
