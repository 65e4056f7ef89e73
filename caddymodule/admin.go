// The admin.api.checkout module: operator endpoints on Caddy's admin API
// for orders and callback deliveries (SPEC §9).
package caddymodule

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/notify"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/store"
)

func init() {
	caddy.RegisterModule(Admin{})
}

// Admin serves /checkout/... on Caddy's admin endpoint:
//
//	GET  /checkout/orders[?status=&site=&limit=]
//	GET  /checkout/orders/{site}/{id}          (with its history)
//	POST /checkout/orders/{site}/{id}/cancel
//	POST /checkout/orders/{site}/{id}/refund   (in full, through the provider that took it)
//	GET  /checkout/deliveries[?state=&site=&order=]
//	POST /checkout/deliveries/{id}/retry
type Admin struct{}

// CaddyModule returns the Caddy module information.
func (Admin) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.checkout",
		New: func() caddy.Module { return new(Admin) },
	}
}

// Routes implements caddy.AdminRouter.
func (a *Admin) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/checkout/orders", Handler: caddy.AdminHandlerFunc(a.orders)},
		{Pattern: "/checkout/orders/", Handler: caddy.AdminHandlerFunc(a.order)},
		{Pattern: "/checkout/deliveries", Handler: caddy.AdminHandlerFunc(a.deliveries)},
		{Pattern: "/checkout/deliveries/", Handler: caddy.AdminHandlerFunc(a.delivery)},
	}
}

func running() (*engine, error) {
	e := active.Load()
	if e == nil {
		return nil, caddy.APIError{HTTPStatus: http.StatusServiceUnavailable,
			Err: errors.New("no checkout app is running (is a checkout handler configured?)")}
	}
	return e, nil
}

func apiErr(status int, format string, args ...any) error {
	return caddy.APIError{HTTPStatus: status, Err: fmt.Errorf(format, args...)}
}

func limitOf(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 10000 {
		return 0, apiErr(http.StatusBadRequest, "limit %q: want a number from 1 to 10000", v)
	}
	return n, nil
}

func (a *Admin) orders(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return apiErr(http.StatusMethodNotAllowed, "method not allowed")
	}
	e, err := running()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	st := order.State(q.Get("status"))
	if st != "" && !st.Valid() {
		return apiErr(http.StatusBadRequest, "status %q: want one of pending, on_hold, paid, refunded, failed, cancelled, expired", st)
	}
	limit, err := limitOf(r)
	if err != nil {
		return err
	}
	if limit == 0 {
		limit = defaultPage
	}
	f := store.ListFilter{Site: q.Get("site"), Status: st, Limit: limit}
	if c := q.Get("cursor"); c != "" {
		if f.After, err = parseCursor(c); err != nil {
			return apiErr(http.StatusBadRequest, "cursor: not one this API gave (take it from the Link header)")
		}
	}
	list, err := e.store.List(r.Context(), f)
	if err != nil {
		return apiErr(storeStatus(err), "listing orders: %v", err)
	}
	if list == nil {
		list = []*order.Order{}
	}
	if len(list) == limit {
		// A full page: the next one starts after its last order.
		next := *r.URL
		nq := next.Query()
		nq.Set("cursor", cursorOf(list[len(list)-1]))
		nq.Set("limit", strconv.Itoa(limit))
		next.RawQuery = nq.Encode()
		w.Header().Set("Link", "<"+next.RequestURI()+`>; rel="next"`)
	}
	return writeAdminJSON(w, list)
}

// defaultPage is how many orders a page of GET /checkout/orders holds
// unless ?limit= says.
const defaultPage = 100

// cursorOf names the place after o in a listing: its UpdatedAt and key,
// base64url-encoded JSON. It holds nothing that the page did not show.
func cursorOf(o *order.Order) string {
	b, _ := json.Marshal(struct {
		U time.Time `json:"u"`
		S string    `json:"s"`
		I string    `json:"i"`
	}{o.UpdatedAt, o.Site, o.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}

func parseCursor(c string) (*order.Order, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, err
	}
	var v struct {
		U time.Time `json:"u"`
		S string    `json:"s"`
		I string    `json:"i"`
	}
	if err := json.Unmarshal(b, &v); err != nil || checkSiteName(v.S) != nil || order.ValidID(v.I) != nil {
		return nil, errors.New("bad cursor")
	}
	return &order.Order{Key: order.Key{Site: v.S, ID: v.I}, UpdatedAt: v.U}, nil
}

// order serves /checkout/orders/{site}/{id}[/cancel|/refund]. Order ids
// may hold any printable character, so the site is the first segment and
// the id is the rest, escaped.
func (a *Admin) order(w http.ResponseWriter, r *http.Request) error {
	e, err := running()
	if err != nil {
		return err
	}
	rest := strings.TrimPrefix(r.URL.EscapedPath(), "/checkout/orders/")
	action := ""
	if r.Method == http.MethodPost {
		for _, act := range []string{"cancel", "refund"} {
			if trimmed, ok := strings.CutSuffix(rest, "/"+act); ok {
				rest, action = trimmed, act
				break
			}
		}
		if action == "" {
			return apiErr(http.StatusNotFound, "unknown action; want /cancel or /refund")
		}
	} else if r.Method != http.MethodGet {
		return apiErr(http.StatusMethodNotAllowed, "method not allowed")
	}
	siteEsc, idEsc, ok := strings.Cut(rest, "/")
	if !ok || siteEsc == "" || idEsc == "" {
		return apiErr(http.StatusNotFound, "want /checkout/orders/{site}/{order_id}")
	}
	site, err1 := url.PathUnescape(siteEsc)
	id, err2 := url.PathUnescape(idEsc)
	if err1 != nil || err2 != nil {
		return apiErr(http.StatusBadRequest, "malformed site or order id in path")
	}
	key := order.Key{Site: site, ID: id}
	o, err := e.store.Get(r.Context(), key)
	if errors.Is(err, store.ErrNotFound) {
		return apiErr(http.StatusNotFound, "no order %s in site %s", id, site)
	}
	if err != nil {
		return apiErr(storeStatus(err), "reading order: %v", err)
	}
	if action != "" {
		s, ok := e.site(site)
		if !ok {
			return apiErr(http.StatusConflict, "site %s is not configured in the running config", site)
		}
		if action == "refund" {
			return refund(w, r, s, o)
		}
		if !o.Status.Open() {
			return apiErr(http.StatusConflict, "order is %s; only pending or on_hold orders can be cancelled", o.Status)
		}
		o, _, err = s.Apply(r.Context(), order.ByAdmin, provider.Finding{Ref: o.Current().Ref, Status: order.Cancelled, Note: "cancelled by an operator"})
		if err != nil {
			return apiErr(storeStatus(err), "cancelling order: %v", err)
		}
	}
	return writeAdminJSON(w, o)
}

// refund returns all or part of a paid order's payment and answers with
// the order. The body is empty (all that is left) or {"amount": "5.00"};
// an Idempotency-Key header names the request.
func refund(w http.ResponseWriter, r *http.Request, s *handlers.Site, o *order.Order) error {
	var req handlers.RefundRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 4097))
	if err != nil {
		return apiErr(http.StatusBadRequest, "reading the request: %v", err)
	}
	if len(body) > 4096 {
		return apiErr(http.StatusRequestEntityTooLarge, "refund request larger than 4096 bytes")
	}
	if len(bytes.TrimSpace(body)) > 0 {
		var in struct {
			Amount *string `json:"amount"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil || dec.More() {
			return apiErr(http.StatusBadRequest, `refund request: want {} or {"amount": "5.00"}`)
		}
		if in.Amount != nil {
			if req.Amount, err = money.ParseLike(*in.Amount, o.Amount); err != nil {
				return apiErr(http.StatusBadRequest, "refund %v", err)
			}
		}
	}
	if v := r.Header.Get("Idempotency-Key"); v != "" {
		var ok bool
		if req.Key, ok = handlers.ParseIdempotencyKey(v); !ok {
			return apiErr(http.StatusBadRequest, "Idempotency-Key must be a quoted string of 1-255 printable characters")
		}
	}
	o, repeated, err := s.Refund(r.Context(), o.ID, req)
	switch {
	case errors.Is(err, provider.ErrNotRefundable), errors.Is(err, handlers.ErrRefundTooLarge):
		return apiErr(http.StatusConflict, "%v", err)
	case errors.Is(err, handlers.ErrKeyReused):
		return apiErr(http.StatusUnprocessableEntity, "%v", err)
	case errors.Is(err, provider.ErrUnavailable):
		return apiErr(http.StatusServiceUnavailable, "refunding order: %v; retrying is safe with the same Idempotency-Key (the provider is asked under it)", err)
	case err != nil && o == nil:
		return apiErr(http.StatusBadGateway, "refunding order: %v", err)
	case err != nil:
		return apiErr(http.StatusConflict, "%v", err)
	}
	if repeated {
		// As Stripe says of a request it answered before.
		w.Header().Set("Idempotent-Replayed", "true")
	}
	return writeAdminJSON(w, o)
}

func (a *Admin) deliveries(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return apiErr(http.StatusMethodNotAllowed, "method not allowed")
	}
	e, err := running()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	st := store.DeliveryState(q.Get("state"))
	if q.Get("state") == "failed" {
		st = store.DeliveryDead // "failed" is what operators ask for: the dead letters
	}
	switch st {
	case "", store.DeliveryPending, store.DeliveryDelivered, store.DeliveryGone, store.DeliveryDead:
	default:
		return apiErr(http.StatusBadRequest, "state %q: want pending, delivered, gone, dead or failed", st)
	}
	limit, err := limitOf(r)
	if err != nil {
		return err
	}
	list, err := e.store.Deliveries(r.Context(), store.DeliveryFilter{State: st, Site: q.Get("site"), OrderID: q.Get("order"), Limit: limit})
	if err != nil {
		return apiErr(storeStatus(err), "listing deliveries: %v", err)
	}
	shown := make([]store.Delivery, len(list))
	for i, d := range list {
		shown[i] = d.Redacted()
	}
	return writeAdminJSON(w, shown)
}

func (a *Admin) delivery(w http.ResponseWriter, r *http.Request) error {
	e, err := running()
	if err != nil {
		return err
	}
	rest := strings.TrimPrefix(r.URL.Path, "/checkout/deliveries/")
	id, action, _ := strings.Cut(rest, "/")
	switch {
	case r.Method == http.MethodGet && action == "":
		d, err := e.store.Delivery(r.Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			return apiErr(http.StatusNotFound, "no delivery %s", id)
		}
		if err != nil {
			return apiErr(storeStatus(err), "reading delivery: %v", err)
		}
		return writeAdminJSON(w, d.Redacted())
	case r.Method == http.MethodPost && action == "retry":
		d, err := e.notifier.Retry(r.Context(), id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return apiErr(http.StatusNotFound, "no delivery %s", id)
		case errors.Is(err, notify.ErrDelivered):
			return apiErr(http.StatusConflict, "%v", err)
		case err != nil:
			return apiErr(storeStatus(err), "retrying delivery: %v", err)
		}
		return writeAdminJSON(w, d.Redacted())
	}
	return apiErr(http.StatusNotFound, "want GET /checkout/deliveries/{id} or POST /checkout/deliveries/{id}/retry")
}

func writeAdminJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

var _ caddy.AdminRouter = (*Admin)(nil)

// storeStatus is the status of a store failure: 503 when the store is
// unreachable for now (retrying is right), else 500.
func storeStatus(err error) int {
	if store.Unavailable(err) {
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
