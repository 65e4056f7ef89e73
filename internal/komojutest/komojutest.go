// Package komojutest is a stateful fake of the parts of KOMOJU's API that a
// hosted-session integration uses, written from KOMOJU's published API
// (doc.komoju.com; the OpenAPI-generated komoju-node-sdk; see
// ../shared/reference/protocols.md §2), so tests of the KOMOJU provider
// exercise the same paths, objects and errors as the real service without a
// network or an account. KOMOJU publishes no mock of its own.
//
// The fake models:
//
//   - POST /api/v1/sessions, GET /api/v1/sessions/{id},
//     POST /api/v1/sessions/{id}/cancel;
//   - GET /api/v1/payments/{id}, POST /api/v1/payments/{id}/cancel,
//     POST /api/v1/payments/{id}/refund;
//   - HTTP Basic with the secret key as user and an empty password,
//     X-KOMOJU-IDEMPOTENCY (the original answer for a repeat, 409 for a
//     repeat that arrives while the first is in progress, 422 for the key
//     reused with another body), and KOMOJU's error JSON
//     {"error":{"code","message","param"}} with its status codes;
//   - a hosted page at each session's session_url where a customer pays by
//     card (captured at once, or declined with KOMOJU's decline test card)
//     or takes a konbini slip (authorized until its payment deadline), or
//     goes back to the shop without paying;
//   - events (payment.authorized, .captured, .expired, .cancelled,
//     .refunded, .failed, and ping) delivered to a webhook URL with
//     X-Komoju-ID, X-Komoju-Event and X-Komoju-Signature, in the order they
//     happen or, when held, in an order the test chooses.
//
// What KOMOJU and the customer do outside the API (paying at the konbini
// counter, a slip running out, a refund in the dashboard, an outage) are Go
// methods on [Server].
//
// Where the published API leaves a behaviour open the fake picks the strict
// choice and says so: unknown body fields are refused (so a test never
// passes because a misspelt field was ignored), and the error code of a
// reused idempotency key is a guess.
package komojutest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// SecretKey is the test secret key the fake accepts unless [WithKey] says
// otherwise.
const SecretKey = "sk_test_komojutest0123456789"

// Currencies are those KOMOJU's payments API accepts (komoju-node-sdk
// PaymentsApi.md), with their minor-unit exponents.
var Currencies = map[string]int{
	"JPY": 0, "USD": 2, "EUR": 2, "TWD": 2, "KRW": 0, "PLN": 2, "GBP": 2, "HKD": 2, "SGD": 2, "NZD": 2,
	"AUD": 2, "IDR": 2, "MYR": 2, "PHP": 2, "THB": 2, "CNY": 2, "BRL": 2, "CHF": 2, "CAD": 2, "VND": 0,
}

// KonbiniStores are the stores a konbini slip can be for.
var KonbiniStores = []string{"seven-eleven", "lawson", "family-mart", "ministop", "daily-yamazaki", "seicomart"}

// DeclineCard is KOMOJU's test card that is declined for insufficient funds.
const DeclineCard = "4123111111111000"

// Server is the fake KOMOJU. All its methods are safe for concurrent use.
type Server struct {
	// URL is the base to configure as api_url; session pages live under it.
	URL string

	tb          testing.TB
	srv         *httptest.Server
	now         func() time.Time
	key         string
	konbiniLife time.Duration
	client      *http.Client

	mu         sync.Mutex
	sessions   map[string]*session
	payments   map[string]*payment
	idem       map[string]*idemEntry
	requests   []Request
	failNext   int
	failStatus int
	hook       struct{ url, secret string }
	holding    bool
	held       []Event
	events     []Event
	deliveries []Delivery
	sendMu     sync.Mutex // one delivery at a time, in order
}

// Option configures a [Server].
type Option func(*Server)

// WithClock sets the clock that stamps objects and decides expiry, so tests
// of deadlines need no sleeps.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithKey sets the secret key the fake accepts.
func WithKey(k string) Option { return func(s *Server) { s.key = k } }

// WithKonbiniLife sets how long a konbini slip can be paid (KOMOJU's
// default is 3 days; merchants may set 1 to 59).
func WithKonbiniLife(d time.Duration) Option { return func(s *Server) { s.konbiniLife = d } }

// Request is one API request the fake received.
type Request struct {
	Method         string
	Path           string
	IdempotencyKey string
	Body           map[string]any // the JSON body of a POST, decoded
	Raw            []byte
}

// New starts a fake on a loopback port; it is closed when the test ends.
func New(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{
		tb: tb, now: time.Now, key: SecretKey, konbiniLife: 3 * 24 * time.Hour,
		client:   &http.Client{Timeout: 30 * time.Second},
		sessions: map[string]*session{}, payments: map[string]*payment{}, idem: map[string]*idemEntry{},
	}
	for _, o := range opts {
		o(s)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/", s.serveAPI)
	mux.HandleFunc("GET /sessions/{id}", s.servePage)
	mux.HandleFunc("POST /sessions/{id}", s.servePagePost)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	tb.Cleanup(s.srv.Close)
	return s
}

// FailNext makes the next n API requests answer status with KOMOJU's error
// JSON, as during an outage or maintenance; nothing is done for them and
// nothing is stored under their idempotency keys.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.failStatus = n, status
}

// Requests lists every API request received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// apiError is KOMOJU's error body.
type apiError struct {
	status  int
	Code    string `json:"code"`
	Message string `json:"message"`
	Param   string `json:"param,omitempty"`
}

func errorf(status int, code, param, format string, args ...any) *apiError {
	return &apiError{status: status, Code: code, Param: param, Message: fmt.Sprintf(format, args...)}
}

func badRequest(param, format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "bad_request", param, format, args...)
}

func unprocessable(param, format string, args ...any) *apiError {
	return errorf(http.StatusUnprocessableEntity, "unprocessable_entity", param, format, args...)
}

func notFound(what string) *apiError {
	return errorf(http.StatusNotFound, "not_found", "", "The requested %s could not be found.", what)
}

// answer is an API response: a status and a JSON body.
type answer struct {
	status int
	body   []byte
}

func jsonAnswer(status int, v any) answer {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return answer{status, b}
}

func errAnswer(e *apiError) answer {
	return jsonAnswer(e.status, map[string]any{"error": e})
}

func write(w http.ResponseWriter, a answer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	w.Write(a.body)
}

// idemEntry is what KOMOJU remembers of an idempotency key: the body it
// came with and, once done, the answer.
type idemEntry struct {
	digest [32]byte
	done   bool
	answer answer
	at     time.Time
}

// idemLife is how long KOMOJU keeps an idempotency key.
const idemLife = 24 * time.Hour

// serveAPI records the request, then applies outages, authentication and
// idempotency before routing.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	key := r.Header.Get("X-KOMOJU-IDEMPOTENCY")
	var body map[string]any
	var bodyErr error
	if r.Method == http.MethodPost && len(bytes.TrimSpace(raw)) > 0 {
		bodyErr = json.Unmarshal(raw, &body)
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, IdempotencyKey: key, Body: body, Raw: raw})
	failing := s.failNext > 0
	if failing {
		s.failNext--
	}
	status := s.failStatus
	s.mu.Unlock()
	if failing {
		code := "internal_server_error"
		if status == http.StatusServiceUnavailable {
			code = "service_unavailable"
		}
		write(w, errAnswer(errorf(status, code, "", "KOMOJU is unavailable (komojutest outage).")))
		return
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != s.key || pass != "" {
		write(w, errAnswer(errorf(http.StatusUnauthorized, "unauthorized", "", "Authentication failed: use your secret key as the user name of HTTP Basic authentication.")))
		return
	}
	if bodyErr != nil {
		write(w, errAnswer(badRequest("", "The request body is not valid JSON.")))
		return
	}
	if r.Method == http.MethodPost && r.Header.Get("Content-Type") != "application/json" && len(raw) > 0 {
		write(w, errAnswer(badRequest("", "Send the body as application/json.")))
		return
	}
	handle := s.route(r.Method, strings.TrimPrefix(r.URL.Path, "/api/v1"))
	if handle == nil {
		write(w, errAnswer(notFound("resource")))
		return
	}
	if r.Method != http.MethodPost || key == "" {
		write(w, s.locked(func() answer { return handle(body) }))
		return
	}
	if len(key) > 100 {
		write(w, errAnswer(badRequest("X-KOMOJU-IDEMPOTENCY", "The idempotency key is longer than 100 characters.")))
		return
	}
	digest := sha256.Sum256(append([]byte(r.URL.Path+"\n"), raw...))
	s.mu.Lock()
	if e, ok := s.idem[key]; ok && s.now().Sub(e.at) < idemLife {
		s.mu.Unlock()
		switch {
		case e.digest != digest:
			// KOMOJU documents that retries must send the same body; the
			// code of its refusal is not published (the fake's guess).
			write(w, errAnswer(unprocessable("X-KOMOJU-IDEMPOTENCY", "This idempotency key was used with different parameters.")))
		case !e.done:
			write(w, errAnswer(errorf(http.StatusConflict, "conflict", "X-KOMOJU-IDEMPOTENCY", "A request with this idempotency key is still being processed.")))
		default:
			write(w, e.answer)
		}
		return
	}
	e := &idemEntry{digest: digest, at: s.now()}
	s.idem[key] = e
	s.mu.Unlock()
	a := s.locked(func() answer { return handle(body) })
	s.mu.Lock()
	e.done, e.answer = true, a
	s.mu.Unlock()
	write(w, a)
}

// locked runs an API handler under the lock, then delivers the events it
// emitted.
func (s *Server) locked(f func() answer) answer {
	s.mu.Lock()
	n := len(s.events)
	a := f()
	evs := append([]Event(nil), s.events[n:]...)
	s.mu.Unlock()
	s.send(evs)
	return a
}

// route finds the handler of an API path below /api/v1.
func (s *Server) route(method, path string) func(map[string]any) answer {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case method == http.MethodPost && len(parts) == 1 && parts[0] == "sessions":
		return s.createSession
	case method == http.MethodGet && len(parts) == 2 && parts[0] == "sessions":
		return func(map[string]any) answer { return s.showSession(parts[1]) }
	case method == http.MethodPost && len(parts) == 3 && parts[0] == "sessions" && parts[2] == "cancel":
		return func(map[string]any) answer { return s.cancelSession(parts[1]) }
	case method == http.MethodGet && len(parts) == 2 && parts[0] == "payments":
		return func(map[string]any) answer { return s.showPayment(parts[1]) }
	case method == http.MethodPost && len(parts) == 3 && parts[0] == "payments" && parts[2] == "cancel":
		return func(map[string]any) answer { return s.cancelPayment(parts[1]) }
	case method == http.MethodPost && len(parts) == 3 && parts[0] == "payments" && parts[2] == "refund":
		return func(b map[string]any) answer { return s.refundPayment(parts[1], b) }
	}
	return nil
}

// newID is a 25-character id like KOMOJU's.
func newID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 25)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func digits(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b)
}

// sessionFields are the create-session fields the fake knows.
var sessionFields = map[string]bool{
	"mode": true, "amount": true, "currency": true, "return_url": true, "email": true,
	"expires_in_seconds": true, "external_customer_id": true, "payment_types": true,
	"default_locale": true, "line_items": true, "metadata": true, "payment_data": true,
}

var paymentTypes = map[string]bool{
	"credit_card": true, "konbini": true, "bank_transfer": true, "pay_easy": true, "paypay": true,
	"linepay": true, "merpay": true, "rakutenpay": true, "aupay": true, "web_money": true, "bit_cash": true, "net_cash": true,
}

func (s *Server) createSession(b map[string]any) answer {
	for k := range b {
		if !sessionFields[k] {
			return errAnswer(badRequest(k, "Unknown parameter %q (komojutest refuses fields it does not model).", k))
		}
	}
	if m, ok := b["mode"]; ok && m != "payment" {
		return errAnswer(badRequest("mode", "Only mode \"payment\" is modelled here."))
	}
	cur, _ := b["currency"].(string)
	exp, ok := Currencies[cur]
	if !ok {
		return errAnswer(badRequest("currency", "Currency %q is not supported.", cur))
	}
	amount, ok := intField(b["amount"])
	if !ok || amount <= 0 {
		return errAnswer(badRequest("amount", "The amount must be a positive integer in the currency's smallest unit."))
	}
	ret, _ := b["return_url"].(string)
	if u, err := url.Parse(ret); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errAnswer(badRequest("return_url", "The return_url must be an absolute http(s) URL."))
	}
	x := &session{
		ID: newID(), Amount: amount, Currency: cur, exp: exp, ReturnURL: ret, Locale: "ja",
		Status: "pending", Created: s.now(), life: 24 * time.Hour, Metadata: map[string]string{},
	}
	if e, ok := b["email"]; ok {
		es, _ := e.(string)
		if a, err := mail.ParseAddress(es); err != nil || a.Address != es {
			return errAnswer(badRequest("email", "The email is not a valid address."))
		}
		x.Email = es
	}
	if l, ok := b["default_locale"]; ok {
		switch l {
		case "ja", "en", "ko":
			x.Locale = l.(string)
		default:
			return errAnswer(badRequest("default_locale", "The default_locale must be ja, en or ko."))
		}
	}
	if v, ok := b["expires_in_seconds"]; ok {
		n, ok := intField(v)
		if !ok || n <= 0 || n > 86400 {
			return errAnswer(badRequest("expires_in_seconds", "expires_in_seconds must be between 1 and 86400."))
		}
		x.life = time.Duration(n) * time.Second
	}
	if v, ok := b["payment_types"]; ok {
		list, _ := v.([]any)
		if len(list) == 0 {
			return errAnswer(badRequest("payment_types", "payment_types must be a non-empty list."))
		}
		for _, t := range list {
			ts, _ := t.(string)
			if !paymentTypes[ts] {
				return errAnswer(badRequest("payment_types", "Unknown payment type %q.", ts))
			}
			x.Types = append(x.Types, ts)
		}
	}
	if v, ok := b["metadata"]; ok {
		m, ok := v.(map[string]any)
		if !ok {
			return errAnswer(badRequest("metadata", "metadata must be an object of strings."))
		}
		for k, val := range m {
			vs, ok := val.(string)
			if !ok || len(k) > 30 || len(vs) > 2000 {
				return errAnswer(badRequest("metadata", "metadata keys are at most 30 characters and values strings of at most 2000."))
			}
			x.Metadata[k] = vs
		}
	}
	if v, ok := b["payment_data"]; ok {
		pd, ok := v.(map[string]any)
		if !ok {
			return errAnswer(badRequest("payment_data", "payment_data must be an object."))
		}
		for k, val := range pd {
			switch k {
			case "external_order_num":
				x.ExternalOrderNum, _ = val.(string)
			case "capture":
				if val != "auto" {
					return errAnswer(badRequest("payment_data.capture", "Only automatic capture is modelled here."))
				}
			default:
				return errAnswer(badRequest("payment_data."+k, "Unknown parameter %q (komojutest refuses fields it does not model).", k))
			}
		}
	}
	x.URL = s.URL + "/sessions/" + x.ID
	s.sessions[x.ID] = x
	return jsonAnswer(http.StatusOK, s.sessionJSON(x))
}

func intField(v any) (int64, bool) {
	f, ok := v.(float64)
	if !ok || f != float64(int64(f)) {
		return 0, false
	}
	return int64(f), true
}

func (s *Server) showSession(id string) answer {
	x := s.sessions[id]
	if x == nil {
		return errAnswer(notFound("session"))
	}
	return jsonAnswer(http.StatusOK, s.sessionJSON(x))
}

func (s *Server) cancelSession(id string) answer {
	x := s.sessions[id]
	if x == nil {
		return errAnswer(notFound("session"))
	}
	if x.Status != "pending" {
		return errAnswer(unprocessable("", "A %s session cannot be cancelled.", x.Status))
	}
	x.Status, x.CancelledAt = "cancelled", s.now()
	return jsonAnswer(http.StatusOK, s.sessionJSON(x))
}

func (s *Server) showPayment(id string) answer {
	p := s.payments[id]
	if p == nil {
		return errAnswer(notFound("payment"))
	}
	return jsonAnswer(http.StatusOK, s.paymentJSON(p))
}

func (s *Server) cancelPayment(id string) answer {
	p := s.payments[id]
	if p == nil {
		return errAnswer(notFound("payment"))
	}
	s.expireDue(p)
	if p.Status != "pending" && p.Status != "authorized" {
		return errAnswer(unprocessable("", "A %s payment cannot be cancelled.", p.Status))
	}
	s.move(p, "cancelled")
	return jsonAnswer(http.StatusOK, s.paymentJSON(p))
}

func (s *Server) refundPayment(id string, b map[string]any) answer {
	p := s.payments[id]
	if p == nil {
		return errAnswer(notFound("payment"))
	}
	for k := range b {
		if k != "amount" && k != "description" {
			return errAnswer(badRequest(k, "Unknown parameter %q.", k))
		}
	}
	if p.Type == "konbini" {
		return errAnswer(unprocessable("", "Konbini payments cannot be refunded through the API; create a refund request with the customer's bank account."))
	}
	if p.Status != "captured" {
		return errAnswer(unprocessable("", "A %s payment cannot be refunded.", p.Status))
	}
	amt := p.Amount - p.Refunded
	if v, ok := b["amount"]; ok {
		n, ok := intField(v)
		if !ok || n <= 0 || n > p.Amount-p.Refunded {
			return errAnswer(badRequest("amount", "The refund amount must be positive and at most what is left."))
		}
		amt = n
	}
	s.refund(p, amt)
	return jsonAnswer(http.StatusOK, s.paymentJSON(p))
}

// refund returns amt of a captured payment; the whole of it makes the
// payment refunded. A part leaves it captured, and KOMOJU still sends
// payment.refunded, with the payment's amount_refunded (protocols.md
// §2.6: a partially refunded payment stays captured).
func (s *Server) refund(p *payment, amt int64) {
	p.Refunded += amt
	p.Refunds = append(p.Refunds, map[string]any{"id": newID(), "amount": amt, "currency": p.Currency, "created_at": s.now().UTC().Format(time.RFC3339)})
	if p.Refunded == p.Amount {
		s.move(p, "refunded")
		return
	}
	s.emit("payment.refunded", s.paymentJSON(p))
}

// Refunds is how many refunds payment id has had, and the total refunded.
func (s *Server) Refunds(id string) (n int, total int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.payments[id]; p != nil {
		return len(p.Refunds), p.Refunded
	}
	return 0, 0
}

// expireDue moves an authorized or pending payment whose deadline passed to
// expired, as KOMOJU does on its own.
func (s *Server) expireDue(p *payment) {
	if (p.Status == "authorized" || p.Status == "pending") && !p.Deadline.IsZero() && !s.now().Before(p.Deadline) {
		s.move(p, "expired")
	}
}

// move changes a payment's status and emits its event.
func (s *Server) move(p *payment, to string) {
	p.Status = to
	if to == "captured" {
		p.CapturedAt = s.now()
	}
	s.emit("payment."+to, s.paymentJSON(p))
}
