// This file is the retry schedule: when the next try of a failed delivery
// happens, how a shop's Retry-After changes that, and when a delivery
// stops being retried and is dead-lettered.

package notify

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// schedule is the Standard Webhooks example schedule: the delay after the
// 1st, 2nd, ... failed try. After the last entry, every delay is 24 h.
var schedule = [...]time.Duration{
	5 * time.Second,
	5 * time.Minute,
	30 * time.Minute,
	2 * time.Hour,
	5 * time.Hour,
	10 * time.Hour,
	14 * time.Hour,
	20 * time.Hour,
	24 * time.Hour,
}

// jitter is the spread around each delay: ±20 %, so that the callbacks of
// many orders that failed together (the shop was down) do not all come
// back in the same second.
const jitter = 0.2

// maxRetryAfter caps a shop's Retry-After, so that a mistaken or hostile
// value cannot park a delivery beyond one day.
const maxRetryAfter = 24 * time.Hour

// Backoff is the delay before the next try of a delivery that has failed
// tries times: the Standard Webhooks schedule (5 s, 5 min, 30 min, 2 h,
// 5 h, 10 h, 14 h, 20 h, 24 h, then 24 h) scaled by a jitter factor
// between 0.8 (rnd = 0) and 1.2 (rnd → 1). rnd is clamped to [0, 1].
// Before any failure (tries < 1) the delay is 0: the first try is
// immediate.
func Backoff(tries int, rnd float64) time.Duration {
	if tries < 1 {
		return 0
	}
	base := schedule[min(tries, len(schedule))-1]
	rnd = max(0, min(rnd, 1))
	return time.Duration(float64(base) * (1 - jitter + 2*jitter*rnd))
}

// nextTry decides what follows a failed try that ended at now, the
// tries-th failure of a delivery whose horizon started at retryFrom. It
// returns when to try again, or dead when the horizon has passed.
//
// retryAfter (when > 0) is the shop's own Retry-After: it is honoured as a
// lower bound, never as a way to come back sooner than the schedule.
//
// A next try that would fall after the horizon is moved to the horizon
// itself rather than dropped: otherwise the jitter decides whether the
// 24 h step after ~52 h still fits in 72 h, and a shop that is back at
// hour 60 would lose its callbacks although SPEC §6.1 promises 3 days.
// The horizon also bounds Retry-After, for the same promise.
func nextTry(tries int, now, retryFrom time.Time, horizon, retryAfter time.Duration, rnd float64) (next time.Time, dead bool) {
	deadline := retryFrom.Add(horizon)
	if !now.Before(deadline) {
		return time.Time{}, true
	}
	delay := max(Backoff(tries, rnd), min(retryAfter, maxRetryAfter))
	next = now.Add(delay)
	if next.After(deadline) {
		next = deadline
	}
	return next, false
}

// parseRetryAfter reads a Retry-After header (RFC 9110 §10.2.3): either
// delay-seconds or an HTTP date. ok is false when the header is absent or
// malformed; a date in the past is a delay of 0.
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		secs, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return maxRetryAfter, true // absurdly large: the cap applies anyway
			}
			return 0, false
		}
		if secs > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}
