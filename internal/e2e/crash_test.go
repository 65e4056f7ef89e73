package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/sign"
)

// startChild runs this test binary as Caddy with the given Caddyfile.
func startChild(t *testing.T, dir, cf string) *exec.Cmd {
	t.Helper()
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(cf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), runAsCaddy+"=1", "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	log, err := os.Create(filepath.Join(dir, "caddy.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	return cmd
}

func childLog(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "caddy.log"))
	return string(b)
}

// TestKill9BetweenTransitionAndCallback: the order is paid and its
// callback committed, but the shop is down when Caddy is killed with
// SIGKILL. After a restart the callback is delivered, once, with the same
// webhook-id.
func TestKill9BetweenTransitionAndCallback(t *testing.T) {
	secret := sign.NewSecret()
	cb, srv := recordedShop(t, secret)
	cb.setFail(true) // the shop is down

	dir := t.TempDir()
	listen := "127.0.0.1:" + itoa(freePort(t))
	cf := caddyfile(filepath.Join(dir, "checkout.db"), "off", listen, secret, srv.URL+"/payments/webhook", strings.TrimPrefix(srv.URL, "http://"))
	child := startChild(t, dir, cf)
	base := "http://" + listen
	waitFor(t, 20*time.Second, "Caddy to start", func() bool {
		r, err := http.Get(base + "/")
		if err == nil {
			r.Body.Close()
		}
		return err == nil
	})

	_, final := payWithSandbox(t, noRedirectClient(), base, "mug", "paid")
	if !strings.Contains(final, "<strong>paid</strong>") {
		t.Fatalf("not paid:\n%s", final)
	}
	waitFor(t, 10*time.Second, "a first (failing) callback try", func() bool { tries, _ := cb.snapshot(); return len(tries) >= 1 })
	tries, _ := cb.snapshot()
	firstID := tries[0]

	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = child.Process.Wait()

	cb.setFail(false) // the shop is back
	startChild(t, dir, cf)
	waitFor(t, 30*time.Second, "the callback after the restart", func() bool { _, ok := cb.snapshot(); return len(ok) >= 1 })
	time.Sleep(500 * time.Millisecond) // would a second delivery follow?
	_, ok := cb.snapshot()
	if len(ok) != 1 || ok[0] != firstID {
		t.Fatalf("delivered ids %v, want exactly [%s] (same webhook-id as before the crash)\n%s", ok, firstID, childLog(dir))
	}
	if !strings.Contains(cb.bodies[0], `"type":"order.paid"`) {
		t.Fatalf("callback body %s", cb.bodies[0])
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
