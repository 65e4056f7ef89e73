// Tests of the retry schedule as a pure function.

package notify_test

import (
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/notify"
)

var standardWebhooksSchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
	10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour,
}

func TestBackoffFollowsStandardWebhooksSchedule(t *testing.T) {
	var total time.Duration
	for i, want := range standardWebhooksSchedule {
		got := notify.Backoff(i+1, 0.5) // 0.5: jitter factor exactly 1
		if got != want {
			t.Errorf("Backoff(%d) = %v, want %v", i+1, got, want)
		}
		total += got
	}
	// The last try of the example schedule comes 75 h 35 min 05 s after the first.
	if want := 75*time.Hour + 35*time.Minute + 5*time.Second; total != want {
		t.Errorf("schedule adds up to %v, want %v", total, want)
	}
	for _, tries := range []int{10, 11, 50, 1 << 20} {
		if got := notify.Backoff(tries, 0.5); got != 24*time.Hour {
			t.Errorf("Backoff(%d) = %v, want 24h after the schedule ends", tries, got)
		}
	}
}

func TestBackoffBeforeAnyFailureIsImmediate(t *testing.T) {
	for _, tries := range []int{0, -1} {
		if got := notify.Backoff(tries, 0.9); got != 0 {
			t.Errorf("Backoff(%d) = %v, want 0", tries, got)
		}
	}
}

func TestBackoffJitterStaysWithin20Percent(t *testing.T) {
	for tries := 1; tries <= 12; tries++ {
		base := notify.Backoff(tries, 0.5)
		lo, hi := base*8/10, base*12/10
		if got := notify.Backoff(tries, 0); got != lo {
			t.Errorf("Backoff(%d, 0) = %v, want the lower bound %v", tries, got, lo)
		}
		if got := notify.Backoff(tries, 1); got != hi {
			t.Errorf("Backoff(%d, 1) = %v, want the upper bound %v", tries, got, hi)
		}
		// Out-of-range randomness is clamped, never stretches the window.
		for _, rnd := range []float64{-3, 0.001, 0.37, 0.999999, 7} {
			if got := notify.Backoff(tries, rnd); got < lo || got > hi {
				t.Errorf("Backoff(%d, %v) = %v, outside [%v, %v]", tries, rnd, got, lo, hi)
			}
		}
		// Different randomness gives different delays: that is the jitter.
		if notify.Backoff(tries, 0.1) == notify.Backoff(tries, 0.9) {
			t.Errorf("Backoff(%d) has no jitter", tries)
		}
	}
}

func TestBackoffGrows(t *testing.T) {
	prev := time.Duration(0)
	for tries := 1; tries <= 9; tries++ {
		got := notify.Backoff(tries, 0.5)
		if got <= prev {
			t.Errorf("Backoff(%d) = %v, not more than Backoff(%d) = %v", tries, got, tries-1, prev)
		}
		prev = got
	}
}
