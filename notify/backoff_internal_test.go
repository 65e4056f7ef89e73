// Tests of the unexported parts of the schedule: the horizon and
// Retry-After parsing.

package notify

import (
	"net/http"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 21, 7, 0, 0, 0, time.UTC)

func TestNextTry(t *testing.T) {
	h := 72 * time.Hour
	tests := []struct {
		name       string
		tries      int
		now        time.Time
		retryAfter time.Duration
		want       time.Time
		dead       bool
	}{
		{"first failure", 1, t0, 0, t0.Add(5 * time.Second), false},
		{"retry-after longer than schedule wins", 1, t0, time.Hour, t0.Add(time.Hour), false},
		{"retry-after shorter than schedule loses", 4, t0, time.Minute, t0.Add(2 * time.Hour), false},
		{"retry-after capped at 24h", 1, t0, 10 * 24 * time.Hour, t0.Add(24 * time.Hour), false},
		{"last try moved to the horizon", 9, t0.Add(60 * time.Hour), 0, t0.Add(h), false},
		{"retry-after does not pass the horizon", 2, t0.Add(71 * time.Hour), 5 * time.Hour, t0.Add(h), false},
		{"failure at the horizon is dead", 10, t0.Add(h), 0, time.Time{}, true},
		{"failure after the horizon is dead", 3, t0.Add(h + time.Second), 0, time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, dead := nextTry(tt.tries, tt.now, t0, h, tt.retryAfter, 0.5)
			if dead != tt.dead || !got.Equal(tt.want) {
				t.Errorf("nextTry = %v, dead %v; want %v, dead %v", got, dead, tt.want, tt.dead)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{" 0 ", 0, true},
		{t0.Add(90 * time.Minute).Format(http.TimeFormat), 90 * time.Minute, true},
		{t0.Add(-time.Hour).Format(http.TimeFormat), 0, true},    // in the past: no wait
		{"Sunday, 22-Nov-26 07:00:00 GMT", 24 * time.Hour, true}, // RFC 850, still allowed
		{"99999999999999999999999", 24 * time.Hour, true},
		{"864000", 24 * time.Hour, true},
		{"", 0, false},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, t0)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
