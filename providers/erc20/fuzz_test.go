package erc20_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/handlers/handlerstest"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/erc20"
	"github.com/caddy-checkout/checkout/providers/erc20/hdkey"
	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/store/bolt"
)

// writeCounter is a store that counts the writes made through it, so that
// a test sees whether a request stored anything.
type writeCounter struct {
	store.Store
	writes atomic.Int64
}

func (c *writeCounter) Update(ctx context.Context, key order.Key, fn store.UpdateFunc) (*order.Order, error) {
	c.writes.Add(1)
	return c.Store.Update(ctx, key, fn)
}

func (c *writeCounter) PutData(ctx context.Context, key string, val []byte) error {
	c.writes.Add(1)
	return c.Store.PutData(ctx, key, val)
}

func (c *writeCounter) PutDataIfAbsent(ctx context.Context, key string, val []byte) ([]byte, error) {
	c.writes.Add(1)
	return c.Store.PutDataIfAbsent(ctx, key, val)
}

func (c *writeCounter) NextSeq(ctx context.Context, key string) (uint64, error) {
	c.writes.Add(1)
	return c.Store.NextSeq(ctx, key)
}

// startPayment is what 0xBTCpay makes of a request body (the rules of
// its payments.rb, in the protocol notes): for a valid start_payment call,
// the request's id, amount and postback URL, and ok; else ok is false.
// Member names are case-sensitive and the body is one JSON object, as
// JSON-RPC 2.0 and Ruby's JSON.parse have it.
func startPayment(body []byte) (id json.RawMessage, amount, postback string, ok bool) {
	var req map[string]json.RawMessage
	if len(body) > 16<<10 || json.Unmarshal(body, &req) != nil {
		return nil, "", "", false
	}
	var version, method string
	var params map[string]json.RawMessage
	if json.Unmarshal(req["jsonrpc"], &version) != nil || version != "2.0" || len(req["id"]) == 0 ||
		json.Unmarshal(req["method"], &method) != nil || method != "start_payment" ||
		json.Unmarshal(req["params"], &params) != nil {
		return nil, "", "", false
	}
	if json.Unmarshal(params["amount"], &amount) != nil || !oxbtcpayAmount.MatchString(amount) {
		return nil, "", "", false
	}
	if r, _ := new(big.Rat).SetString(amount); r.Sign() <= 0 || r.Cmp(big.NewRat(20999984, 1)) > 0 {
		return nil, "", "", false
	}
	if raw, given := params["postback_url"]; given && string(raw) != "null" {
		if json.Unmarshal(raw, &postback) != nil {
			return nil, "", "", false
		}
		u, err := url.Parse(postback)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, "", "", false
		}
	}
	return req["id"], amount, postback, true
}

// 0xBTCpay's amount and payment id.
var (
	oxbtcpayAmount = regexp.MustCompile(`^[0-9]{1,8}(\.[0-9]{1,8})?$`)
	oxbtcpayID     = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

// sameJSON reports whether a and b are the same JSON value, numbers
// compared as written.
func sameJSON(a, b []byte) bool {
	decode := func(raw []byte) (any, bool) {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		var v any
		return v, d.Decode(&v) == nil
	}
	va, okA := decode(a)
	vb, okB := decode(b)
	return okA && okB && reflect.DeepEqual(va, vb)
}

// rpcErrors are the errors start_payment may answer for a bad request,
// with 0xBTCpay's codes and messages.
var rpcErrors = map[string]int{
	"Parse error":                          -32700,
	"Invalid request":                      -32600,
	"Method not found":                     -32601,
	"Invalid params":                       -32602,
	"Invalid params: missing amount":       -32602,
	"Invalid params: invalid amount":       -32602,
	"Invalid params: invalid postback URL": -32602,
}

// FuzzOxbtcpayRPC: whatever body is posted to the 0xBTCpay-compatible
// JSON-RPC endpoint, the answer is HTTP 200 with a JSON-RPC 2.0 object
// holding either one of 0xBTCpay's errors (id null, nothing stored) or a
// result, and a result comes exactly for a valid start_payment call: it
// echoes the request's id and amount and names a stored pending order of
// that amount with its receiving address.
func FuzzOxbtcpayRPC(f *testing.F) {
	st, err := bolt.Open(filepath.Join(f.TempDir(), "checkout.db"), bolt.Options{CommitSpacing: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	counted := &writeCounter{Store: st}
	prov := &erc20.ERC20{Xpub: hdkey.TestXpub, RPC: "http://127.0.0.1:1"} // never polled here
	site := handlerstest.BenchSiteOn(f, counted, func(c *handlers.Config) {
		c.Intake = handlers.Intakes{API: true}
		c.Providers = []provider.Provider{prov}
	})
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":111,"method":"start_payment","params":{"amount":"222.333","data":{"order_id":"444"},"postback_url":"https://xxx.yyy/payment_complete"}}`,
		`{"jsonrpc":"2.0","id":"a","method":"start_payment","params":{"amount":"20999984","data":null,"postback_url":null}}`,
		`{"jsonrpc":"2.0","id":null,"method":"start_payment","params":{"amount":"0.00000001"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"start_payment","params":{"amount":"1"}} `,
		`{"jsonrpc":"2.0","id":1,"method":"start_payment","params":{"amount":"1"}}{"x":1}`,
		`{"JSONRPC":"2.0","ID":1,"METHOD":"start_payment","PARAMS":{"AMOUNT":"1"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"start_payment","params":{"amount":"1","Amount":"x"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"start_payment","params":{"amount":"1.123456789"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"start_payment","params":{"amount":"1","postback_url":"javascript:alert(1)"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"start_payment","params":[1]}`,
		`{"jsonrpc":"1.0","id":1,"method":"start_payment","params":{"amount":"1"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"stop_payment","params":{}}`,
		`{not json`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		before := counted.writes.Load()
		req := httptest.NewRequest(http.MethodPost, "/_checkout/", bytes.NewReader(body))
		req.RemoteAddr = "127.0.0.1:4000"
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		_ = site.ServeHTTP(rec, req, handlers.NextHandler(http.NotFoundHandler()))
		wrote := counted.writes.Load() - before
		var res struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Result  *struct {
				ID      string `json:"id"`
				Amount  string `json:"amount"`
				Address string `json:"address"`
			} `json:"result"`
			Error *struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("%q: answered %d %s", body, rec.Code, rec.Header().Get("Content-Type"))
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || res.JSONRPC != "2.0" || (res.Result == nil) == (res.Error == nil) {
			t.Fatalf("%q: not a JSON-RPC 2.0 answer with a result or an error: %s", body, rec.Body)
		}
		id, amount, postback, valid := startPayment(body)
		if res.Error != nil {
			if code, ok := rpcErrors[res.Error.Message]; !ok || code != res.Error.Code || string(res.ID) != "null" {
				t.Fatalf("%q: answered %s, not one of 0xBTCpay's errors", body, rec.Body)
			}
			if valid {
				t.Fatalf("%q: a valid call answered %s", body, rec.Body)
			}
			if wrote != 0 {
				t.Fatalf("%q: refused, yet %d writes reached the store", body, wrote)
			}
			return
		}
		r := res.Result
		if !valid {
			t.Fatalf("%q: not a valid start_payment call, yet answered %s", body, rec.Body)
		}
		if !sameJSON(res.ID, id) || r.Amount != amount || !oxbtcpayID.MatchString(r.ID) ||
			!common.IsHexAddress(r.Address) || r.Address != strings.ToLower(r.Address) {
			t.Fatalf("%q: result %s", body, rec.Body)
		}
		o, err := st.Get(context.Background(), order.Key{Site: "bench", ID: r.ID})
		if err != nil {
			t.Fatalf("%q: payment %s is not stored: %v", body, r.ID, err)
		}
		att := o.Current()
		if o.Status != order.Pending || o.Provider != erc20.Name || att.Amount.Currency() != "0xBTC" ||
			!strings.EqualFold(att.ProviderRef, r.Address) {
			t.Fatalf("%q: stored %s %s %s at %s for result %s", body, o.Status, o.Provider, att.Amount, att.ProviderRef, rec.Body)
		}
		if want, _ := new(big.Rat).SetString(amount); new(big.Rat).SetFrac(att.Amount.Minor(), big.NewInt(1e8)).Cmp(want) != 0 {
			t.Fatalf("%q: stored amount %s for %s", body, att.Amount, amount)
		}
		if got := att.ProviderData["oxbtcpay_postback"]; postback != "" && got == "" || postback == "" && got != "" {
			t.Fatalf("%q: stored postback %q", body, got)
		}
	})
}
