package caddymodule_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/caddymodule"
	"github.com/caddy-checkout/checkout/handlers/handlerstest"
	"github.com/caddy-checkout/checkout/internal/demoshop"
)

// TestDemo runs `caddy checkout demo` as the README's first command does
// and clicks through it: a Buy goes to the sandbox, and the paid download
// is sold by a price line alone.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", dir)
	t.Setenv("XDG_CONFIG_HOME", dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out strings.Builder
	go func() { done <- caddymodule.RunDemo(ctx, addr, &out) }()
	stop := sync.OnceValue(func() error { cancel(); return <-done })
	defer stop()
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	site := "http://" + addr
	var home string
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := c.Get(site + "/")
		if err == nil {
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode == 200 {
				home = string(b)
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo did not answer at %s: %v", site, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(home, "Buy") || !strings.Contains(home, demoshop.DownloadPath) {
		t.Fatalf("demo home page:\n%s", home)
	}
	r, err := c.PostForm(site+"/buy", url.Values{"product": {"mug"}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusSeeOther || !strings.Contains(r.Header.Get("Location"), "/_checkout/sandbox/") {
		t.Fatalf("Buy: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	req, _ := http.NewRequest(http.MethodGet, site+demoshop.DownloadPath, nil)
	req.Header.Set("Accept", "text/html")
	if r, err = c.Do(req); err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusSeeOther || !strings.Contains(r.Header.Get("Location"), "/_checkout/buy/") {
		t.Fatalf("the paid download without a receipt: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	receipt, err := handlerstest.BuyReceipt(site, demoshop.DownloadPath)
	if err != nil {
		t.Fatal(err)
	}
	req, _ = http.NewRequest(http.MethodGet, site+demoshop.DownloadPath, nil)
	req.Header.Set("Authorization", "Bearer "+receipt)
	if r, err = c.Do(req); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || !strings.Contains(string(b), "Paid with order paywall-") {
		t.Fatalf("the paid download with its receipt: %d %q", r.StatusCode, b)
	}
	if err := stop(); err != nil {
		t.Fatalf("demo: %v", err)
	}
	if !strings.Contains(out.String(), "Open "+site+"/") || !strings.Contains(out.String(), demoshop.DownloadPath) {
		t.Fatalf("the demo printed:\n%s", out.String())
	}
}
