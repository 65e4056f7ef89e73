// The 0xBTCpay-compatible API (SPEC §4.3), so that a shop written for
// 0xBTCpay works by changing its base URL: JSON-RPC 2.0 start_payment at
// POST {base}/ (callers limited by api_allow, as 0xBTCpay's IP
// whitelist), and the public GET {base}/{id}/status.json. Payments are
// orders of the site's erc20 provider; the optional postback_url gets
// 0xBTCpay's body through the durable, signed callback path.
package handlers

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/store"
)

// oxbtcpayProvider is the provider 0xBTCpay payments are made with.
const oxbtcpayProvider = "erc20"

// oxbtcpayWatch is how long 0xBTCpay watches a payment: 24 hours.
const oxbtcpayWatch = 24 * time.Hour

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

// serveOxbtcpayRPC is POST {base}/. As in 0xBTCpay, JSON-RPC errors are
// answered with HTTP 200 and a null id.
func (s *Site) serveOxbtcpayRPC(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	p, ok := s.providers[oxbtcpayProvider]
	if !ok || !s.cfg.Intake.API {
		writeAPIError(w, http.StatusNotFound, "the 0xBTCpay-compatible API is off here (it needs intake api and an erc20 provider)")
		return
	}
	if !s.apiAllowed(r) {
		writeAPIError(w, http.StatusForbidden, "forbidden")
		return
	}
	fail := func(code int, msg string) {
		writeJSON(w, http.StatusOK, rpcResponse{JSONRPC: "2.0", Error: &rpcError{Code: code, Message: msg}, ID: json.RawMessage("null")})
	}
	var req struct {
		JSONRPC *string         `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Method  *string         `json:"method"`
		Params  json.RawMessage `json:"params"`
	}
	body := http.MaxBytesReader(w, r.Body, maxForm)
	if err := json.NewDecoder(body).Decode(&req); err != nil {
		fail(-32700, "Parse error")
		return
	}
	if req.JSONRPC == nil || *req.JSONRPC != "2.0" || len(req.ID) == 0 || req.Method == nil || len(req.Params) == 0 {
		fail(-32600, "Invalid request")
		return
	}
	if *req.Method != "start_payment" {
		fail(-32601, "Method not found")
		return
	}
	var params struct {
		Amount      json.RawMessage `json:"amount"`
		Data        json.RawMessage `json:"data"`
		PostbackURL *string         `json:"postback_url"`
	}
	if err := json.Unmarshal(req.Params, &params); err != nil {
		fail(-32602, "Invalid params")
		return
	}
	if len(params.Amount) == 0 || string(params.Amount) == "null" {
		fail(-32602, "Invalid params: missing amount")
		return
	}
	var amountText string
	if json.Unmarshal(params.Amount, &amountText) != nil || !oxbtcpayAmount.MatchString(amountText) {
		fail(-32602, "Invalid params: invalid amount")
		return
	}
	if rat, ok := new(big.Rat).SetString(amountText); !ok || rat.Sign() <= 0 || rat.Cmp(oxbtcpayMax) > 0 {
		fail(-32602, "Invalid params: invalid amount")
		return
	}
	postback := ""
	if params.PostbackURL != nil {
		u, err := url.Parse(*params.PostbackURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			fail(-32602, "Invalid params: invalid postback URL")
			return
		}
		postback = u.String()
	}
	data := "null"
	if len(params.Data) > 0 {
		data = string(params.Data) // kept as the JSON text it came as, like 0xBTCpay's data.to_json
	}
	currency := ""
	if c, ok := p.(interface{ Currency() string }); ok {
		currency = c.Currency() // the erc20 provider's token (this code moves to it)
	}
	amount, err := money.Parse(amountText, currency)
	if err != nil {
		fail(-32602, "Invalid params: invalid amount")
		return
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	in := order.Intake{
		Key:          order.Key{ID: hex.EncodeToString(id[:])},
		Amount:       amount,
		Provider:     oxbtcpayProvider,
		Expires:      oxbtcpayWatch,
		Postback:     postback,
		PostbackData: data,
		Description:  "0xBTCpay payment",
	}
	o, _, err := s.Receive(r.Context(), in, oxbtcpayProvider)
	if err != nil {
		s.internalError(w, r, "storing 0xBTCpay payment", err)
		return
	}
	st, _, err := s.start(r.Context(), r, o, oxbtcpayProvider)
	if err != nil {
		s.log.Error("starting 0xBTCpay payment", zap.String("order", o.ID), zap.Error(err))
		writeJSON(w, http.StatusOK, rpcResponse{JSONRPC: "2.0", Error: &rpcError{Code: -32603, Message: "Internal error"}, ID: req.ID})
		return
	}
	writeJSON(w, http.StatusOK, rpcResponse{JSONRPC: "2.0", ID: req.ID, Result: map[string]string{
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

// serveOxbtcpayStatus is GET {base}/{id}/status.json, public as in
// 0xBTCpay; an unknown id is 404 "not found".
func (s *Site) serveOxbtcpayStatus(w http.ResponseWriter, r *http.Request, id string) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	o, err := s.cfg.Store.Get(r.Context(), order.Key{Site: s.cfg.Site, ID: id})
	if err != nil || o.Postback == "" && o.PostbackData == "" || o.Provider != oxbtcpayProvider {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.internalError(w, r, "reading 0xBTCpay payment", err)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("not found"))
		return
	}
	att := o.Current()
	amount := att.Amount.String() // as 0xBTCpay shows it: without trailing zeros
	if strings.Contains(amount, ".") {
		amount = strings.TrimSuffix(strings.TrimRight(amount, "0"), ".")
	}
	v := oxbtcpayStatus{Address: strings.ToLower(att.ProviderRef), Amount: amount}
	for _, ev := range o.History {
		if ev.Cause.Kind == order.ByWatcher && ev.Applied {
			t := ev.At.Unix()
			v.SeenAt = &t
			break
		}
	}
	if v.SeenAt == nil {
		if pr, ok := s.providers[oxbtcpayProvider].(provider.Progresser); ok {
			if seen := pr.Progress(att.Ref).SeenAt; !seen.IsZero() {
				t := seen.Unix()
				v.SeenAt = &t
			}
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

// oxbtcpayPostback is the delivery to an order's postback URL when it is
// paid: 0xBTCpay's body, {"id", "data" (the JSON text given), "tx_hash"},
// sent through the outbox, so it is durable, signed and retried.
func (s *Site) oxbtcpayPostback(o *order.Order, now time.Time) (store.Delivery, error) {
	body, err := json.Marshal(map[string]string{"id": o.ID, "data": o.PostbackData, "tx_hash": o.Transaction})
	if err != nil {
		return store.Delivery{}, err
	}
	return newDelivery(o, "0xbtcpay.postback", o.Postback, body, now), nil
}
