// Package apitap records the requests a provider sends to a fake API, for
// tests that assert what reached the API (which methods, which paths), such
// as fuzz targets over customer input. Unlike the fakes' own request logs it
// forgets what was taken, so a fuzz run of millions of inputs stays small.
package apitap

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// Tap is a reverse proxy in front of a fake API. Point the provider at URL.
type Tap struct {
	URL string

	mu   sync.Mutex
	seen []string
}

// New starts a tap in front of target (the fake's URL); it is closed when
// the test ends.
func New(tb testing.TB, target string) *Tap {
	tb.Helper()
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	t := &Tap{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.mu.Lock()
		t.seen = append(t.seen, r.Method+" "+r.URL.EscapedPath())
		t.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	tb.Cleanup(srv.Close)
	t.URL = srv.URL
	return t
}

// Take returns the requests that went through since the last Take, each
// as "METHOD /escaped/path" (no query), and forgets them.
func (t *Tap) Take() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.seen
	t.seen = nil
	return out
}
