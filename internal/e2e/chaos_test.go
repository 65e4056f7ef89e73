package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/caddy-checkout/checkout/internal/chaintest"
	"github.com/caddy-checkout/checkout/internal/cyclostest"
	"github.com/caddy-checkout/checkout/internal/demoshop"
	"github.com/caddy-checkout/checkout/internal/komojutest"
	"github.com/caddy-checkout/checkout/internal/stripetest"
	"github.com/caddy-checkout/checkout/providers/erc20/hdkey"
	"github.com/caddy-checkout/checkout/sign"
)

// TestChaos pays a few hundred orders through a real Caddy child process
// while killing it with SIGKILL at random points (and leaving it down for
// a while, or starting it again at once) and taking the shop's callback
// endpoint up and down, then checks what a payments system must hold:
// every payment the provider was told was taken is paid in the store, no
// other order is paid, a konbini slip not yet paid holds its order, every
// state change's callback reached the shop under one webhook-id however
// often it was tried, and the outbox drains. Seeded: CHAOS_SEED=<n>
// replays a run's decisions.
//
// The customers pay through every provider, each behind its fake: the
// sandbox's signed webhooks; Stripe Checkout; KOMOJU by card, or with a
// konbini slip that holds the order until it is paid at the counter some
// orders later (or never); Cyclos tickets approved on Cyclos's page, whose
// one webhook call may find Caddy down, so the customer's browser reloads
// the return until Caddy answers; and ERC-20 transfers on a simulated
// chain that the Caddy child reads over JSON-RPC (chaintest.ServeRPC),
// which its watcher finds on its own however often it was killed. Each
// provider sends a webhook again after a failure, as it does.
//
// Kills come between the customers' and providers' steps, so a seed
// replays them; Cyclos's webhook and the watcher's polls run on their own,
// so a kill may also land in the middle of Caddy's work on them.
func TestChaos(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("CHAOS_SEED=%d", seed)
	const orders = 300

	r := &chaosRun{t: t, rng: rand.New(rand.NewPCG(seed, 1)), c: noRedirectClient(), dir: t.TempDir(), sentAgain: map[string]int{}}
	r.secret = sign.NewSecret()
	cb, shop := recordedShop(t, r.secret, tokenProduct)
	r.cb, r.shop = cb, shop.URL
	r.stripe = stripetest.New(t)
	r.komoju = komojutest.New(t)
	r.cyclos = cyclostest.New(t)
	r.cyclos.AddUser(cyclosPayer, cyclosPassword, "100000.00")
	r.chain = chaintest.New(t)
	r.token = r.chain.DeployToken("0xBTC", 8, new(big.Int).Mul(big.NewInt(21_000_000), big.NewInt(1e8)))

	listen := "127.0.0.1:" + itoa(freePort(t))
	r.admin = "127.0.0.1:" + itoa(freePort(t))
	r.base = "http://" + listen
	const whsec, komojuHook = "whsec_chaos_0123456789abcdef", "chaos-komoju-webhook-token"
	r.cf = strings.Replace(caddyfile(filepath.Join(r.dir, "checkout.db"), r.admin, listen, r.secret, r.shop+"/payments/webhook", strings.TrimPrefix(r.shop, "http://")),
		"\t\tsandbox\n", "\t\tsandbox\n"+
			stripeBlock("sk_test_chaosSecretKey", whsec, r.stripe.URL)+
			komojuBlock(komojutest.SecretKey, komojuHook, r.komoju.URL)+
			cyclosBlock(r.cyclos.URL, r.cyclos.AccessClientToken())+
			erc20Block(r.chain.ServeRPC(), r.token.Hex(), hdkey.TestXpub), 1)
	r.up()
	r.stripe.SetWebhook(r.base+"/_checkout/webhook/stripe", whsec)
	r.komoju.SetWebhook(r.base+"/_checkout/webhook/komoju", komojuHook)

	start := time.Now()
	phase := func(what string) { t.Logf("%s after %s", what, time.Since(start).Round(time.Millisecond)) }
	var pays []*chaosPayment
	for len(pays) < orders {
		r.chaos()
		r.payAtCounter(len(pays), false)
		// The customer decides how to pay before buying: the token's
		// product is the one the ERC-20 provider takes.
		via := chaosVia(r.rng.IntN(20))
		p := r.buy(via)
		if p == nil {
			continue // Caddy was down: the customer tries again
		}
		pays = append(pays, p)
		r.chaos()
		switch via {
		case "sandbox":
			// Paid on the sandbox's page, which has the sandbox send its
			// signed webhook.
			if strings.Contains(r.choose(p.ref, "sandbox"), "/_checkout/sandbox/") {
				p.body, p.header = sandboxWebhook(t, r.secret, p.ref, "12.50", "USD")
				p.paid = true
			}
		case "stripe":
			p.stripeEvent = r.payAtStripe(p.ref)
			p.paid = p.stripeEvent != ""
		case "komoju", "konbini":
			r.payAtKomoju(p, len(pays))
		case "cyclos":
			r.payAtCyclos(p)
		case "erc20":
			r.payOnChain(p)
		}
	}
	r.payAtCounter(len(pays), true)
	phase("the customers are done")
	r.providersRetry(pays)
	r.up()
	phase("every webhook got its 200")
	r.creditsArrive(pays)
	phase("every transfer is credited")
	r.cb.setFail(false)
	r.outboxDrains()
	phase("the outbox drained")

	// Every confirmed payment is paid, every unpaid slip holds its order,
	// and no other order is paid.
	counts := map[string]*chaosCount{}
	for _, p := range pays {
		var st struct{ Status string }
		if code := getJSON(t, r.base+"/_checkout/status/"+p.ref, &st); code != 200 {
			t.Fatalf("status of %s: %d", p.ref, code)
		}
		want := "not paid"
		switch {
		case p.held:
			want = "on_hold"
		case p.paid:
			want = "paid"
		}
		if got := st.Status; got != want && (want != "not paid" || got == "paid" || got == "on_hold") {
			t.Errorf("%s via %s: the order is %s, want %s", p.ref, p.via, got, want)
		}
		n := counts[p.via]
		if n == nil {
			n = &chaosCount{}
			counts[p.via] = n
		}
		n.orders++
		switch want {
		case "paid":
			n.paid++
		case "on_hold":
			n.held++
		default:
			n.unpaid++
		}
	}
	// Cyclos moved the money of each approved ticket once.
	if got, want := r.cyclos.Payments(), counts["cyclos"].paidOrZero(); got != want {
		t.Errorf("%d payments at Cyclos for %d approved tickets", got, want)
	}
	r.checkCallbacks(pays, counts)

	var b strings.Builder
	fmt.Fprintf(&b, "chaos (seed %d): %d orders; Caddy killed %d times, down for %d steps; shop taken down %d times; "+
		"webhooks sent again: %d sandbox, %d Stripe, %d KOMOJU; %d Cyclos webhooks lost; %d callback tries, %d delivered; outbox drained",
		seed, len(pays), r.kills, r.downSteps, r.shopDown, r.sentAgain["sandbox"], r.sentAgain["stripe"], r.sentAgain["komoju"], r.cyclosLost,
		r.callbackTries, r.callbacksDelivered)
	for _, via := range chaosProviders {
		if n := counts[via]; n != nil {
			fmt.Fprintf(&b, "\n  %-8s %3d orders: %3d paid, %2d held, %3d unpaid", via, n.orders, n.paid, n.held, n.unpaid)
		}
	}
	t.Log(b.String())
	fmt.Println(b.String())
}

// chaosProviders are the ways a chaos customer pays: "konbini" is KOMOJU's
// slip paid at a store, and "none" a customer who leaves at the pay page.
var chaosProviders = []string{"sandbox", "stripe", "komoju", "konbini", "cyclos", "erc20", "none"}

// chaosVia maps a draw from 0 to 19 to how the customer pays.
func chaosVia(n int) string {
	switch {
	case n < 5:
		return "sandbox"
	case n < 8:
		return "stripe"
	case n < 10:
		return "komoju"
	case n < 12:
		return "konbini"
	case n < 15:
		return "cyclos"
	case n < 18:
		return "erc20"
	}
	return "none"
}

// chaosCount is what became of one provider's orders.
type chaosCount struct{ orders, paid, held, unpaid int }

func (n *chaosCount) paidOrZero() int {
	if n == nil {
		return 0
	}
	return n.paid
}

// chaosPayment is one order of the chaos run and what its provider did.
type chaosPayment struct {
	via  string // one of chaosProviders
	ref  string
	paid bool // the provider took the money
	held bool // a konbini slip not paid (yet): the order is on hold

	body   []byte // the sandbox's webhook
	header http.Header

	stripeEvent string // the paid event of a Stripe payment

	komojuPayment string // KOMOJU's payment id
	counterAt     int    // a slip is paid once this many orders were made; 0: never
}

// chaosRun is a Caddy child process that chaos strikes, and the shop and
// the providers' fakes around it.
type chaosRun struct {
	t           *testing.T
	rng         *rand.Rand
	c           *http.Client // the customers' browser
	dir, cf     string       // Caddy's data directory and Caddyfile
	base, admin string       // Caddy's site URL and admin address
	child       *exec.Cmd    // nil while Caddy is down

	secret string
	cb     *shopRecorder
	shop   string // the shop's URL

	stripe *stripetest.Server
	komoju *komojutest.Server
	cyclos *cyclostest.Server
	chain  *chaintest.Chain
	token  common.Address

	slips []*chaosPayment // konbini slips to be paid at the counter

	kills, downSteps, shopDown        int
	callbackTries, callbacksDelivered int
	sentAgain                         map[string]int // provider → webhooks sent again after a failure
	cyclosLost                        int            // Cyclos webhook calls that found Caddy down or dying
}

// up starts Caddy if it is down and waits until it answers.
func (r *chaosRun) up() {
	if r.child != nil {
		return
	}
	r.child = startChild(r.t, r.dir, r.cf)
	waitFor(r.t, 30*time.Second, "Caddy to start", func() bool {
		resp, err := http.Get(r.base + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
}

// kill ends Caddy with SIGKILL.
func (r *chaosRun) kill() {
	_ = r.child.Process.Signal(syscall.SIGKILL)
	_, _ = r.child.Process.Wait()
	r.child = nil
	r.kills++
	// Connections to the dead process are gone; a customer's browser
	// opens new ones.
	r.c.CloseIdleConnections()
	http.DefaultClient.CloseIdleConnections()
}

// chaos strikes at a random point: Caddy is killed, and started again at
// once or after a few steps (four on average); the shop's callback
// endpoint goes down or comes back.
func (r *chaosRun) chaos() {
	switch {
	case r.child == nil:
		r.downSteps++
		if r.rng.IntN(4) == 0 {
			r.up()
		}
	case r.rng.IntN(100) < 5:
		r.kill()
		if r.rng.IntN(3) == 0 {
			r.up()
		}
	}
	if r.rng.IntN(8) == 0 {
		down := r.rng.IntN(2) == 0
		r.cb.setFail(down)
		if down {
			r.shopDown++
		}
	}
}

// tokenProduct adds a product priced in the chain's token to the shop,
// the one the ERC-20 provider (which takes its token only) is chosen for.
func tokenProduct(mux *http.ServeMux, _ *demoshop.Shop) {
	var n atomic.Int64
	mux.HandleFunc("POST /buy-token", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Checkout-Order", fmt.Sprintf("token-%d", n.Add(1)))
		h.Set("X-Checkout-Amount", "0.5")
		h.Set("X-Checkout-Currency", "0xBTC")
		h.Set("X-Checkout-Description", "Token%20sticker")
		fmt.Fprint(w, "payment required")
	})
}

// tokenPrice is 0.5 0xBTC in the token's units (8 decimals).
var tokenPrice = big.NewInt(50_000_000)

// buy buys a mug, or the token's product for a customer paying on chain,
// and returns the order's payment, or nil when Caddy did not answer.
func (r *chaosRun) buy(via string) *chaosPayment {
	buy := "/buy"
	if via == "erc20" {
		buy = "/buy-token"
	}
	resp, err := r.c.PostForm(r.base+buy, url.Values{"product": {"mug"}})
	if err != nil {
		return nil
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		r.t.Fatalf("buy: %d", resp.StatusCode)
	}
	return &chaosPayment{via: via, ref: path.Base(resp.Header.Get("Location"))}
}

// choose chooses a provider on the order's pay page and returns where
// Caddy sends the customer, or "" when Caddy died on the way (the
// customer gives up on the order).
func (r *chaosRun) choose(ref, name string) string {
	resp, err := r.c.Get(r.base + "/_checkout/pay/" + ref)
	if err != nil {
		return ""
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRE.FindStringSubmatch(string(b))
	if m == nil {
		return ""
	}
	r.chaos()
	req, _ := http.NewRequest(http.MethodPost, r.base+"/_checkout/pay/"+ref, strings.NewReader(url.Values{"csrf": {m[1]}, "provider": {name}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", r.base)
	if resp, err = r.c.Do(req); err != nil {
		return ""
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		r.t.Fatalf("choosing %s for %s: %d", name, ref, resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

// payAtStripe takes an order's customer to Stripe's page and pays there
// (the fake's control, as the customer's click would); it returns
// Stripe's paid event, or "" when the customer gave up on the way.
func (r *chaosRun) payAtStripe(ref string) string {
	page := r.choose(ref, "stripe")
	if !strings.HasPrefix(page, r.stripe.URL+"/pay/cs_") {
		return ""
	}
	r.chaos()
	ev, err := r.stripe.Pay(path.Base(page))
	if err != nil {
		r.t.Fatalf("paying session %s: %v", path.Base(page), err)
	}
	return ev.ID
}

// payAtKomoju takes the customer to KOMOJU's page to pay by card or take
// a konbini slip, and back to Caddy half of the time. Two slips in three
// are paid at the counter some orders later.
func (r *chaosRun) payAtKomoju(p *chaosPayment, made int) {
	page := r.choose(p.ref, "komoju")
	if !strings.HasPrefix(page, r.komoju.URL+"/sessions/") {
		return
	}
	r.chaos()
	action := "credit_card"
	if p.via == "konbini" {
		action = "konbini"
	}
	resp, err := r.c.PostForm(page, url.Values{"action": {action}, "card": {"4111111111111111"}, "store": {"lawson"}})
	if err != nil {
		r.t.Fatal(err)
	}
	resp.Body.Close()
	back := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(back, r.base+"/_checkout/return/komoju/") {
		r.t.Fatalf("KOMOJU answered %d and sent the customer to %q", resp.StatusCode, back)
	}
	p.komojuPayment = r.komoju.PaymentOf(path.Base(page))
	if action == "konbini" {
		p.held = true
		if r.rng.IntN(3) > 0 {
			p.counterAt = made + 1 + r.rng.IntN(30)
			r.slips = append(r.slips, p)
		}
	} else {
		p.paid = true
	}
	if r.rng.IntN(2) == 0 {
		r.chaos()
		if resp, err := r.c.Get(back); err == nil {
			resp.Body.Close()
		}
	}
}

// payAtCounter pays the konbini slips due once made orders were made, or
// all of them at the end.
func (r *chaosRun) payAtCounter(made int, all bool) {
	rest := r.slips[:0]
	for _, p := range r.slips {
		if !all && p.counterAt > made {
			rest = append(rest, p)
			continue
		}
		r.chaos()
		if err := r.komoju.Capture(p.komojuPayment); err != nil {
			r.t.Fatal(err)
		}
		p.held, p.paid = false, true
	}
	r.slips = rest
}

const cyclosPayer, cyclosPassword = "alice", "alice-pw"

// payAtCyclos takes the customer to Cyclos to approve the ticket. Cyclos
// calls the webhook once, in the background (Caddy may be down or die
// while it runs), and sends the browser back, which reloads until Caddy
// answers with the shop's thanks page.
func (r *chaosRun) payAtCyclos(p *chaosPayment) {
	page := r.choose(p.ref, "cyclos")
	if !strings.HasPrefix(page, r.cyclos.URL+"/") {
		return
	}
	r.chaos()
	resp, err := r.c.PostForm(page, url.Values{"username": {cyclosPayer}, "password": {cyclosPassword}, "action": {"approve"}})
	if err != nil {
		r.t.Fatal(err)
	}
	resp.Body.Close()
	back := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(back, r.base+"/_checkout/return/cyclos/") {
		r.t.Fatalf("Cyclos answered %d and sent the customer to %q", resp.StatusCode, back)
	}
	p.paid = true // approved: the ticket is the shop's to process
	for tries := 0; ; tries++ {
		if tries > 50 {
			r.t.Fatalf("the return from Cyclos of %s never reached the thanks page", p.ref)
		}
		r.chaos()
		resp, err := r.c.Get(back)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusSeeOther && strings.Contains(resp.Header.Get("Location"), "/thanks") {
			return
		}
	}
}

var addressRE = regexp.MustCompile(`value="(0x[0-9a-fA-F]{40})" aria-label="Address"`)

// payOnChain shows the customer the pay page's address, and four
// customers in five send the token there (in a block of its own).
func (r *chaosRun) payOnChain(p *chaosPayment) {
	loc := r.choose(p.ref, "erc20")
	if !strings.HasPrefix(loc, "/_checkout/pay/") {
		return
	}
	r.chaos()
	resp, err := r.c.Get(r.base + loc)
	if err != nil {
		return
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := addressRE.FindSubmatch(b)
	if m == nil {
		r.t.Fatalf("no address on the pay page (%d):\n%s", resp.StatusCode, b)
	}
	if r.rng.IntN(5) == 0 {
		return
	}
	r.chain.Transfer(r.token, 0, common.HexToAddress(string(m[1])), tokenPrice)
	r.chain.Commit()
	p.paid = true
}

// providersRetry has each provider send each payment's webhook until it
// gets a 200, while Caddy keeps dying now and then: the sandbox and
// KOMOJU send the same event again, Stripe resends it freshly signed.
func (r *chaosRun) providersRetry(pays []*chaosPayment) {
	t := r.t
	r.stripe.WaitDeliveries()
	r.cyclos.WaitWebhooks()
	for _, w := range r.cyclos.Webhooks() {
		if w.Status != http.StatusOK {
			r.cyclosLost++
		}
	}
	delivered := map[string]bool{}
	for _, d := range r.stripe.Deliveries() {
		delivered[d.EventID] = delivered[d.EventID] || d.Status == http.StatusOK
	}
	for _, d := range r.komoju.Deliveries() {
		delivered[d.EventID] = delivered[d.EventID] || d.Status == http.StatusOK
	}
	komojuEvents := map[string][]string{} // payment id → its events, in order
	for _, ev := range r.komoju.Events() {
		var b struct{ Data struct{ ID string } }
		_ = json.Unmarshal(ev.Body, &b)
		komojuEvents[b.Data.ID] = append(komojuEvents[b.Data.ID], ev.ID)
	}
	for _, p := range pays {
		for tries, ok := 0, false; p.body != nil && !ok; tries++ {
			if tries > 50 {
				t.Fatalf("the webhook of %s never got a 200", p.ref)
			}
			r.chaos()
			if tries > 0 {
				r.sentAgain["sandbox"]++
			}
			code, err := postWebhook(strings.TrimPrefix(r.base, "http://"), p.body, p.header)
			ok = err == nil && code == http.StatusOK
		}
		for tries := 0; p.stripeEvent != "" && !delivered[p.stripeEvent]; tries++ {
			if tries > 50 {
				t.Fatalf("Stripe's event for %s never got a 200", p.ref)
			}
			r.chaos()
			r.sentAgain["stripe"]++
			d, err := r.stripe.Resend(p.stripeEvent)
			if err != nil {
				t.Fatal(err)
			}
			delivered[p.stripeEvent] = d.Status == http.StatusOK
		}
		if p.komojuPayment == "" {
			continue
		}
		for _, ev := range komojuEvents[p.komojuPayment] {
			for tries := 0; !delivered[ev]; tries++ {
				if tries > 50 {
					t.Fatalf("KOMOJU's event %s for %s never got a 200", ev, p.ref)
				}
				r.chaos()
				r.sentAgain["komoju"]++
				delivered[ev] = r.komoju.Redeliver(ev).Status == http.StatusOK
			}
		}
	}
}

// creditsArrive confirms the last transfers on chain and waits for the
// watcher to credit every one: Caddy is killed twice meanwhile.
func (r *chaosRun) creditsArrive(pays []*chaosPayment) {
	r.chain.Mine(2)
	for i := 0; i < 2; i++ {
		r.kill()
		r.up()
	}
	waitFor(r.t, 60*time.Second, "every transfer to be credited", func() bool {
		for _, p := range pays {
			if p.via != "erc20" || !p.paid {
				continue
			}
			var st struct{ Status string }
			if getJSON(r.t, r.base+"/_checkout/status/"+p.ref, &st); st.Status != "paid" {
				return false
			}
		}
		return true
	})
}

// outboxDrains retries what waits in the outbox now, as an operator would
// (the next try could be minutes away), until nothing is left.
func (r *chaosRun) outboxDrains() {
	type delivery struct {
		ID, State, OrderID string
	}
	var left []delivery
	waitFor(r.t, 60*time.Second, "the outbox to drain", func() bool {
		left = nil
		for _, st := range []string{"pending", "dead"} {
			var ds []struct {
				ID      string    `json:"id"`
				State   string    `json:"state"`
				OrderID string    `json:"order_id"`
				NextAt  time.Time `json:"next_at"`
			}
			adminGet(r.t, r.admin, "/checkout/deliveries?state="+st, &ds)
			for _, d := range ds {
				left = append(left, delivery{d.ID, d.State, d.OrderID})
				if d.State != "pending" || time.Until(d.NextAt) > time.Second {
					resp, err := http.Post("http://"+r.admin+"/checkout/deliveries/"+d.ID+"/retry", "application/json", nil)
					if err == nil {
						resp.Body.Close()
					}
				}
			}
		}
		return len(left) == 0
	})
	if len(left) > 0 {
		r.t.Fatalf("left in the outbox: %+v", left)
	}
}

// checkCallbacks checks what reached the shop against each order's
// history: a callback for every state change it records (order.pending
// for on hold, order.paid, ...) and for no other, each under one
// webhook-id however often it was tried, and the order.paid callbacks
// naming the provider that took each payment.
func (r *chaosRun) checkCallbacks(pays []*chaosPayment, counts map[string]*chaosCount) {
	t := r.t
	var orders []struct {
		ID       string `json:"order_id"`
		PaidWith string `json:"paid_with"`
		Attempts []struct {
			Ref string `json:"ref"`
		} `json:"attempts"`
		History []struct {
			To      string `json:"to"`
			Applied bool   `json:"applied"`
		} `json:"history"`
	}
	if code := adminGet(t, r.admin, "/checkout/orders?limit=10000", &orders); code != 200 || len(orders) != len(pays) {
		t.Fatalf("admin orders: %d, %d orders for %d bought", code, len(orders), len(pays))
	}
	want := map[string]bool{} // order/type of every state change
	for _, o := range orders {
		for _, ev := range o.History {
			if typ := callbackOf[ev.To]; ev.Applied && typ != "" {
				want[o.ID+"/"+typ] = true
			}
		}
	}

	r.cb.mu.Lock()
	ids := map[string]map[string]bool{} // order/type → webhook-ids delivered
	paidBy := map[string]int{}          // provider → orders paid, by callback
	for i, body := range r.cb.bodies {
		var ev struct {
			Type string
			Data struct {
				OrderID  string `json:"order_id"`
				Provider string `json:"provider"`
			}
		}
		_ = json.Unmarshal([]byte(body), &ev)
		k := ev.Data.OrderID + "/" + ev.Type
		if ids[k] == nil {
			ids[k] = map[string]bool{}
			if ev.Type == "order.paid" {
				paidBy[ev.Data.Provider]++
			}
		}
		ids[k][r.cb.ok[i]] = true
	}
	r.callbackTries, r.callbacksDelivered = len(r.cb.tries), len(r.cb.ok)
	r.cb.mu.Unlock()
	for k, set := range ids {
		if len(set) != 1 {
			t.Errorf("%s came under %d webhook-ids", k, len(set))
		}
		if !want[k] {
			t.Errorf("%s came, but the order's history has no such change", k)
		}
	}
	for k := range want {
		if ids[k] == nil {
			t.Errorf("%s: the order's history has the change, but its callback never came", k)
		}
	}
	byProvider := map[string]int{
		"sandbox": counts["sandbox"].paidOrZero(),
		"stripe":  counts["stripe"].paidOrZero(),
		"komoju":  counts["komoju"].paidOrZero() + counts["konbini"].paidOrZero(),
		"cyclos":  counts["cyclos"].paidOrZero(),
		"erc20":   counts["erc20"].paidOrZero(),
	}
	for name, n := range byProvider {
		if paidBy[name] != n {
			t.Errorf("%d order.paid callbacks from %s for %d paid orders", paidBy[name], name, n)
		}
	}
}

// callbackOf is the shop's callback type of a state an order moves to.
var callbackOf = map[string]string{
	"on_hold": "order.pending", "paid": "order.paid", "failed": "order.failed",
	"cancelled": "order.cancelled", "expired": "order.expired", "refunded": "order.refunded",
}
