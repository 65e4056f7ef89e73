// The fake's API as a client sees it over HTTP: ticket creation on both
// routes and both versions, validation, authentication and channel errors,
// unknown paths, outages and the request log.
package cyclostest_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/internal/cyclostest"
)

var ticketNumberRE = regexp.MustCompile(`^[A-Za-z0-9]{32}$`)

func TestCreate(t *testing.T) {
	tests := []struct {
		name string
		path string
		auth func(*cyclostest.Server) headers
	}{
		{"deprecated-route/token", "/api/tickets", token},
		{"user-route/self", "/api/self/tickets", token},
		{"user-route/login", "/api/shop/tickets", token},
		{"user-route/basic", "/api/self/tickets", func(*cyclostest.Server) headers { return basic("shop", "1234") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			srv := cyclostest.New(t, cyclostest.WithClock(clk.Now), cyclostest.WithCustomFields("invoice_nr"))
			sh := newShop(t)
			body := order(sh)
			body["customValues"] = map[string]string{"invoice_nr": "INV-9"}
			r := call(t, srv, "POST", tt.path, tt.auth(srv), body).wantStatus(t, http.StatusCreated)

			num := r.str("ticketNumber")
			if !ticketNumberRE.MatchString(num) {
				t.Fatalf("ticketNumber = %q, want 32 letters and digits", num)
			}
			if loc := r.header.Get("Location"); loc != srv.URL+"/api/tickets/"+num {
				t.Errorf("Location = %q", loc)
			}
			checks := map[string]string{
				"kind":         "ticket",
				"ticketStatus": "open",
				"amount":       "75.00",
				"description":  "Order 1234567",
				"successUrl":   "https://shop.example/success?lang=en",
				"cancelUrl":    "https://shop.example/cancel",
				"approveUrl":   srv.URL + "/ui/pay/" + num,
				"date":         "2025-06-01T12:00:00.000Z",
			}
			for field, want := range checks {
				if got := r.str(field); got != want {
					t.Errorf("%s = %q, want %q", field, got, want)
				}
			}
			exp, err := time.Parse(time.RFC3339, r.str("expirationDate"))
			if err != nil || !exp.Equal(clk.Now().Add(24*time.Hour)) {
				t.Errorf("expirationDate = %q (%v), want one day after creation", r.str("expirationDate"), err)
			}
			if r.str("payee", "display") == "" || r.str("to", "user", "id") == "" {
				t.Errorf("payee or to missing: %s", r.raw)
			}
			for _, absent := range []string{"orderId", "successWebhook", "transaction", "payer"} {
				if r.has(absent) {
					t.Errorf("%s returned; TransactionView has no such field for an open ticket without payer", absent)
				}
			}
			if !strings.Contains(string(r.raw), `"internalName":"invoice_nr"`) || !strings.Contains(string(r.raw), `"stringValue":"INV-9"`) {
				t.Errorf("customValues not returned as CustomFieldValue: %s", r.raw)
			}

			v := call(t, srv, "GET", "/api/tickets/"+num, token(srv), nil).wantStatus(t, http.StatusOK)
			if v.str("ticketStatus") != "open" || v.str("approveUrl") != srv.URL+"/ui/pay/"+num {
				t.Errorf("view: %s", v.raw)
			}
			snap, ok := srv.Ticket(num)
			if !ok || snap.OrderID != "1234567" || snap.Amount != "75.00" || snap.Type != cyclostest.PaymentType ||
				snap.SuccessWebhook != body["successWebhook"] || snap.CustomValues["invoice_nr"] != "INV-9" {
				t.Errorf("snapshot = %+v", snap)
			}
		})
	}
}

// A 4.12 server has no POST /{user}/tickets, answers creation with a
// Transaction and never returns approveUrl; its approval page is only the
// classic /pay/{ticket}.
func TestCreateVersion412(t *testing.T) {
	srv := cyclostest.New(t, cyclostest.WithVersion("4.12"))
	sh := newShop(t)

	for _, p := range []string{"/api/self/tickets", "/api/shop/tickets"} {
		r := call(t, srv, "POST", p, token(srv), order(sh)).wantStatus(t, http.StatusNotFound)
		if len(r.json) != 0 {
			t.Errorf("%s: body = %s, want a NotFoundError naming no entity", p, r.raw)
		}
	}
	if n := len(srv.Tickets()); n != 0 {
		t.Fatalf("%d tickets after the missing route, want 0", n)
	}

	r := call(t, srv, "POST", "/api/tickets", token(srv), order(sh)).wantStatus(t, http.StatusCreated)
	num := r.str("ticketNumber")
	if !ticketNumberRE.MatchString(num) || r.str("kind") != "ticket" || r.str("amount") != "75.00" {
		t.Fatalf("create: %s", r.raw)
	}
	for _, absent := range []string{"approveUrl", "ticketStatus", "expirationDate", "payee"} {
		if r.has(absent) {
			t.Errorf("4.12 create returned %s; it answers a Transaction", absent)
		}
	}
	v := call(t, srv, "GET", "/api/tickets/"+num, token(srv), nil).wantStatus(t, http.StatusOK)
	if v.has("approveUrl") || v.has("payee") || v.str("ticketStatus") != "open" || v.str("successUrl") == "" {
		t.Errorf("4.12 view: %s", v.raw)
	}

	if got := pageGet(t, srv.URL+"/ui/pay/"+num); got.status != http.StatusNotFound {
		t.Errorf("GET /ui/pay on 4.12 = %d, want 404", got.status)
	}
	if got := pageGet(t, srv.URL+"/pay/"+num); got.status != http.StatusOK {
		t.Errorf("GET /pay on 4.12 = %d, want 200", got.status)
	}
}

func TestCreateForAnotherUser(t *testing.T) {
	srv := cyclostest.New(t)
	srv.AddUser("alice", "pw", "100")

	r := call(t, srv, "POST", "/api/alice/tickets", token(srv), map[string]any{"amount": "5"}).wantStatus(t, http.StatusForbidden)
	if r.str("code") != "permissionDenied" {
		t.Errorf("other user: %s", r.raw)
	}
	r = call(t, srv, "POST", "/api/nobody/tickets", token(srv), map[string]any{"amount": "5"}).wantStatus(t, http.StatusNotFound)
	if r.str("entityType") != "user" || r.str("key") != "nobody" {
		t.Errorf("unknown user: %s", r.raw)
	}
	if n := len(srv.Tickets()); n != 0 {
		t.Errorf("%d tickets, want 0", n)
	}
}

func TestCreateValidation(t *testing.T) {
	tests := []struct {
		name     string
		body     any
		property string // "" for a dataConversion error
	}{
		{"amount/missing", map[string]any{"description": "x"}, "amount"},
		{"amount/zero", map[string]any{"amount": "0"}, "amount"},
		{"amount/negative", map[string]any{"amount": "-5"}, "amount"},
		{"amount/three-decimals", map[string]any{"amount": "1.005"}, "amount"},
		{"amount/not-a-number", map[string]any{"amount": "ten"}, "amount"},
		{"amount/exponent", map[string]any{"amount": "1e3"}, "amount"},
		{"amount/null", map[string]any{"amount": nil}, "amount"},
		{"amount/object", map[string]any{"amount": map[string]any{"value": 5}}, "amount"},
		{"type/unknown", map[string]any{"amount": "5", "type": "member.gift"}, "type"},
		{"payer/unknown", map[string]any{"amount": "5", "payer": "mallory"}, "payer"},
		{"payer/self", map[string]any{"amount": "5", "payer": "shop"}, "payer"},
		{"customValues/unknown", map[string]any{"amount": "5", "customValues": map[string]string{"colour": "red"}}, "customValues"},
		{"expiresAfter/field", map[string]any{"amount": "5", "expiresAfter": map[string]any{"amount": 2, "field": "fortnights"}}, "expiresAfter"},
		{"expiresAfter/zero", map[string]any{"amount": "5", "expiresAfter": map[string]any{"amount": 0, "field": "days"}}, "expiresAfter"},
		{"successUrl/relative", map[string]any{"amount": "5", "successUrl": "/thanks"}, "successUrl"},
		{"successWebhook/scheme", map[string]any{"amount": "5", "successWebhook": "ftp://shop.example/hook"}, "successWebhook"},
		{"body/not-json", "{amount:", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := cyclostest.New(t, cyclostest.WithCustomFields("invoice_nr"))
			r := call(t, srv, "POST", "/api/self/tickets", token(srv), tt.body).wantStatus(t, http.StatusUnprocessableEntity)
			if tt.property == "" {
				if r.str("code") != "dataConversion" {
					t.Errorf("body: %s, want code dataConversion", r.raw)
				}
			} else {
				errs, _ := r.json["propertyErrors"].(map[string]any)
				props, _ := r.json["properties"].([]any)
				if r.str("code") != "validation" || errs[tt.property] == nil || len(props) == 0 || props[0] != tt.property {
					t.Errorf("body: %s, want a validation error of %s", r.raw, tt.property)
				}
			}
			if n := len(srv.Tickets()); n != 0 {
				t.Errorf("%d tickets after a refused create, want 0", n)
			}
		})
	}
}

func TestCreateAcceptsNumbersAndKnownType(t *testing.T) {
	srv := cyclostest.New(t)
	r := call(t, srv, "POST", "/api/tickets", token(srv), map[string]any{"amount": 12.5, "type": cyclostest.PaymentType}).wantStatus(t, http.StatusCreated)
	if r.str("amount") != "12.50" {
		t.Errorf("amount = %q, want 12.50", r.str("amount"))
	}
	r = call(t, srv, "POST", "/api/tickets", token(srv), map[string]any{"amount": "3.10", "expiresAfter": map[string]any{"amount": 30, "field": "minutes"}}).wantStatus(t, http.StatusCreated)
	created, _ := time.Parse(time.RFC3339, r.str("date"))
	expires, _ := time.Parse(time.RFC3339, r.str("expirationDate"))
	if expires.Sub(created) != 30*time.Minute {
		t.Errorf("expiresAfter 30 minutes gave %s → %s", r.str("date"), r.str("expirationDate"))
	}
}

func TestAuthentication(t *testing.T) {
	body := map[string]any{"amount": "5"}
	tests := []struct {
		name     string
		opts     []cyclostest.Option
		headers  func(*cyclostest.Server) headers
		status   int
		wantCode string
	}{
		{"missing", nil, func(*cyclostest.Server) headers { return nil }, 401, "missingAuthorization"},
		{"token/wrong", nil, func(*cyclostest.Server) headers { return headers{"Access-Client-Token": "not-the-token"} }, 401, "invalidAccessClient"},
		{"basic/wrong-password", nil, func(*cyclostest.Server) headers { return basic("shop", "secret-guess") }, 401, "login"},
		{"basic/unknown-user", nil, func(*cyclostest.Server) headers { return basic("nobody", "secret-guess") }, 401, "login"},
		{"basic/garbled", nil, func(*cyclostest.Server) headers { return headers{"Authorization": "Basic %%%"} }, 401, "login"},
		{"bearer", nil, func(*cyclostest.Server) headers { return headers{"Authorization": "Bearer secret-guess"} }, 401, "invalidAccessToken"},
		{"session", nil, func(*cyclostest.Server) headers { return headers{"Session-Token": "secret-guess"} }, 401, "loggedOut"},
		{"token/ok", nil, token, 201, ""},
		{"basic/ok", nil, func(*cyclostest.Server) headers { return basic("shop", "1234") }, 201, ""},
		{"channel/missing", []cyclostest.Option{cyclostest.WithChannel("ecommerce")}, token, 403, "inaccessibleChannel"},
		{"channel/wrong", []cyclostest.Option{cyclostest.WithChannel("ecommerce")}, func(s *cyclostest.Server) headers {
			return token(s).with(headers{"Channel": "main"})
		}, 403, "inaccessibleChannel"},
		{"channel/ok", []cyclostest.Option{cyclostest.WithChannel("ecommerce")}, func(s *cyclostest.Server) headers {
			return token(s).with(headers{"Channel": "ecommerce"})
		}, 201, ""},
		{"channel/unauthenticated-first", []cyclostest.Option{cyclostest.WithChannel("ecommerce")}, func(*cyclostest.Server) headers { return nil }, 401, "missingAuthorization"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := cyclostest.New(t, tt.opts...)
			r := call(t, srv, "POST", "/api/tickets", tt.headers(srv), body).wantStatus(t, tt.status)
			if tt.wantCode != "" && r.str("code") != tt.wantCode {
				t.Errorf("code = %q, want %q; body %s", r.str("code"), tt.wantCode, r.raw)
			}
			for _, secret := range []string{srv.AccessClientToken(), "secret-guess", "1234", "not-the-token"} {
				if tt.status >= 400 && strings.Contains(string(r.raw), secret) {
					t.Errorf("error body echoes a credential: %s", r.raw)
				}
			}
		})
	}
}

func TestViewUnknownTicket(t *testing.T) {
	srv := cyclostest.New(t)
	r := call(t, srv, "GET", "/api/tickets/nosuchticket", token(srv), nil).wantStatus(t, http.StatusNotFound)
	if r.str("entityType") != "ticket" || r.str("key") != "nosuchticket" {
		t.Errorf("body: %s", r.raw)
	}
	call(t, srv, "GET", "/api/tickets/nosuchticket", nil, nil).wantStatus(t, http.StatusUnauthorized)
}

func TestUnknownPaths(t *testing.T) {
	srv := cyclostest.New(t)
	for _, rq := range []struct{ method, path string }{
		{"GET", "/api/tickets"},
		{"DELETE", "/api/tickets/abc"},
		{"POST", "/api/tickets/abc/refund"},
		{"GET", "/api/payments"},
		{"POST", "/api/tickets/abc/preview"},
	} {
		r := call(t, srv, rq.method, rq.path, token(srv), nil)
		if r.status != http.StatusNotFound || len(r.json) != 0 {
			t.Errorf("%s %s = %d %s, want 404 {}", rq.method, rq.path, r.status, r.raw)
		}
	}
}

func TestFailNextAndRequests(t *testing.T) {
	srv := cyclostest.New(t, cyclostest.WithChannel("ecommerce"))
	h := token(srv).with(headers{"Channel": "ecommerce"})
	srv.FailNext(2, http.StatusServiceUnavailable)
	for range 2 {
		r := call(t, srv, "POST", "/api/tickets", h, map[string]any{"amount": "5", "orderId": "o-1"}).wantStatus(t, http.StatusServiceUnavailable)
		if r.str("kind") != "general" || r.str("exceptionType") == "" {
			t.Errorf("outage body: %s", r.raw)
		}
	}
	if n := len(srv.Tickets()); n != 0 {
		t.Fatalf("%d tickets created during the outage, want 0", n)
	}
	num := call(t, srv, "POST", "/api/tickets", h, map[string]any{"amount": "5", "orderId": "o-1"}).wantStatus(t, http.StatusCreated).str("ticketNumber")
	call(t, srv, "POST", "/api/tickets/"+num+"/process?orderId=o-1", basic("shop", "1234").with(headers{"Channel": "ecommerce"}), nil)

	reqs := srv.Requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests recorded, want 4", len(reqs))
	}
	first, last := reqs[0], reqs[3]
	if first.Method != "POST" || first.Path != "/api/tickets" || !first.AccessClientToken || first.Basic ||
		first.Channel != "ecommerce" || !strings.Contains(string(first.Body), `"orderId":"o-1"`) {
		t.Errorf("first request = %+v", first)
	}
	if last.Path != "/api/tickets/"+num+"/process" || last.Query.Get("orderId") != "o-1" || !last.Basic || last.AccessClientToken {
		t.Errorf("last request = %+v", last)
	}
}
