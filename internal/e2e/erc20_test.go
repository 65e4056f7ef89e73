package e2e

import (
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/caddy-checkout/checkout/internal/chaintest"
	"github.com/caddy-checkout/checkout/providers/erc20/hdkey"
)

// TestERC20ThroughCaddy runs a Caddy whose erc20 block names the
// simulated chain's JSON-RPC URL, so the watcher runs as it does in
// production (started by the running config, polling every second). A
// 0xBTCpay client creates a payment, the customer pays it on chain, and
// the payment shows as seen, then paid, with the postback delivered.
func TestERC20ThroughCaddy(t *testing.T) {
	chain := chaintest.New(t)
	token := chain.DeployToken("0xBTC", 8, new(big.Int).Mul(big.NewInt(21_000_000), big.NewInt(1e8)))
	var (
		mu        sync.Mutex
		postbacks []string
	)
	client := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		postbacks = append(postbacks, string(b))
		mu.Unlock()
	}))
	t.Cleanup(client.Close)
	t.Setenv("E2E_XPUB", hdkey.TestXpub)
	site := startProviderSite(t, "\t\tintake headers api\n"+erc20Block(chain.ServeRPC(), token.Hex(), "{env.E2E_XPUB}"))
	base := "http://" + site.base + "/_checkout/"

	r, err := http.Post(base, "application/json", strings.NewReader(
		`{"jsonrpc":"2.0","id":7,"method":"start_payment","params":{"amount":"3.5","data":{"order_id":"77"},"postback_url":"`+client.URL+`/paid"}}`))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Result struct{ ID, Amount, Address string }
	}
	_ = json.NewDecoder(r.Body).Decode(&res)
	r.Body.Close()
	if res.Result.ID == "" || !common.IsHexAddress(res.Result.Address) {
		t.Fatalf("start_payment through Caddy: %d %+v", r.StatusCode, res)
	}
	status := func() map[string]any {
		r, err := http.Get(base + res.Result.ID + "/status.json")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		var v map[string]any
		_ = json.NewDecoder(r.Body).Decode(&v)
		return v
	}
	tx := chain.Transfer(token, 0, common.HexToAddress(res.Result.Address), big.NewInt(350_000_000))
	chain.Commit()
	waitFor(t, 10*time.Second, "the payment to be seen", func() bool { return status()["seen_at"] != nil })
	if v := status(); v["paid_at"] != nil {
		t.Fatalf("paid at 1 of 2 confirmations: %v", v)
	}
	chain.Mine(1)
	waitFor(t, 10*time.Second, "the payment to be paid", func() bool { return status()["paid_at"] != nil })
	if v := status(); v["tx_hash"] != tx.Hex() {
		t.Fatalf("status %v", v)
	}
	waitFor(t, 10*time.Second, "the postback", func() bool { mu.Lock(); defer mu.Unlock(); return len(postbacks) == 1 })
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(postbacks[0], `"tx_hash":"`+tx.Hex()+`"`) || !strings.Contains(postbacks[0], `"id":"`+res.Result.ID+`"`) {
		t.Fatalf("postback %s", postbacks[0])
	}
}
