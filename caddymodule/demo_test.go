package caddymodule_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

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
	// Caddy's autosave path is fixed when its package loads: look at it.
	before, _ := os.Stat(caddy.ConfigAutosavePath)
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
	// It listens on loopback only, and leaves no copy of its config (with
	// the secret) in Caddy's autosave.
	if ip := nonLoopbackIP(); ip != "" {
		_, port, _ := net.SplitHostPort(addr)
		if conn, err := net.DialTimeout("tcp", net.JoinHostPort(ip, port), time.Second); err == nil {
			conn.Close()
			t.Errorf("the demo answers on %s, not only on loopback", ip)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("demo: %v", err)
	}
	if after, err := os.Stat(caddy.ConfigAutosavePath); err == nil && (before == nil || !after.ModTime().Equal(before.ModTime())) {
		t.Errorf("the demo wrote its config, secret included, to %s", caddy.ConfigAutosavePath)
	}
	if !strings.Contains(out.String(), "Open "+site+"/") || !strings.Contains(out.String(), demoshop.DownloadPath) {
		t.Fatalf("the demo printed:\n%s", out.String())
	}
}

// nonLoopbackIP is an IPv4 address of this machine other than loopback,
// or "" when it has none.
func nonLoopbackIP() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}
