package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-checkout/checkout/internal/demoshop"
	"github.com/caddy-checkout/checkout/sign"
)

// TestDeadLetteredCallbackRaisesTheCounter: a shop whose callback
// endpoint keeps failing past callback_retry_for has the callback given
// up: listed by GET /checkout/deliveries?state=dead, counted in
// caddy_checkout_deliveries_dead_total for its site, and logged at error
// level once. Redelivered by the operator once the shop is fixed, it
// arrives and the counter does not move.
func TestDeadLetteredCallbackRaisesTheCounter(t *testing.T) {
	secret := sign.NewSecret()
	shop, err := demoshop.New(secret)
	if err != nil {
		t.Fatal(err)
	}
	var fixed atomic.Bool
	var hits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/payments/webhook", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if !fixed.Load() {
			http.Error(w, "the shop's database is down", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("/", shop)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	logFile := filepath.Join(dir, "caddy.log")
	base := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cf := caddyfile(filepath.Join(dir, "checkout.db"), admin, base, secret, srv.URL+"/payments/webhook", strings.TrimPrefix(srv.URL, "http://"))
	cf = strings.Replace(cf, "\tcheckout {\n\t\tstorage bolt", "\tlog {\n\t\toutput file "+logFile+"\n\t\tformat json\n\t}\n"+
		"\tcheckout {\n\t\tcallback_retry_for 2s\n\t\tstorage bolt", 1)
	loadCaddy(t, cf)
	t.Cleanup(func() { _ = caddy.Stop() })

	payWithSandbox(t, noRedirectClient(), "http://"+base, "tee", "paid")
	var dead []struct {
		ID        string `json:"id"`
		State     string `json:"state"`
		Type      string `json:"type"`
		OrderID   string `json:"order_id"`
		LastError string `json:"last_error"`
	}
	waitFor(t, 30*time.Second, "the callback to be given up", func() bool {
		return adminGet(t, admin, "/checkout/deliveries?state=dead", &dead) == 200 && len(dead) == 1
	})
	if d := dead[0]; d.State != "dead" || d.Type != "order.paid" || !strings.Contains(d.LastError, "500") {
		t.Errorf("dead delivery = %+v, want an order.paid one whose last error names the 500", d)
	}
	if n := hits.Load(); n < 2 {
		t.Errorf("the shop was tried %d times before the callback was given up, want at least 2", n)
	}
	// Counted just after the delivery is saved as dead.
	metric := `caddy_checkout_deliveries_dead_total{site="default"} `
	waitFor(t, 5*time.Second, "the dead letter to be counted", func() bool { return metricLine(t, admin, metric) == metric+"1" })
	// Given up means not tried again.
	before := hits.Load()

	// Once: one error line names the delivery, and nothing in the log
	// shows the secret.
	deadLines := func() (n int) {
		f, err := os.Open(logFile)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var line struct {
				Level, Msg, Delivery string
			}
			if strings.Contains(sc.Text(), strings.TrimPrefix(secret, "whsec_")) {
				t.Errorf("the log shows the site secret: %s", sc.Text())
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && strings.Contains(line.Msg, "dead-lettered") {
				if line.Level != "error" || line.Delivery != dead[0].ID {
					t.Errorf("dead-letter log line %s: want level error and the delivery id", sc.Text())
				}
				n++
			}
		}
		return n
	}
	waitFor(t, 5*time.Second, "the dead letter's log line", func() bool { return deadLines() >= 1 })
	if n := deadLines(); n != 1 {
		t.Errorf("the dead letter was logged %d times, want once", n)
	}

	// The operator redelivers once the shop is fixed.
	fixed.Store(true)
	r, err := http.Post("http://"+admin+"/checkout/deliveries/"+dead[0].ID+"/retry", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("retry: %d", r.StatusCode)
	}
	var delivered []struct{ ID string }
	waitFor(t, 10*time.Second, "the redelivered callback", func() bool {
		return adminGet(t, admin, "/checkout/deliveries?state=delivered", &delivered) == 200 && len(delivered) == 1
	})
	if hits.Load() != before+1 {
		t.Errorf("the shop got %d tries after the dead letter, want the operator's one", hits.Load()-before)
	}
	if got := metricLine(t, admin, metric); got != metric+"1" {
		t.Errorf("after the redelivery: %q, want %s1", got, metric)
	}
	if n := deadLines(); n != 1 {
		t.Errorf("after the redelivery the dead letter is logged %d times, want once", n)
	}
}

// metricLine is the line of Caddy's /metrics that starts with prefix, or
// "" when there is none.
func metricLine(t *testing.T, admin, prefix string) string {
	t.Helper()
	r, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}
