package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/internal/stripetest"
	"github.com/caddy-checkout/checkout/sign"
)

// TestChaos pays a few hundred orders through a real Caddy child process
// while killing it with SIGKILL at random points and taking the shop's
// callback endpoint up and down, then checks what a payments system must
// hold: every payment the provider was told was taken is paid in the
// store, no other order is paid, every paid order's callback reached the
// shop under one webhook-id however often it was tried, and the outbox
// drains. Seeded: CHAOS_SEED=<n> replays a run's decisions. The payments
// come from two providers, the sandbox's signed webhooks and Stripe's fake
// (the customer choosing Stripe on the pay page and paying there), each
// sent again after a failure as a provider does.
func TestChaos(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("CHAOS_SEED=%d", seed)
	const orders = 300

	secret := sign.NewSecret()
	cb, srv := recordedShop(t, secret)

	dir := t.TempDir()
	listen := "127.0.0.1:" + itoa(freePort(t))
	admin := "127.0.0.1:" + itoa(freePort(t))
	// Two providers: the sandbox and Stripe (its fake), so customers get
	// the pay page and choose.
	const whsec = "whsec_chaos_0123456789abcdef"
	fake := stripetest.New(t)
	cf := caddyfile(filepath.Join(dir, "checkout.db"), admin, listen, secret, srv.URL+"/payments/webhook", strings.TrimPrefix(srv.URL, "http://"))
	cf = strings.Replace(cf, "\t\tsandbox\n", "\t\tsandbox\n\t\tstripe {\n\t\t\tsecret_key sk_test_chaosSecretKey\n\t\t\twebhook_secret "+whsec+"\n\t\t\tapi_url "+fake.URL+"\n\t\t}\n", 1)
	fake.SetWebhook("http://"+listen+"/_checkout/webhook/stripe", whsec)
	base := "http://" + listen
	var child *exec.Cmd
	up := func() {
		child = startChild(t, dir, cf)
		waitFor(t, 30*time.Second, "Caddy to start", func() bool {
			r, err := http.Get(base + "/")
			if err == nil {
				r.Body.Close()
			}
			return err == nil
		})
	}
	kills := 0
	kill := func() {
		_ = child.Process.Signal(syscall.SIGKILL)
		_, _ = child.Process.Wait()
		kills++
		up()
	}
	shopDown := 0
	// chaos strikes at a random point: Caddy killed, or the shop's
	// callback endpoint down or back.
	chaos := func() {
		if rng.IntN(100) < 3 {
			kill()
		}
		if rng.IntN(8) == 0 {
			down := rng.IntN(2) == 0
			cb.setFail(down)
			if down {
				shopDown++
			}
		}
	}
	up()

	type payment struct {
		ref, amount, currency string
		paid                  bool // the provider got a 200 for its webhook
		body                  []byte
		header                http.Header
		stripeEvent           string // the paid event of a Stripe payment
	}
	var pays []*payment
	c := noRedirectClient()
	for len(pays) < orders {
		chaos()
		r, err := c.PostForm(base+"/buy", map[string][]string{"product": {"mug"}})
		if err != nil {
			continue // Caddy was being killed: the customer tries again
		}
		r.Body.Close()
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("buy: %d", r.StatusCode)
		}
		p := &payment{ref: path.Base(r.Header.Get("Location")), amount: "12.50", currency: "USD"}
		pays = append(pays, p)
		chaos()
		switch n := rng.IntN(10); {
		case n < 6: // paid in the sandbox
			p.body, p.header = sandboxWebhook(t, secret, p.ref, p.amount, p.currency)
		case n < 8: // paid at Stripe, if the customer gets there
			p.stripeEvent = payAtStripe(t, c, base, p.ref, fake)
		}
	}
	// Each provider sends each payment's webhook until it gets a 200,
	// while Caddy keeps dying now and then.
	fake.WaitDeliveries()
	stripeOK := map[string]bool{}
	for _, d := range fake.Deliveries() {
		if d.Status == http.StatusOK {
			stripeOK[d.EventID] = true
		}
	}
	for _, p := range pays {
		for tries := 0; p.body != nil && !p.paid; tries++ {
			if tries > 50 {
				t.Fatalf("the webhook of %s never got a 200", p.ref)
			}
			chaos()
			code, err := postWebhook(listen, p.body, p.header)
			p.paid = err == nil && code == http.StatusOK
		}
		for tries := 0; p.stripeEvent != "" && !p.paid; tries++ {
			if tries > 50 {
				t.Fatalf("Stripe's event for %s never got a 200", p.ref)
			}
			if p.paid = stripeOK[p.stripeEvent]; p.paid {
				break
			}
			chaos()
			d, err := fake.Resend(p.stripeEvent)
			if err != nil {
				t.Fatal(err)
			}
			stripeOK[p.stripeEvent] = d.Status == http.StatusOK
		}
	}
	cb.setFail(false)

	// The outbox drains: what waits for a retry is retried now, as an
	// operator would (the next try could be minutes away).
	type delivery struct {
		ID, State, OrderID string
	}
	var left []delivery
	waitFor(t, 60*time.Second, "the outbox to drain", func() bool {
		left = nil
		for _, st := range []string{"pending", "dead"} {
			var ds []struct {
				ID      string    `json:"id"`
				State   string    `json:"state"`
				OrderID string    `json:"order_id"`
				NextAt  time.Time `json:"next_at"`
			}
			adminGet(t, admin, "/checkout/deliveries?state="+st, &ds)
			for _, d := range ds {
				left = append(left, delivery{d.ID, d.State, d.OrderID})
				if d.State != "pending" || time.Until(d.NextAt) > time.Second {
					resp, err := http.Post("http://"+admin+"/checkout/deliveries/"+d.ID+"/retry", "application/json", nil)
					if err == nil {
						resp.Body.Close()
					}
				}
			}
		}
		return len(left) == 0
	})
	if len(left) > 0 {
		t.Fatalf("left in the outbox: %+v", left)
	}

	// Every confirmed payment is paid; no other order is.
	paid, unpaid := 0, 0
	for _, p := range pays {
		var st struct{ Status string }
		if code := getJSON(t, base+"/_checkout/status/"+p.ref, &st); code != 200 {
			t.Fatalf("status of %s: %d", p.ref, code)
		}
		switch {
		case p.paid && st.Status != "paid":
			t.Errorf("%s: the provider got its 200, but the order is %s", p.ref, st.Status)
		case !p.paid && st.Status == "paid":
			t.Errorf("%s: paid without a payment", p.ref)
		case p.paid:
			paid++
		default:
			unpaid++
		}
	}
	// Each order's callback of each type came under one webhook-id.
	cb.mu.Lock()
	ids := map[string]map[string]bool{} // order/type → webhook-ids delivered
	for i, body := range cb.bodies {
		var ev struct {
			Type string
			Data struct {
				OrderID string `json:"order_id"`
			}
		}
		_ = json.Unmarshal([]byte(body), &ev)
		k := ev.Data.OrderID + "/" + ev.Type
		if ids[k] == nil {
			ids[k] = map[string]bool{}
		}
		ids[k][cb.ok[i]] = true
	}
	tries := len(cb.tries)
	cb.mu.Unlock()
	paidCallbacks := 0
	for k, set := range ids {
		if len(set) != 1 {
			t.Errorf("%s came under %d webhook-ids", k, len(set))
		}
		if strings.HasSuffix(k, "/order.paid") {
			paidCallbacks++
		}
	}
	if paidCallbacks != paid {
		t.Errorf("%d order.paid callbacks delivered for %d paid orders", paidCallbacks, paid)
	}
	atStripe := 0
	for _, p := range pays {
		if p.stripeEvent != "" && p.paid {
			atStripe++
		}
	}
	msg := fmt.Sprintf("chaos (seed %d): %d orders, %d paid (%d at Stripe), %d unpaid; Caddy killed %d times; shop taken down %d times; %d callback tries, %d delivered for %d order/type pairs; outbox drained",
		seed, len(pays), paid, atStripe, unpaid, kills, shopDown, tries, len(cb.ok), len(ids))
	t.Log(msg)
	fmt.Println(msg)
}

// payAtStripe takes an order's customer from the pay page to Stripe's and
// pays there (the fake's control, as the customer's click would); it
// returns Stripe's paid event, or "" when Caddy died on the way (the
// customer gives up on that order).
func payAtStripe(t *testing.T, c *http.Client, base, ref string, fake *stripetest.Server) string {
	t.Helper()
	r, err := c.Get(base + "/_checkout/pay/" + ref)
	if err != nil {
		return ""
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	m := csrfRE.FindStringSubmatch(string(b))
	if m == nil {
		return ""
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/_checkout/pay/"+ref, strings.NewReader(url.Values{"csrf": {m[1]}, "provider": {"stripe"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	if r, err = c.Do(req); err != nil {
		return ""
	}
	r.Body.Close()
	page := r.Header.Get("Location")
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(page, fake.URL+"/pay/cs_") {
		return ""
	}
	ev, err := fake.Pay(path.Base(page))
	if err != nil {
		t.Fatalf("paying session %s: %v", path.Base(page), err)
	}
	return ev.ID
}
