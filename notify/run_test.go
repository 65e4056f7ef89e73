// Tests of the delivery loop: per-order ordering, isolation of a hanging
// shop, and a clean stop. Waits are on channels; the time limits only turn
// a hang into a failure.

package notify_test

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/notify"
	"github.com/caddy-checkout/checkout/store"
)

// failsafe bounds a wait that should end at once, so a bug fails the test
// instead of hanging it.
const failsafe = 10 * time.Second

func TestOneOrdersFailureBlocksOnlyItsLaterCallbacks(t *testing.T) {
	e := newEnv(t)
	s := newShop(t, nil)
	a1 := e.add("4001", s.URL+"/a")
	s.setAnswer(func(w http.ResponseWriter, r *http.Request, h hit) {
		if h.ID() == a1.ID {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	a2 := e.add("4001", s.URL+"/a")
	b1 := e.add("4002", s.URL+"/b")
	if a2.Seq <= a1.Seq {
		t.Fatalf("setup: seq %d then %d", a1.Seq, a2.Seq)
	}

	e.tick()
	var ids []string
	for _, h := range s.Hits() {
		ids = append(ids, h.ID())
	}
	if len(ids) != 2 || !slices.Contains(ids, a1.ID) || !slices.Contains(ids, b1.ID) {
		t.Fatalf("first round reached the shop as %v; want %s (failing) and %s, not %s", ids, a1.ID, b1.ID, a2.ID)
	}
	if got := e.get(b1.ID); got.State != store.DeliveryDelivered {
		t.Errorf("other order's callback: %s", got.State)
	}
	if got := e.get(a2.ID); got.State != store.DeliveryPending || got.Tries != 0 {
		t.Errorf("seq 2 was tried while seq 1 was failing: %s, tries %d", got.State, got.Tries)
	}

	// Still held back while seq 1 waits for its retry.
	e.clock.Add(time.Second)
	e.tick()
	if n := len(s.Hits()); n != 2 {
		t.Fatalf("shop got %d callbacks while seq 1 waited, want 2", n)
	}

	s.setAnswer(nil) // the shop recovers
	e.clock.Set(e.get(a1.ID).NextAt)
	e.tick()
	hits := s.Hits()
	if len(hits) != 4 || hits[2].ID() != a1.ID || hits[3].ID() != a2.ID {
		t.Fatalf("after recovery the shop got %v; want seq 1 then seq 2", idsOf(hits))
	}
	for _, id := range []string{a1.ID, a2.ID} {
		if got := e.get(id); got.State != store.DeliveryDelivered {
			t.Errorf("%s: %s", id, got.State)
		}
	}
}

func TestHangingShopDoesNotHoldUpOtherOrders(t *testing.T) {
	e := newEnv(t, func(c *notify.Config) {
		c.Client = &http.Client{Timeout: 30 * time.Second} // longer than failsafe: only the worker pool can save us
		c.Workers = 2
	})
	hanging := make(chan struct{})
	release := make(chan struct{})
	var releaseOnce sync.Once
	unhang := func() { releaseOnce.Do(func() { close(release) }) }
	arrived := make(chan string, 1)
	s := newShop(t, func(w http.ResponseWriter, r *http.Request, h hit) {
		if h.Path == "/hang" {
			close(hanging)
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		arrived <- h.ID()
	})
	t.Cleanup(unhang) // before the shop closes, which waits for its handlers
	slow := e.add("5001", s.URL+"/hang")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- e.n.Run(ctx) }()
	wait(t, hanging, "the first try")

	fast := e.add("5002", s.URL+"/ok") // add calls Wake, as the core does
	select {
	case id := <-arrived:
		if id != fast.ID {
			t.Fatalf("shop got %s, want %s", id, fast.ID)
		}
	case <-time.After(failsafe):
		t.Fatal("another order's callback waited for the hanging shop")
	}
	if got := e.get(slow.ID); got.State != store.DeliveryPending || !got.LastAt.IsZero() {
		t.Fatalf("hanging try already recorded: %s", got.State)
	}
	waitFor(t, func() bool { return e.get(fast.ID).State == store.DeliveryDelivered }, "the fast delivery to be saved")

	// A cancelled context: without the guard, the second Run returns nil at once.
	done, stop := context.WithCancel(context.Background())
	stop()
	if err := e.n.Run(done); err == nil {
		t.Error("a second Run on the same Notifier was allowed")
	}

	// Stopping waits for the try in flight and records its outcome.
	cancel()
	select {
	case <-stopped:
		t.Fatal("Run returned while a try was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	unhang()
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(failsafe):
		t.Fatal("Run did not stop")
	}
	if got := e.get(slow.ID); got.State != store.DeliveryDelivered {
		t.Errorf("try in flight at shutdown: %s, want its outcome saved", got.State)
	}
}

func TestRunDeliversWhatIsAddedAndRetried(t *testing.T) {
	e := newEnv(t, shortHorizon)
	s := newShop(t, nil)
	dead := e.add("6001", s.URL)
	killUntilDead(t, e, s, dead.ID)
	arrived := make(chan string, 8)
	s.setAnswer(func(w http.ResponseWriter, r *http.Request, h hit) { arrived <- h.ID() })

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- e.n.Run(ctx) }()
	defer func() { cancel(); <-stopped }()

	fresh := e.add("6002", s.URL)
	if _, err := e.n.Retry(context.Background(), dead.ID); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for len(got) < 2 {
		select {
		case id := <-arrived:
			got[id] = true
		case <-time.After(failsafe):
			t.Fatalf("Run delivered only %v", got)
		}
	}
	if !got[fresh.ID] || !got[dead.ID] {
		t.Errorf("Run delivered %v, want %s and %s", got, fresh.ID, dead.ID)
	}
	waitFor(t, func() bool {
		return e.get(fresh.ID).State == store.DeliveryDelivered && e.get(dead.ID).State == store.DeliveryDelivered
	}, "both deliveries to be saved")
}

func TestWakeNeverBlocks(t *testing.T) {
	e := newEnv(t)
	for range 100 {
		e.n.Wake() // no Run is listening
	}
}

func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(failsafe):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// waitFor polls cond; it is for store state that a worker saves just after
// the shop has seen the callback.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(failsafe)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func idsOf(hits []hit) []string {
	var ids []string
	for _, h := range hits {
		ids = append(ids, h.ID())
	}
	return ids
}
