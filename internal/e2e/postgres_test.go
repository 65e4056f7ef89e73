package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-checkout/checkout/internal/demoshop"
	"github.com/caddy-checkout/checkout/internal/pgtest"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/sign"
)

// pgCaddyfile is the Caddyfile every instance of these tests runs: the
// same file, the store named by an environment variable, as the README
// tells admins to do.
func pgCaddyfile(admin, listen, secret, callback, upstream string) string {
	return fmt.Sprintf(`{
	admin %s
	checkout {
		storage postgres {env.CHECKOUT_DATABASE_URL} {
			claim_lease 3s
			leader_lease 3s
		}
	}
}

http://%s {
	checkout {
		site shop
		secret %s
		callback %s
		success_url /orders/{order_id}/thanks
		cancel_url /cart
		sandbox
	}
	reverse_proxy %s
}
`, admin, listen, secret, callback, upstream)
}

// instance is one Caddy child process of a shared-store test.
type instance struct {
	dir, base, admin string
	cmd              *exec.Cmd
}

// startInstance starts a Caddy child sharing the database at dsn, and
// waits until it serves.
func startInstance(t *testing.T, dsn, secret, callback, upstream string) *instance {
	t.Helper()
	return startInstanceOf(t, dsn, func(admin, listen string) string {
		return pgCaddyfile(admin, listen, secret, callback, upstream)
	})
}

// startInstanceOf starts a Caddy child with the Caddyfile that caddyfile
// makes for its admin and listen addresses, sharing the database at dsn.
// A port that another process took between freePort and the child's
// listen (another test run on the machine) is retried with new ports.
func startInstanceOf(t *testing.T, dsn string, caddyfile func(admin, listen string) string) *instance {
	t.Helper()
	for try := 1; ; try++ {
		in, taken := launchInstance(t, dsn, caddyfile)
		if !taken {
			return in
		}
		if try == 5 {
			t.Fatalf("Caddy could not listen after %d tries: its ports were taken each time", try)
		}
		t.Logf("a port of %s or %s was taken meanwhile; trying others", in.base, in.admin)
	}
}

// launchInstance starts one Caddy child and waits until it serves, or
// reports taken when it could not listen on a port freePort gave.
func launchInstance(t *testing.T, dsn string, caddyfile func(admin, listen string) string) (in *instance, taken bool) {
	t.Helper()
	in = &instance{dir: t.TempDir()}
	in.base = "127.0.0.1:" + itoa(freePort(t))
	in.admin = "127.0.0.1:" + itoa(freePort(t))
	cf := caddyfile(in.admin, in.base)
	if err := os.WriteFile(filepath.Join(in.dir, "Caddyfile"), []byte(cf), 0o600); err != nil {
		t.Fatal(err)
	}
	in.cmd = exec.Command(os.Args[0], "run", "--config", filepath.Join(in.dir, "Caddyfile"), "--adapter", "caddyfile")
	in.cmd.Env = append(os.Environ(), runAsCaddy+"=1", "XDG_DATA_HOME="+in.dir, "XDG_CONFIG_HOME="+in.dir,
		"CHECKOUT_DATABASE_URL="+dsn)
	log, err := os.Create(filepath.Join(in.dir, "caddy.log"))
	if err != nil {
		t.Fatal(err)
	}
	in.cmd.Stdout, in.cmd.Stderr = log, log
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = in.cmd.Process.Kill()
		_, _ = in.cmd.Process.Wait()
		if t.Failed() {
			l := in.log()
			t.Logf("log of the instance at %s (its end):\n%s", in.base, l[max(0, len(l)-6000):])
		}
	})
	waitFor(t, 30*time.Second, "Caddy at "+in.base+" to start", func() bool {
		if taken = strings.Contains(in.log(), "address already in use"); taken {
			return true
		}
		r, err := http.Get("http://" + in.base + "/")
		if err == nil {
			r.Body.Close()
		}
		return err == nil
	})
	if taken {
		_ = in.cmd.Process.Kill()
		_, _ = in.cmd.Process.Wait()
	}
	return in, taken
}

func (in *instance) log() string { return childLog(in.dir) }

func (in *instance) kill(t *testing.T) {
	t.Helper()
	if err := in.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = in.cmd.Process.Wait()
}

// buy starts an order at the shop through in and returns its attempt ref
// (from the sandbox page the customer is sent to).
func buy(t *testing.T, c *http.Client, in *instance) (ref string) {
	t.Helper()
	r, err := c.PostForm("http://"+in.base+"/buy", map[string][]string{"product": {"mug"}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("buy through %s: %d", in.base, r.StatusCode)
	}
	ref = path.Base(r.Header.Get("Location"))
	var st struct {
		Status string `json:"status"`
	}
	if code := getJSON(t, "http://"+in.base+"/_checkout/status/"+ref, &st); code != 200 || st.Status != "pending" {
		t.Fatalf("status of %s: %d %q", ref, code, st.Status)
	}
	return ref
}

func getJSON(t *testing.T, u string, v any) int {
	t.Helper()
	r, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode == 200 && v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v\n%s", u, err, b)
		}
	}
	return r.StatusCode
}

// sandboxWebhook is a signed sandbox "paid" event for ref, as the sandbox
// provider sends it to the site's webhook route.
func sandboxWebhook(t *testing.T, secret, ref, amount, currency string) (body []byte, header http.Header) {
	t.Helper()
	s, err := sign.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	id := "evt_" + order.NewRef()
	body, _ = json.Marshal(map[string]string{"id": id, "type": "payment.paid", "ref": ref, "amount": amount,
		"currency": currency, "transaction": "sbx_txn_" + order.NewRef()})
	header = http.Header{"Content-Type": {"application/json"}}
	s.SetWebhookHeaders(header, id, time.Now(), body)
	return body, header
}

func postWebhook(base string, body []byte, h http.Header) (int, error) {
	req, _ := http.NewRequest(http.MethodPost, "http://"+base+"/_checkout/webhook/sandbox", strings.NewReader(string(body)))
	req.Header = h.Clone()
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	r.Body.Close()
	return r.StatusCode, nil
}

// sseStatuses follows the live status stream of ref on base and sends
// every status it reports.
func sseStatuses(ctx context.Context, t *testing.T, base, ref string) <-chan string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+base+"/_checkout/events/"+ref, nil)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan string, 16)
	go func() {
		defer r.Body.Close()
		sc := bufio.NewScanner(r.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var v struct {
				Status string `json:"status"`
			}
			if json.Unmarshal([]byte(data), &v) == nil {
				out <- v.Status
			}
		}
		close(out)
	}()
	return out
}

// TestTwoInstancesShareOnePostgres runs two Caddy processes with the same
// Caddyfile on one PostgreSQL database: an order taken on A is paid by 200
// identical webhooks split across A and B (one transition, one callback),
// B's live page of it moves on A's change notice, the customer returns through
// A, and the return token used there is refused on B.
func TestTwoInstancesShareOnePostgres(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	secret := sign.NewSecret()
	// What the shop's thanks page was told: the paid headers come only
	// with a return token the plugin accepted.
	told := make(chan string, 10)
	cb, srv := recordedShop(t, secret, func(mux *http.ServeMux, shop *demoshop.Shop) {
		mux.Handle("/orders/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			told <- r.Header.Get("X-Checkout-Status")
			shop.ServeHTTP(w, r)
		}))
	})
	upstream := strings.TrimPrefix(srv.URL, "http://")

	a := startInstance(t, dsn, secret, srv.URL+"/payments/webhook", upstream)
	b := startInstance(t, dsn, secret, srv.URL+"/payments/webhook", upstream)
	if strings.Contains(a.log()+b.log(), pgtest.Shared(t).Password()) {
		t.Fatal("an instance logged the database password")
	}

	c := noRedirectClient()
	ref := buy(t, c, a)
	// B knows the order A took.
	var st struct {
		Status, Amount, Currency string
	}
	if code := getJSON(t, "http://"+b.base+"/_checkout/status/"+ref, &st); code != 200 || st.Status != "pending" {
		t.Fatalf("B's status of A's order: %d %+v", code, st)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opened := time.Now()
	live := sseStatuses(ctx, t, b.base, ref)
	if s := <-live; s != "pending" {
		t.Fatalf("B's live page starts at %q", s)
	}

	body, h := sandboxWebhook(t, secret, ref, st.Amount, st.Currency)
	var wg sync.WaitGroup
	codes := make(chan int, 200)
	sent := time.Now()
	for i := range 200 {
		in := a
		if i%2 == 1 {
			in = b
		}
		wg.Go(func() {
			code, err := postWebhook(in.base, body, h)
			if err != nil {
				t.Error(err)
			}
			codes <- code
		})
	}
	select {
	case s := <-live:
		if s != "paid" {
			t.Fatalf("B's live page moved to %q, want paid", s)
		}
		// The page's stream also re-reads the order every 5 s in case a
		// notice is lost; showing the payment before that first re-read
		// proves that A's change notice reached B.
		if d := time.Since(opened); d >= 4750*time.Millisecond {
			t.Errorf("B's live page showed the payment %s after it opened: by its 5 s re-read, not by A's change notice", d)
		}
		t.Logf("B's live page showed the payment %s after the webhooks were sent", time.Since(sent))
	case <-time.After(10 * time.Second):
		t.Fatal("B's live page did not move to paid")
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != http.StatusOK {
			t.Fatalf("a webhook was answered %d, want 200 for all 200 (repeats included)", code)
		}
	}

	// One transition to paid in the order's history, seen through either
	// instance's admin API.
	var o struct {
		Status  string `json:"status"`
		History []struct {
			To string `json:"to"`
		} `json:"history"`
		ID string `json:"order_id"`
	}
	list := []map[string]any{}
	if code := adminGet(t, b.admin, "/checkout/orders", &list); code != 200 || len(list) != 1 {
		t.Fatalf("B's admin API lists %d orders (%d)", len(list), code)
	}
	id := fmt.Sprint(list[0]["order_id"])
	if code := adminGet(t, a.admin, "/checkout/orders/shop/"+id, &o); code != 200 || o.Status != "paid" {
		t.Fatalf("A's admin API: %d %+v", code, o)
	}
	paid := 0
	for _, ev := range o.History {
		if ev.To == "paid" {
			paid++
		}
	}
	if paid != 1 {
		t.Fatalf("%d transitions to paid in the history, want 1: %+v", paid, o.History)
	}
	// One order.paid callback, delivered once, from whichever instance.
	waitFor(t, 10*time.Second, "the order.paid callback", func() bool {
		cb.mu.Lock()
		defer cb.mu.Unlock()
		for _, b := range cb.bodies {
			if strings.Contains(b, `"type":"order.paid"`) {
				return true
			}
		}
		return false
	})
	// Both notifiers keep running for a while: would either send it again?
	time.Sleep(2 * time.Second)
	cb.mu.Lock()
	var paidCallbacks []string
	for i, body := range cb.bodies {
		if strings.Contains(body, `"type":"order.paid"`) {
			paidCallbacks = append(paidCallbacks, cb.ok[i])
		}
	}
	tries := len(cb.tries)
	okCount := len(cb.ok)
	cb.mu.Unlock()
	if len(paidCallbacks) != 1 || tries != okCount {
		t.Fatalf("order.paid delivered %d times (%v), %d tries for %d deliveries", len(paidCallbacks), paidCallbacks, tries, okCount)
	}

	// The customer comes back through A: the shop is told, with a return
	// token that A spends.
	r, err := c.Get("http://" + a.base + "/_checkout/return/sandbox/" + ref)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	thanks := r.Header.Get("Location")
	if r.StatusCode != http.StatusSeeOther || !strings.Contains(thanks, "checkout_token=") {
		t.Fatalf("return through A: %d %q", r.StatusCode, thanks)
	}
	page := func(in *instance) string {
		r, err := noRedirectClient().Get("http://" + in.base + thanks)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 200 {
			t.Fatalf("thanks page through %s: %d", in.base, r.StatusCode)
		}
		return <-told
	}
	if st := page(a); st != "paid" {
		t.Fatalf("the shop was told %q through A, want paid", st)
	}
	if st := page(b); st != "" {
		t.Fatalf("the return token A spent was accepted again by B: the shop was told %q", st)
	}
	// Metrics and the orders command work through either instance.
	mr, err := http.Get("http://" + b.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mr.Body)
	mr.Body.Close()
	if !strings.Contains(string(metrics), "caddy_checkout_outbox_pending") {
		t.Fatalf("B's metrics lack the checkout metrics:\n%.2000s", metrics)
	}
	cmd := exec.Command(os.Args[0], "checkout", "orders", "--admin", a.admin)
	cmd.Env = append(os.Environ(), runAsCaddy+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), id) || !strings.Contains(string(out), "paid") {
		t.Fatalf("caddy checkout orders through A: %v\n%s", err, out)
	}
	if strings.Contains(a.log()+b.log()+string(metrics), pgtest.Shared(t).Password()) {
		t.Fatal("an instance logged or exposed the database password")
	}
}

// hangingShop takes callbacks; while hang is set it holds each request
// until released, as a shop that stopped answering.
type hangingShop struct {
	*shopRecorder
	mu      sync.Mutex
	hang    bool
	release chan struct{}
	arrived chan string // webhook-id of each request, as it arrives
}

func (h *hangingShop) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.arrived <- r.Header.Get("webhook-id")
	h.mu.Lock()
	hang := h.hang
	h.mu.Unlock()
	if hang {
		select {
		case <-h.release:
		case <-r.Context().Done():
			return
		}
		return // the instance that sent it is gone: nobody reads this answer
	}
	h.shopRecorder.ServeHTTP(w, r)
}

// TestKill9OfTheLeaderHoldingACallback: instance A leads and is in the
// middle of a callback (the shop hangs) when it is killed with SIGKILL.
// Instance B, following until then, takes the leader lease within
// seconds and delivers that callback, with the same webhook-id, once the
// claim runs out.
func TestKill9OfTheLeaderHoldingACallback(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	secret := sign.NewSecret()
	shop, err := demoshop.New(secret)
	if err != nil {
		t.Fatal(err)
	}
	hs := &hangingShop{shopRecorder: newShopRecorder(t, secret), hang: true, release: make(chan struct{}),
		arrived: make(chan string, 100)}
	mux := http.NewServeMux()
	mux.Handle("/payments/webhook", hs)
	mux.Handle("/", shop)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer close(hs.release)
	upstream := strings.TrimPrefix(srv.URL, "http://")

	a := startInstance(t, dsn, secret, srv.URL+"/payments/webhook", upstream)
	waitFor(t, 10*time.Second, "A to lead", func() bool { return strings.Contains(a.log(), "this instance now leads") })
	b := startInstance(t, dsn, secret, srv.URL+"/payments/webhook", upstream)

	// A takes an order and its payment; B must not send anything while A
	// holds the callback. B is started first, so it is running when the
	// callback is due, and only the claim keeps it away.
	_, final := payWithSandbox(t, noRedirectClient(), "http://"+a.base, "mug", "paid")
	if !strings.Contains(final, "<strong>paid</strong>") {
		t.Fatalf("not paid:\n%s", final)
	}
	var first string
	select {
	case first = <-hs.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no callback try arrived")
	}
	holder := leaseHolder(t, dsn)
	if strings.Contains(b.log(), "this instance now leads") {
		t.Fatalf("B leads while A is alive (lease held by %s)", holder)
	}

	a.kill(t)
	killed := time.Now()
	hs.mu.Lock()
	hs.hang = false
	hs.mu.Unlock()

	waitFor(t, 15*time.Second, "B to take the leader lease", func() bool { return strings.Contains(b.log(), "this instance now leads") })
	if d := time.Since(killed); d > 8*time.Second {
		t.Errorf("B took %s to lead after A died, want within the 3s lease and a renewal", d)
	}
	if h := leaseHolder(t, dsn); h == holder {
		t.Fatalf("the leader lease is still %s's", h)
	}
	waitFor(t, 20*time.Second, "B to deliver the callback A held", func() bool {
		_, ok := hs.snapshot()
		return len(ok) >= 1
	})
	time.Sleep(time.Second) // would another delivery follow?
	_, ok := hs.snapshot()
	if len(ok) != 1 || ok[0] != first {
		t.Fatalf("delivered %v, want exactly [%s], the webhook-id of A's try\n%s", ok, first, b.log())
	}
}

func leaseHolder(t *testing.T, dsn string) string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var h string
	if err := conn.QueryRow(context.Background(), `SELECT holder FROM checkout_leases WHERE name = 'checkout/leader'`).Scan(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestPostgresDownUnderTraffic stops PostgreSQL for 10 s while customers
// buy and providers send webhooks through one instance: while it is down
// customers get a 503 page, webhooks a 503 (so providers retry) and the
// admin API a 503 JSON error; once it is back everything works again with
// no restart, and every order and payment that was acknowledged is stored.
func TestPostgresDownUnderTraffic(t *testing.T) {
	pg := pgtest.Start(t)
	dsn := pg.NewDatabase(t)
	secret := sign.NewSecret()
	_, srv := recordedShop(t, secret)
	in := startInstance(t, dsn, secret, srv.URL+"/payments/webhook", strings.TrimPrefix(srv.URL, "http://"))

	type result struct {
		ref        string // the order's attempt, when the buy was accepted
		buy        int
		webhook    int // the payment's webhook, when the buy was accepted and its status read (0: not sent)
		during     bool
		buyHTML    bool
		webhookErr error
	}
	var (
		mu      sync.Mutex
		results []result
		down    bool
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 { // four customers, one after another each
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				during := down
				mu.Unlock()
				c := noRedirectClient()
				r, err := c.PostForm("http://"+in.base+"/buy", map[string][]string{"product": {"mug"}})
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(r.Body)
				r.Body.Close()
				res := result{buy: r.StatusCode, during: during, buyHTML: strings.Contains(string(b), "<html")}
				if r.StatusCode == http.StatusSeeOther {
					res.ref = path.Base(r.Header.Get("Location"))
					var st struct{ Amount, Currency string }
					if code := getJSON(t, "http://"+in.base+"/_checkout/status/"+res.ref, &st); code == 200 {
						body, h := sandboxWebhook(t, secret, res.ref, st.Amount, st.Currency)
						res.webhook, res.webhookErr = postWebhook(in.base, body, h)
					}
				}
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	count := func(f func(result) bool) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, r := range results {
			if f(r) {
				n++
			}
		}
		return n
	}
	waitFor(t, 10*time.Second, "paid orders before the outage", func() bool {
		return count(func(r result) bool { return r.webhook == 200 }) >= 10
	})

	mu.Lock()
	down = true
	mu.Unlock()
	pg.Stop(t)
	stopped := time.Now()
	waitFor(t, 15*time.Second, "503s while PostgreSQL is down", func() bool {
		return count(func(r result) bool { return r.during && r.buy == http.StatusServiceUnavailable }) >= 5
	})
	if r, err := http.Get("http://" + in.admin + "/checkout/orders"); err != nil {
		t.Fatal(err)
	} else {
		var apiErr struct {
			Error string `json:"error"`
		}
		err := json.NewDecoder(r.Body).Decode(&apiErr)
		r.Body.Close()
		if r.StatusCode != http.StatusServiceUnavailable || err != nil || apiErr.Error == "" {
			t.Errorf("admin API while PostgreSQL is down: %d %+v (%v), want 503 with a JSON error", r.StatusCode, apiErr, err)
		}
	}
	time.Sleep(time.Until(stopped.Add(10 * time.Second)))
	mu.Lock()
	down = false
	mu.Unlock()
	pg.Restart(t)
	back := count(func(result) bool { return true })
	waitFor(t, 15*time.Second, "paid orders after PostgreSQL is back, with no restart", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, r := range results[back:] {
			if r.webhook == 200 {
				n++
			}
		}
		return n >= 10
	})
	close(stop)
	wg.Wait()

	// What customers and providers saw.
	mu.Lock()
	defer mu.Unlock()
	var accepted, paid, refused int
	for _, r := range results {
		switch {
		case r.buy == http.StatusSeeOther:
			accepted++
		case r.buy == http.StatusServiceUnavailable:
			refused++
			if !r.buyHTML {
				t.Errorf("a customer's 503 was not a page")
			}
		default:
			t.Errorf("a buy was answered %d", r.buy)
		}
		if r.webhook == 200 {
			paid++
		} else if r.webhook != 0 && r.webhook != http.StatusServiceUnavailable {
			t.Errorf("a webhook was answered %d (%v), want 200 or 503", r.webhook, r.webhookErr)
		}
	}
	// Nothing acknowledged is lost: every accepted order is stored, and
	// every payment answered 200 is paid.
	for _, r := range results {
		if r.ref == "" {
			continue
		}
		var st struct{ Status string }
		if code := getJSON(t, "http://"+in.base+"/_checkout/status/"+r.ref, &st); code != 200 {
			t.Fatalf("order %s, accepted with a 303, is not stored (%d)", r.ref, code)
		}
		if r.webhook == 200 && st.Status != "paid" {
			t.Fatalf("order %s: its webhook was answered 200 but it is %s", r.ref, st.Status)
		}
	}
	t.Logf("%d buys: %d accepted, %d answered 503; %d payments acknowledged", len(results), accepted, refused, paid)
	if strings.Contains(in.log(), pg.Password()) {
		t.Fatal("the instance logged the database password")
	}
}
