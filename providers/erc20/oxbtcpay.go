// The 0xBTCpay-compatible API (SPEC §4.3), so that a shop written for
// 0xBTCpay works by changing its base URL: JSON-RPC 2.0 start_payment at
// POST {base}/ (callers limited by the site's api_allow, as 0xBTCpay's IP
// whitelist, and only with intake api on), and the public GET
// {base}/{id}/status.json. Payments are orders of this provider; the
// optional postback_url gets 0xBTCpay's body as a message of its own
// (provider.Announcer), durable, signed and retried in its own line, so a
// postback URL that keeps failing never holds up the shop's callbacks.
package erc20

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/store"
)

// oxbtcpayWatch is how long 0xBTCpay watches a payment: 24 hours.
const oxbtcpayWatch = 24 * time.Hour

// What a 0xBTCpay payment records on its attempt (Attempt.ProviderData):
// the data given to start_payment, as JSON text ("null" when none), which
// also marks the order as one of the API's; and the postback URL, if any.
const (
	keyOxbtcpayData     = "oxbtcpay_data"
	keyOxbtcpayPostback = "oxbtcpay_postback"
)

// postbackQueue is the outbox line of postbacks.
const postbackQueue = Name + ".postback"

// 0xBTCpay's amount rule: up to 8 integer and 8 fractional digits, more
// than zero and at most 20,999,984.
var (
	oxbtcpayAmount = regexp.MustCompile(`^[0-9]{1,8}(?:\.[0-9]{1,8})?$`)
	oxbtcpayMax    = big.NewRat(20999984, 1)
	oxbtcpayID     = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	Result  any             `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
	ID      json.RawMessage `json:"id"`
}

// ServeBase implements provider.BaseRouter: POST {base}/ and GET
// {base}/{id}/status.json.
func (e *ERC20) ServeBase(w http.ResponseWriter, r *http.Request, path string) bool {
	if path == "/" && r.Method == http.MethodPost {
		e.serveRPC(w, r)
		return true
	}
	if id, ok := strings.CutSuffix(strings.TrimPrefix(path, "/"), "/status.json"); ok && r.Method == http.MethodGet && oxbtcpayID.MatchString(id) {
		e.serveStatus(w, r, id)
		return true
	}
	return false
}

// serveRPC is POST {base}/. As in 0xBTCpay, JSON-RPC errors are answered
// with HTTP 200 and a null id.
func (e *ERC20) serveRPC(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	on, allowed := e.env.API(r)
	if !on {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "the 0xBTCpay-compatible API is off here (it needs intake api and an erc20 provider)"})
		return
	}
	if !allowed {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden"})
		return
	}
	fail := func(code int, msg string) {
		writeJSON(w, http.StatusOK, rpcResponse{JSONRPC: "2.0", Error: &rpcError{Code: code, Message: msg}, ID: json.RawMessage("null")})
	}
	// The body is read as 0xBTCpay's JSON.parse reads it: one JSON value,
	// nothing after it, and member names matched exactly (JSON-RPC 2.0
	// has them case-sensitive; encoding/json would take "Method" or
	// "AMOUNT" for its fields). A call that differs in any of these is
	// refused before anything is stored.
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<10))
	var req map[string]json.RawMessage
	if err != nil || json.Unmarshal(raw, &req) != nil {
		fail(-32700, "Parse error")
		return
	}
	version, okVersion := jsonString(req["jsonrpc"])
	method, okMethod := jsonString(req["method"])
	if !okVersion || version != "2.0" || len(req["id"]) == 0 || !okMethod || len(req["params"]) == 0 {
		fail(-32600, "Invalid request")
		return
	}
	if method != "start_payment" {
		fail(-32601, "Method not found")
		return
	}
	var params map[string]json.RawMessage
	if err := json.Unmarshal(req["params"], &params); err != nil {
		fail(-32602, "Invalid params")
		return
	}
	if len(params["amount"]) == 0 || string(params["amount"]) == "null" {
		fail(-32602, "Invalid params: missing amount")
		return
	}
	amountText, ok := jsonString(params["amount"])
	if !ok || !oxbtcpayAmount.MatchString(amountText) {
		fail(-32602, "Invalid params: invalid amount")
		return
	}
	if rat, ok := new(big.Rat).SetString(amountText); !ok || rat.Sign() <= 0 || rat.Cmp(oxbtcpayMax) > 0 {
		fail(-32602, "Invalid params: invalid amount")
		return
	}
	data := map[string]string{keyOxbtcpayData: "null"}
	if pb := params["postback_url"]; len(pb) > 0 && string(pb) != "null" {
		text, ok := jsonString(pb)
		u, err := url.Parse(text)
		if !ok || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			fail(-32602, "Invalid params: invalid postback URL")
			return
		}
		data[keyOxbtcpayPostback] = u.String()
	}
	if d := params["data"]; len(d) > 0 {
		data[keyOxbtcpayData] = string(d) // kept as the JSON text it came as, like 0xBTCpay's data.to_json
	}
	amount, err := e.env.Currencies.Parse(amountText, e.currency)
	if err != nil {
		fail(-32602, "Invalid params: invalid amount")
		return
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	in := order.Intake{
		Key:          order.Key{ID: hex.EncodeToString(id[:])},
		Amount:       amount,
		Expires:      oxbtcpayWatch,
		Description:  "0xBTCpay payment",
		ProviderData: data,
	}
	o, st, err := e.env.Intake(r.Context(), in, Name)
	if err != nil {
		e.env.Logger.Error("starting 0xBTCpay payment", zap.String("order", in.ID), zap.Error(err))
		writeJSON(w, http.StatusOK, rpcResponse{JSONRPC: "2.0", Error: &rpcError{Code: -32603, Message: "Internal error"}, ID: req["id"]})
		return
	}
	writeJSON(w, http.StatusOK, rpcResponse{JSONRPC: "2.0", ID: req["id"], Result: map[string]string{
		"id": o.ID, "amount": amountText, "address": strings.ToLower(st.ProviderRef),
	}})
}

// oxbtcpayStatus is 0xBTCpay's status.json.
type oxbtcpayStatus struct {
	Address string  `json:"address"`
	Amount  string  `json:"amount"`
	SeenAt  *int64  `json:"seen_at"`
	PaidAt  *int64  `json:"paid_at"`
	TxHash  *string `json:"tx_hash"`
}

// isOxbtcpay reports whether o was made through start_payment.
func isOxbtcpay(o *order.Order) bool {
	if len(o.Attempts) == 0 || o.Provider != Name {
		return false
	}
	_, ok := o.Attempts[0].ProviderData[keyOxbtcpayData]
	return ok
}

// serveStatus is GET {base}/{id}/status.json, public as in 0xBTCpay; an
// unknown id is 404 "not found".
func (e *ERC20) serveStatus(w http.ResponseWriter, r *http.Request, id string) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	o, err := e.env.Order(r.Context(), id)
	if err != nil || !isOxbtcpay(o) {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			e.env.Logger.Error("reading 0xBTCpay payment", zap.String("order", id), zap.Error(err))
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error; try again"})
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("not found"))
		return
	}
	att := o.Current()
	v := oxbtcpayStatus{Address: strings.ToLower(att.ProviderRef), Amount: trimZeros(att.Amount.String())}
	for _, ev := range o.History {
		if ev.Cause.Kind == order.ByWatcher && ev.Applied {
			t := ev.At.Unix()
			v.SeenAt = &t
			break
		}
	}
	if v.SeenAt == nil {
		if seen := e.Progress(att.Ref).SeenAt; !seen.IsZero() {
			t := seen.Unix()
			v.SeenAt = &t
		}
	}
	if o.Status == order.Paid || o.Status == order.Refunded {
		t := o.PaidAt.Unix()
		v.PaidAt = &t
		tx := o.Transaction
		v.TxHash = &tx
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, v)
}

// Announce implements provider.Announcer: when a 0xBTCpay payment with a
// postback URL becomes paid, 0xBTCpay's body {"id", "data" (the JSON text
// given), "tx_hash"} is posted there.
func (e *ERC20) Announce(o *order.Order, ev order.Event) []provider.Message {
	if ev.To != order.Paid || !ev.Applied || !isOxbtcpay(o) {
		return nil
	}
	pd := o.Attempts[0].ProviderData
	to := pd[keyOxbtcpayPostback]
	if to == "" {
		return nil
	}
	body, err := json.Marshal(map[string]string{"id": o.ID, "data": pd[keyOxbtcpayData], "tx_hash": o.Transaction})
	if err != nil {
		return nil // three strings always encode
	}
	return []provider.Message{{Queue: postbackQueue, Type: "0xbtcpay.postback", URL: to, Body: body}}
}

// jsonString is the text of a JSON string value; ok is false for any
// other value (null included) or none.
func jsonString(raw json.RawMessage) (text string, ok bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	return text, json.Unmarshal(raw, &text) == nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
