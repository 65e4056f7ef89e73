// Tests that the stored error text of a failed try never carries the
// secret parts of a callback URL.

package notify

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestErrorTextHidesQueryAndUserinfo(t *testing.T) {
	raw := "https://bob:hunter2@shop.example/hook?token=s3cr3t&x=1"
	inner := errors.New("proxyconnect tcp: bad response for https://bob:hunter2@shop.example/hook?token=s3cr3t&x=1")
	err := &url.Error{Op: "Post", URL: raw, Err: inner}
	got := errorText(err, raw)
	for _, leak := range []string{"s3cr3t", "hunter2", "token="} {
		if strings.Contains(got, leak) {
			t.Errorf("errorText leaks %q: %s", leak, got)
		}
	}
	if !strings.Contains(got, "proxyconnect tcp") {
		t.Errorf("errorText lost the cause: %s", got)
	}
}

func TestErrorTextIsBounded(t *testing.T) {
	got := errorText(errors.New(strings.Repeat("é", 1000)), "http://x/")
	if len(got) > maxErrorLen+len("…") {
		t.Errorf("errorText is %d bytes, want at most %d", len(got), maxErrorLen)
	}
	if !strings.HasSuffix(got, "…") {
		t.Errorf("a cut errorText should say so: %q", got[len(got)-10:])
	}
}

func TestStatusErrorExplainsRedirects(t *testing.T) {
	if got := statusError(302); !strings.Contains(got, "302 Found") || !strings.Contains(got, "not followed") {
		t.Errorf("statusError(302) = %q", got)
	}
	if got := statusError(599); !strings.Contains(got, "599") {
		t.Errorf("statusError(599) = %q", got)
	}
}
