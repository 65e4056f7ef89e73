// The ERC-20 provider through the site, on go-ethereum's simulated chain
// with a real ERC-20 contract compiled from Solidity (internal/chaintest):
// addresses from an xpub, payments credited at the configured depth,
// reorgs, look-alike tokens, failed transfers, partial and over-payments,
// a restart between seen and paid, and the 0xBTCpay-compatible API.
package erc20_test

import (
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"rsc.io/qr"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/handlers/handlerstest"
	"github.com/caddy-checkout/checkout/internal/chaintest"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/erc20"
	"github.com/caddy-checkout/checkout/providers/erc20/hdkey"
	"github.com/caddy-checkout/checkout/providers/sandbox"
	"github.com/caddy-checkout/checkout/store"
)

type erc20Env struct {
	*handlerstest.Env
	chain *chaintest.Chain
	token common.Address
	prov  *erc20.ERC20
}

const confirmations = 3

// newERC20Env is the harness's site with the erc20 provider watching a
// freshly deployed 0xBTC token (8 decimals) on a simulated chain, where
// Account(0) holds the supply.
func newERC20Env(t *testing.T, configure ...func(*handlers.Config)) *erc20Env {
	t.Helper()
	ee := &erc20Env{chain: chaintest.New(t)}
	ee.token = ee.chain.DeployToken("0xBTC", 8, new(big.Int).Mul(big.NewInt(21_000_000), big.NewInt(1e8)))
	ee.Env = handlerstest.New(t, func(c *handlers.Config) {
		ee.prov = newERC20Provider(ee.chain, ee.token)
		c.Providers = []provider.Provider{ee.prov}
		for _, f := range configure {
			f(c)
		}
	})
	ee.poll()
	return ee
}

func newERC20Provider(chain *chaintest.Chain, token common.Address) *erc20.ERC20 {
	p := &erc20.ERC20{Token: token.Hex(), Xpub: hdkey.TestXpub, Confirmations: confirmations, ChainID: 1337}
	p.UseChain(chain.Client())
	return p
}

// pay sends amount of the token to addr and mines it to the confirmation
// depth, then polls.
func (ee *erc20Env) pay(addr common.Address, amount string) common.Hash {
	ee.T.Helper()
	tx := ee.chain.Transfer(ee.token, 0, addr, units(amount))
	ee.chain.Commit()
	ee.chain.Mine(confirmations)
	ee.poll()
	return tx
}

func (ee *erc20Env) poll() erc20.PollResult {
	ee.T.Helper()
	res, err := ee.prov.PollOnce(context.Background())
	if err != nil {
		ee.T.Fatal(err)
	}
	return res
}

// units is an amount of 0xBTC in base units (8 decimals).
func units(s string) *big.Int {
	r, _ := new(big.Rat).SetString(s)
	r.Mul(r, new(big.Rat).SetInt64(1e8))
	return r.Num()
}

// order announces an order in 0xBTC through the server API and has the
// customer open the erc20 pay page; it returns the attempt's reference
// and receiving address.
func (ee *erc20Env) order(id, amount string) (string, common.Address) {
	ee.T.Helper()
	r := ee.API(http.MethodPost, "/_checkout/api/orders", ee.SecretText,
		`{"order_id":"`+id+`","amount":"`+amount+`","currency":"0xBTC","provider":"erc20"}`)
	if r.Code != http.StatusCreated {
		ee.T.Fatalf("api: %d %s", r.Code, r.Body)
	}
	o, err := ee.Store.Get(context.Background(), order.Key{Site: "shop", ID: id})
	if err != nil {
		ee.T.Fatal(err)
	}
	ref := o.Current().Ref
	page := ee.Get(ee.Client(), "/_checkout/pay/"+ref+"?provider=erc20")
	o = ee.OrderByRef(ref)
	addr := o.Current().ProviderRef
	if page.Code != http.StatusOK || addr == "" || !strings.Contains(page.Body, addr) || !strings.Contains(page.Body, amount+" 0xBTC") {
		ee.T.Fatalf("pay page: %d, address %q\n%s", page.Code, addr, page.Body)
	}
	return ref, common.HexToAddress(addr)
}

func TestERC20AddressesComeFromTheXpub(t *testing.T) {
	ee := newERC20Env(t)
	_, a0 := ee.order("A-0", "1.5")
	_, a1 := ee.order("A-1", "2")
	k, err := hdkey.Parse(hdkey.TestXpub)
	if err != nil {
		t.Fatal(err)
	}
	w0, _ := hdkey.Address(k, 0)
	w1, _ := hdkey.Address(k, 1)
	if a0 != w0 || a1 != w1 {
		t.Fatalf("addresses %s %s, want children 0 and 1 of the xpub: %s %s", a0.Hex(), a1.Hex(), w0.Hex(), w1.Hex())
	}
	// The same attempt keeps its address.
	ref, _ := ee.order("A-2", "3")
	before := ee.OrderByRef(ref).Current().ProviderRef
	ee.Get(ee.Client(), "/_checkout/pay/"+ref+"?provider=erc20")
	if after := ee.OrderByRef(ref).Current().ProviderRef; after != before {
		t.Fatalf("the attempt's address changed from %s to %s", before, after)
	}
	// The QR code of the payment URI is served as a PNG.
	r := ee.Get(ee.Client(), "/_checkout/erc20/qr/"+ref+".png")
	if r.Code != http.StatusOK || r.Header.Get("Content-Type") != "image/png" || !strings.HasPrefix(r.Body, "\x89PNG") {
		t.Fatalf("QR: %d %s", r.Code, r.Header.Get("Content-Type"))
	}
}

func TestERC20PaidAtExactlyNConfirmations(t *testing.T) {
	ee := newERC20Env(t)
	ref, addr := ee.order("P-1", "1.5")
	tx := ee.chain.Transfer(ee.token, 0, addr, units("1.5"))
	ee.chain.Commit()
	for conf := 1; conf < confirmations; conf++ {
		ee.poll()
		if o := ee.OrderByRef(ref); o.Status != order.Pending {
			t.Fatalf("at %d confirmations: %s", conf, o.Status)
		}
		status := ee.Get(ee.Client(), "/_checkout/status/"+ref)
		if !strings.Contains(status.Body, "seen") {
			t.Fatalf("live status at %d confirmations does not say seen:\n%s", conf, status.Body)
		}
		ee.chain.Mine(1)
	}
	ee.poll()
	o := ee.OrderByRef(ref)
	if o.Status != order.Paid || o.Transaction != tx.Hex() || o.PaidWith != "erc20" {
		t.Fatalf("at %d confirmations: %s txn %q", confirmations, o.Status, o.Transaction)
	}
	ee.chain.Mine(5)
	ee.poll()
	if types := ee.CallbackTypes(); len(types) != 1 || types[0] != "order.paid" {
		t.Fatalf("callbacks %v", types)
	}
}

func TestERC20ReorgDropsThePayment(t *testing.T) {
	ee := newERC20Env(t)
	ref, addr := ee.order("R-1", "1")
	parent := ee.chain.Commit() // an empty block to fork from
	ee.chain.Transfer(ee.token, 0, addr, units("1"))
	ee.chain.Commit()
	ee.poll()
	if !strings.Contains(ee.Get(ee.Client(), "/_checkout/status/"+ref).Body, "seen") {
		t.Fatal("the transfer was not seen")
	}
	ee.chain.Fork(parent)
	ee.chain.Mine(2)
	res := ee.poll()
	if !res.Reorg {
		t.Fatalf("the reorg was not noticed: %+v", res)
	}
	ee.chain.Mine(confirmations + 2)
	ee.poll()
	if o := ee.OrderByRef(ref); o.Status != order.Pending || len(ee.Deliveries()) != 0 {
		t.Fatalf("a reorged-out payment made the order %s", o.Status)
	}
	if strings.Contains(ee.Get(ee.Client(), "/_checkout/status/"+ref).Body, "seen") {
		t.Fatal("the reorged-out transfer is still shown as seen")
	}
}

func TestERC20OnlyTheTokensSuccessfulTransfersCount(t *testing.T) {
	ee := newERC20Env(t)
	ref, addr := ee.order("L-1", "1")
	lookAlike := ee.chain.DeployToken("0xBTC", 8, big.NewInt(1e16))
	ee.chain.Transfer(lookAlike, 0, addr, units("1"))
	ee.chain.FailingTransfer(ee.token, 1, addr, units("1")) // Account(1) holds no tokens: reverts
	ee.chain.Commit()
	ee.chain.Mine(confirmations + 1)
	ee.poll()
	if o := ee.OrderByRef(ref); o.Status != order.Pending {
		t.Fatalf("a look-alike token or a failed transfer made the order %s", o.Status)
	}
}

func TestERC20PartialPaymentsAddUpAndOverpaymentIsFlagged(t *testing.T) {
	ee := newERC20Env(t)
	ref, addr := ee.order("S-1", "2")
	ee.pay(addr, "0.5")
	o := ee.OrderByRef(ref)
	if o.Status != order.OnHold || o.Current().Received.String() != "0.50000000" {
		t.Fatalf("after 0.5 of 2: %s, received %s", o.Status, o.Current().Received)
	}
	ee.pay(addr, "1.5")
	if o := ee.OrderByRef(ref); o.Status != order.Paid {
		t.Fatalf("after 0.5 + 1.5 of 2: %s", o.Status)
	}

	ref2, addr2 := ee.order("S-2", "1")
	ee.pay(addr2, "1.25")
	if o := ee.OrderByRef(ref2); o.Status != order.Paid || !slices.Contains(o.Flags, "overpaid") {
		t.Fatalf("1.25 for 1: %s flags %v", o.Status, o.Flags)
	}
}

func TestERC20RestartBetweenSeenAndPaid(t *testing.T) {
	ee := newERC20Env(t)
	ref, addr := ee.order("K-1", "1")
	ee.chain.Transfer(ee.token, 0, addr, units("1"))
	ee.chain.Commit()
	ee.poll() // seen; then the process dies
	restarted := newERC20Provider(ee.chain, ee.token)
	if err := restarted.Setup(ee.Site().Env(restarted.Name())); err != nil {
		t.Fatal(err)
	}
	if err := restarted.Watcher().Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	ee.chain.Mine(confirmations)
	for i := 0; i < 3; i++ {
		if _, err := restarted.PollOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		ee.chain.Mine(1)
	}
	o := ee.OrderByRef(ref)
	applied := 0
	for _, h := range o.History {
		if h.Applied && h.To == order.Paid {
			applied++
		}
	}
	if o.Status != order.Paid || applied != 1 {
		t.Fatalf("after the restart: %s, paid %d times", o.Status, applied)
	}
}

func TestERC20PaymentAfterExpiryIsPaidLate(t *testing.T) {
	ee := newERC20Env(t)
	ref, addr := ee.order("E-1", "1")
	ee.Clock.Add(31 * 60e9)
	if _, err := ee.Site().Expire(context.Background(), 10); err != nil {
		t.Fatal(err)
	}
	if o := ee.OrderByRef(ref); o.Status != order.Expired {
		t.Fatalf("not expired: %s", o.Status)
	}
	ee.pay(addr, "1")
	if o := ee.OrderByRef(ref); o.Status != order.Paid || !o.Late {
		t.Fatalf("a payment after expiry: %s late %v", o.Status, o.Late)
	}
}

// rpc posts a JSON-RPC body to the 0xBTCpay endpoint.
func (ee *erc20Env) rpc(body string) (int, map[string]any) {
	ee.T.Helper()
	req, _ := http.NewRequest(http.MethodPost, ee.Srv.URL+"/_checkout/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	r := ee.Do(nil, req)
	var out map[string]any
	_ = json.Unmarshal([]byte(r.Body), &out)
	return r.Code, out
}

func TestOxbtcpayAPIEndToEnd(t *testing.T) {
	var (
		mu        sync.Mutex
		postbacks []*http.Request
		bodies    []string
	)
	shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		postbacks, bodies = append(postbacks, r), append(bodies, string(b))
		mu.Unlock()
	}))
	t.Cleanup(shop.Close)
	ee := newERC20Env(t)

	code, res := ee.rpc(`{"jsonrpc":"2.0","id":111,"method":"start_payment","params":{"amount":"222.333","data":{"order_id":"444"},"postback_url":"` + shop.URL + `/payment_complete"}}`)
	result, _ := res["result"].(map[string]any)
	if code != http.StatusOK || res["id"] != float64(111) || result == nil || result["amount"] != "222.333" {
		t.Fatalf("start_payment: %d %v", code, res)
	}
	id, _ := result["id"].(string)
	addr, _ := result["address"].(string)
	if len(id) != 16 || !common.IsHexAddress(addr) || addr != strings.ToLower(addr) {
		t.Fatalf("result %v: want a 16-hex id and a lower-case address", result)
	}
	status := func() map[string]any {
		r := ee.Get(ee.Client(), "/_checkout/"+id+"/status.json")
		var v map[string]any
		if r.Code != http.StatusOK || json.Unmarshal([]byte(r.Body), &v) != nil {
			t.Fatalf("status.json: %d %s", r.Code, r.Body)
		}
		return v
	}
	if v := status(); v["address"] != addr || v["amount"] != "222.333" || v["seen_at"] != nil || v["paid_at"] != nil || v["tx_hash"] != nil {
		t.Fatalf("status before payment: %v", v)
	}
	tx := ee.chain.Transfer(ee.token, 0, common.HexToAddress(addr), units("222.333"))
	ee.chain.Commit()
	ee.poll()
	if v := status(); v["seen_at"] == nil || v["paid_at"] != nil {
		t.Fatalf("status when seen: %v", v)
	}
	ee.chain.Mine(confirmations)
	ee.poll()
	v := status()
	if v["paid_at"] == nil || v["tx_hash"] != tx.Hex() || v["seen_at"] == nil {
		t.Fatalf("status when paid: %v", v)
	}
	// The postback goes through the outbox: signed, with 0xBTCpay's body.
	for i := 0; i < 3; i++ {
		if err := ee.Notifier.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(postbacks) != 1 || postbacks[0].URL.Path != "/payment_complete" || postbacks[0].Header.Get("webhook-signature") == "" {
		t.Fatalf("%d postbacks", len(postbacks))
	}
	var pb map[string]string
	if err := json.Unmarshal([]byte(bodies[0]), &pb); err != nil || pb["id"] != id || pb["data"] != `{"order_id":"444"}` || pb["tx_hash"] != tx.Hex() {
		t.Fatalf("postback body %s", bodies[0])
	}
	if _, err := ee.Secret.VerifyWebhook(postbacks[0].Header, []byte(bodies[0]), ee.Clock.Now()); err != nil {
		t.Fatalf("postback signature: %v", err)
	}
}

func TestOxbtcpayAPIErrors(t *testing.T) {
	ee := newERC20Env(t)
	for _, c := range []struct {
		body string
		code float64
		msg  string
	}{
		{`{not json`, -32700, "Parse error"},
		{`{"jsonrpc":"1.0","id":1,"method":"start_payment","params":{"amount":"1"}}`, -32600, "Invalid request"},
		{`{"jsonrpc":"2.0","method":"start_payment","params":{"amount":"1"}}`, -32600, "Invalid request"},
		{`{"jsonrpc":"2.0","id":1,"method":"start_payment"}`, -32600, "Invalid request"},
		{`{"jsonrpc":"2.0","id":1,"method":"stop_payment","params":{}}`, -32601, "Method not found"},
		{`{"jsonrpc":"2.0","id":1,"method":"start_payment","params":{}}`, -32602, "Invalid params: missing amount"},
		{`{"jsonrpc":"2.0","id":1,"method":"start_payment","params":{"amount":1.5}}`, -32602, "Invalid params: invalid amount"},
		{`{"jsonrpc":"2.0","id":1,"method":"start_payment","params":{"amount":"0"}}`, -32602, "Invalid params: invalid amount"},
		{`{"jsonrpc":"2.0","id":1,"method":"start_payment","params":{"amount":"1.123456789"}}`, -32602, "Invalid params: invalid amount"},
		{`{"jsonrpc":"2.0","id":1,"method":"start_payment","params":{"amount":"20999985"}}`, -32602, "Invalid params: invalid amount"},
		{`{"jsonrpc":"2.0","id":1,"method":"start_payment","params":{"amount":"-1"}}`, -32602, "Invalid params: invalid amount"},
		{`{"jsonrpc":"2.0","id":1,"method":"start_payment","params":{"amount":"1","postback_url":"javascript:alert(1)"}}`, -32602, "Invalid params: invalid postback URL"},
		// One JSON object, member names as written (found by FuzzOxbtcpayRPC).
		{`{"jsonrpc":"2.0","id":1,"method":"start_payment","params":{"amount":"1"}}{}`, -32700, "Parse error"},
		{`{"jsonrpc":"2.0","id":1,"method":"start_payment","params":{"Amount":"1"}}`, -32602, "Invalid params: missing amount"},
		{`{"JSONRPC":"2.0","id":1,"method":"start_payment","params":{"amount":"1"}}`, -32600, "Invalid request"},
	} {
		code, res := ee.rpc(c.body)
		e, _ := res["error"].(map[string]any)
		if code != http.StatusOK || e == nil || e["code"] != c.code || e["message"] != c.msg || res["id"] != nil {
			t.Errorf("%s: %d %v, want HTTP 200 error %v %q with id null", c.body, code, res, c.code, c.msg)
		}
	}
	if n := ee.Env.OrderCount(); n != 0 {
		t.Fatalf("bad requests stored %d orders", n)
	}
	if r := ee.Get(ee.Client(), "/_checkout/0123456789abcdef/status.json"); r.Code != http.StatusNotFound || r.Body != "not found" {
		t.Fatalf("unknown id: %d %q", r.Code, r.Body)
	}
	// Callers outside api_allow are refused, as by 0xBTCpay's IP whitelist.
	far := newERC20Env(t, func(c *handlers.Config) { c.APIAllow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
	if code, _ := far.rpc(`{"jsonrpc":"2.0","id":1,"method":"start_payment","params":{"amount":"1"}}`); code != http.StatusForbidden {
		t.Fatalf("caller outside api_allow: %d, want 403", code)
	}
}

func TestERC20IsOfferedOnlyForItsToken(t *testing.T) {
	ee := newERC20Env(t, func(c *handlers.Config) { c.Providers = append(c.Providers, &sandbox.Sandbox{}) })
	c := ee.Client()
	// The demo shop sells in USD: only the sandbox takes it, so the
	// customer goes straight there.
	r := ee.Post(c, "/buy", url.Values{"product": {"mug"}})
	if r.Code != http.StatusSeeOther || !strings.Contains(r.Location, "/_checkout/sandbox/") {
		t.Fatalf("a USD order: %d %q, want straight to the sandbox", r.Code, r.Location)
	}
	// A 0xBTC order offers both.
	ee.API(http.MethodPost, "/_checkout/api/orders", ee.SecretText, `{"order_id":"B-1","amount":"1","currency":"0xBTC"}`)
	o, err := ee.Store.Get(context.Background(), order.Key{Site: "shop", ID: "B-1"})
	if err != nil {
		t.Fatal(err)
	}
	page := ee.Get(c, "/_checkout/pay/"+o.Current().Ref)
	if !strings.Contains(page.Body, `value="erc20"`) || !strings.Contains(page.Body, `value="sandbox"`) {
		t.Fatalf("the 0xBTC order's pay page does not offer both:\n%s", page.Body)
	}
}

func TestERC20PartPaymentAsksForTheRestAndLateHalvesAddUp(t *testing.T) {
	ee := newERC20Env(t)
	ref, addr := ee.order("H-1", "2")
	ee.pay(addr, "0.5")
	page := ee.Get(ee.Client(), "/_checkout/pay/"+ref+"?provider=erc20")
	if !strings.Contains(page.Body, "0.5 0xBTC of 2 0xBTC has arrived") || !strings.Contains(page.Body, "uint256=150000000") {
		t.Fatalf("the page after a part payment does not ask for the remaining 1.5:\n%s", page.Body)
	}
	// The QR code asks for the rest too, under a URL that names it, and is
	// never kept by the browser.
	if !strings.Contains(page.Body, "/qr/"+ref+".png?due=150000000") {
		t.Fatalf("the QR link does not name the amount due:\n%s", page.Body)
	}
	qrResp := ee.Get(ee.Client(), "/_checkout/erc20/qr/"+ref+".png?due=150000000")
	want, err := qr.Encode(erc20.PaymentURI(ee.token, ee.prov.ChainID, addr, big.NewInt(150_000_000)), qr.M)
	if err != nil {
		t.Fatal(err)
	}
	want.Scale = 8
	if qrResp.Body != string(want.PNG()) || qrResp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("the QR code does not encode the remaining 1.5 (or may be cached: %q)", qrResp.Header.Get("Cache-Control"))
	}
	if ja := ee.Get(ee.Client(), "/_checkout/pay/"+ref+"?provider=erc20", "Accept-Language", "ja"); !strings.Contains(ja.Body, "残りの 1.5 0xBTC") {
		t.Fatalf("the Japanese page does not ask for the rest in Japanese:\n%s", ja.Body)
	}
	// Another order: both halves arrive after it expired.
	ref2, addr2 := ee.order("H-2", "1")
	ee.Clock.Add(31 * 60e9)
	if _, err := ee.Site().Expire(context.Background(), 10); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		ee.pay(addr2, "0.5")
	}
	if o := ee.OrderByRef(ref2); o.Status != order.Paid || !o.Late {
		t.Fatalf("two halves after expiry: %s late %v, received %s", o.Status, o.Late, o.Current().Received)
	}
}

// TestFailingPostbackDoesNotHoldUpTheShopsCallbacks: a 0xBTCpay postback
// URL that keeps failing is retried in its own line; the shop's own
// callbacks for the same payment go out at once.
func TestFailingPostbackDoesNotHoldUpTheShopsCallbacks(t *testing.T) {
	var mu sync.Mutex
	failures := 0
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		failures++
		mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(broken.Close)
	ee := newERC20Env(t)
	_, res := ee.rpc(`{"jsonrpc":"2.0","id":1,"method":"start_payment","params":{"amount":"1","postback_url":"` + broken.URL + `/pb"}}`)
	result, _ := res["result"].(map[string]any)
	addr, _ := result["address"].(string)
	if addr == "" {
		t.Fatalf("start_payment: %v", res)
	}
	ee.chain.Transfer(ee.token, 0, common.HexToAddress(addr), units("1"))
	ee.chain.Commit()
	ee.chain.Mine(confirmations)
	ee.poll()
	if got := strings.Join(ee.CallbackTypes(), ","); got != "order.paid" {
		t.Fatalf("shop callbacks while the postback fails: %q, want order.paid", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if failures == 0 {
		t.Fatal("the postback was never tried")
	}
	ds := ee.Deliveries()
	var postback *store.Delivery
	for _, d := range ds {
		if d.Type == "0xbtcpay.postback" {
			postback = d
		}
	}
	if postback == nil || postback.State != store.DeliveryPending || postback.Queue != "erc20.postback" {
		t.Fatalf("postback delivery %+v, want pending in its own line", postback)
	}
}
