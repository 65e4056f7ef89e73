// Package stripetest is a stateful fake of the parts of Stripe's API that a
// Checkout integration uses, written from Stripe's published API so tests of
// the Stripe provider exercise the same paths, objects and errors as the real
// service, without a network or an account.
//
// The fake models, per connected account:
//
//   - POST /v1/checkout/sessions (mode=payment with price_data line items),
//     GET /v1/checkout/sessions/{session}, POST .../{session}/expire;
//   - GET /v1/payment_intents/{intent};
//   - POST /v1/refunds, GET /v1/refunds/{refund};
//   - API keys, the Stripe-Account header, Idempotency-Key, Request-Id and
//     Stripe's error JSON with its status codes;
//   - events (checkout.session.completed, .async_payment_succeeded,
//     .async_payment_failed, .expired, charge.refunded, refund.created)
//     delivered to a webhook URL with a Stripe-Signature;
//   - a hosted payment page at Session.URL that a browser or an HTTP client
//     can click through as a customer.
//
// Anything else answers as Stripe does to something it does not know: an
// unknown route is a 404, an unknown parameter is "Received unknown
// parameter", marked as not modelled here, so a test never passes because a
// parameter was silently ignored.
//
// stripe-mock, Stripe's official mock, knows every endpoint and parameter of
// the OpenAPI spec but keeps no state. [WithMock] puts it in front of the fake,
// so every request a test sends is also checked against Stripe's spec.
//
// What the customer and Stripe itself do (pay, pay later, settle, expire,
// refund from the dashboard) are Go methods on [Server].
package stripetest

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultAPIVersion is the api_version stamped on events unless
// [WithAPIVersion] says otherwise. It is the version stripe-go v76 pins, so
// its webhook.ConstructEvent accepts the events without options.
const DefaultAPIVersion = "2023-10-16"

// Server is the fake Stripe. All its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL to give stripe-go (BackendConfig.URL) and the prefix
	// of every Checkout Session's hosted page.
	URL string

	tb         testing.TB
	srv        *httptest.Server
	now        func() time.Time
	apiVersion string
	mockURL    string
	mockClient *http.Client

	mu             sync.Mutex
	sessions       map[string]*session
	sessionOrder   []*session
	intents        map[string]*paymentIntent
	charges        map[string]*charge
	refunds        map[string]*refund
	disputes       map[string]*dispute
	requests       []Request
	events         []Event
	deliveries     []Delivery
	mockRejections []string
	failNext       int
	failStatus     int
	idem           map[idemScope]*idemEntry
	webhook        *webhookEndpoint

	outbox outbox
}

// Option configures a [Server].
type Option func(*Server)

// WithMock forwards every /v1 request to the stripe-mock at url (see
// [StartMock]) before the fake handles it. When stripe-mock rejects a request
// the fake answers with stripe-mock's status and body unchanged, and records
// the rejection in [Server.MockRejections].
func WithMock(url string) Option {
	return func(s *Server) { s.mockURL = strings.TrimRight(url, "/") }
}

// WithClock sets the clock that stamps objects and events, decides expiry and
// times webhook signatures, so tests of time limits need no sleeps.
func WithClock(now func() time.Time) Option {
	return func(s *Server) { s.now = now }
}

// WithAPIVersion sets the api_version of events, as a webhook endpoint's
// configured API version does at Stripe.
func WithAPIVersion(v string) Option {
	return func(s *Server) { s.apiVersion = v }
}

// Request is one API request the fake received, for assertions about what
// the code under test sent.
type Request struct {
	Method         string
	Path           string
	Account        string // Stripe-Account header; "" for the platform
	IdempotencyKey string
	StripeVersion  string
	Form           url.Values // query for GET, body for POST
}

// New starts a fake on a loopback port; it is closed when the test ends.
func New(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{
		tb:         tb,
		now:        time.Now,
		apiVersion: DefaultAPIVersion,
		sessions:   map[string]*session{},
		intents:    map[string]*paymentIntent{},
		charges:    map[string]*charge{},
		refunds:    map[string]*refund{},
		disputes:   map[string]*dispute{},
		idem:       map[idemScope]*idemEntry{},
		mockClient: &http.Client{Timeout: 30 * time.Second},
	}
	for _, o := range opts {
		o(s)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/", s.serveAPI)
	mux.HandleFunc("GET /pay/{id}", s.servePage)
	mux.HandleFunc("POST /pay/{id}", s.servePagePost)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// Stripe answers anything outside /v1 with its unknown-route error too.
		writeError(w, newRequestID(), unknownRoute(r))
	})
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	s.outbox.start(s)
	tb.Cleanup(func() {
		s.srv.Close()
		s.outbox.stop()
	})
	return s
}

// FailNext makes the next n API requests answer status with Stripe's error
// JSON, as during an outage. Such a request never reaches Stripe's API, so,
// as at Stripe, nothing is saved under its idempotency key and a retry with
// the same key is executed afresh. It is still listed by [Server.Requests].
func (s *Server) FailNext(n int, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.failStatus = n, status
}

// Requests lists every API request received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		r.Form = cloneValues(r.Form)
		out[i] = r
	}
	return out
}

// MockRejections lists the requests stripe-mock rejected, each as
// "METHOD path: message". With [WithMock], an empty list at the end of a test
// means every request the code sent is valid by Stripe's OpenAPI spec.
func (s *Server) MockRejections() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.mockRejections...)
}

// serveAPI is the front door of every /v1 request: it records the request,
// then applies outages (FailNext), authentication, the account header,
// stripe-mock's validation and idempotency, in that order, before routing.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, reqID, invalidRequest("", "Could not read the request body: "+err.Error()))
		return
	}
	rawForm := r.URL.RawQuery
	if r.Method != http.MethodGet {
		rawForm = string(body)
	}
	vals, formErr := url.ParseQuery(rawForm)
	if formErr != nil {
		vals = url.Values{}
	}
	account := r.Header.Get("Stripe-Account")
	idemKey := r.Header.Get("Idempotency-Key")

	s.mu.Lock()
	s.requests = append(s.requests, Request{
		Method:         r.Method,
		Path:           r.URL.Path,
		Account:        account,
		IdempotencyKey: idemKey,
		StripeVersion:  r.Header.Get("Stripe-Version"),
		Form:           cloneValues(vals),
	})
	failing := s.failNext > 0
	status := s.failStatus
	if failing {
		s.failNext--
	}
	s.mu.Unlock()

	w.Header().Set("Stripe-Version", s.versionFor(r))
	if idemKey != "" && r.Method == http.MethodPost {
		w.Header().Set("Idempotency-Key", idemKey)
	}
	if failing {
		writeError(w, reqID, outage(status))
		return
	}
	if e := checkAuth(r.Header.Get("Authorization")); e != nil {
		writeError(w, reqID, e)
		return
	}
	if account != "" && !strings.HasPrefix(account, "acct_") {
		writeError(w, reqID, accountInvalid(r.Header.Get("Authorization"), account))
		return
	}
	if s.mockURL != "" && !s.forwardToMock(w, r, body) {
		return
	}
	if formErr != nil {
		writeError(w, reqID, invalidRequest("", "Invalid request: the parameters are not valid form encoding."))
		return
	}
	route, pathID := matchRoute(r.Method, r.URL.Path)
	if route == nil {
		writeError(w, reqID, unknownRoute(r))
		return
	}
	c := &call{
		s:       s,
		method:  r.Method,
		path:    r.URL.Path,
		account: account,
		id:      pathID,
		reqID:   reqID,
		idemKey: idemKey,
		values:  vals,
	}
	var res response
	if r.Method == http.MethodPost && idemKey != "" {
		res = s.idempotent(c, route.handle)
	} else {
		res = route.handle(c)
		res.requestID = reqID
	}
	writeResponse(w, res)
}

// versionFor is the API version Stripe would report in the response's
// Stripe-Version header: the one requested, else the account's default.
func (s *Server) versionFor(r *http.Request) string {
	if v := r.Header.Get("Stripe-Version"); v != "" {
		return v
	}
	return s.apiVersion
}

// checkAuth accepts what Stripe's test mode accepts: a secret or restricted
// test key, as a Bearer token or as the Basic auth user name.
func checkAuth(header string) *apiError {
	if header == "" {
		return &apiError{
			status: http.StatusUnauthorized,
			Type:   "invalid_request_error",
			Message: "You did not provide an API key. You need to provide your API key in the Authorization header, " +
				"using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). " +
				"See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
		}
	}
	key := apiKey(header)
	for _, prefix := range []string{"sk_test_", "rk_test_"} {
		if strings.HasPrefix(key, prefix) && len(key) > len(prefix) {
			return nil
		}
	}
	return &apiError{
		status:  http.StatusUnauthorized,
		Type:    "invalid_request_error",
		Message: "Invalid API Key provided: " + maskKey(key),
	}
}

// apiKey extracts the key from a Bearer token or from Basic auth's user name.
func apiKey(header string) string {
	if token, found := strings.CutPrefix(header, "Bearer "); found {
		return strings.TrimSpace(token)
	}
	if b64, found := strings.CutPrefix(header, "Basic "); found {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
		if err == nil {
			key, _, _ := strings.Cut(string(raw), ":")
			return key
		}
	}
	return ""
}

// maskKey shows what Stripe shows of a rejected key: its prefix and last four
// characters, so an error message or log never carries a whole secret.
func maskKey(key string) string {
	prefix := ""
	if i := strings.LastIndex(key, "_"); i >= 0 && i < 10 {
		prefix = key[:i+1]
	}
	rest := key[len(prefix):]
	if len(rest) <= 4 {
		return prefix + strings.Repeat("*", len(rest))
	}
	return prefix + strings.Repeat("*", len(rest)-4) + rest[len(rest)-4:]
}

// forwardToMock sends the request to stripe-mock and reports whether it was
// accepted. A rejection is answered to the client as stripe-mock gave it.
func (s *Server) forwardToMock(w http.ResponseWriter, r *http.Request, body []byte) bool {
	target := s.mockURL + r.URL.Path
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target, bytes.NewReader(body))
	if err != nil {
		s.rejectByMock(w, r, http.StatusBadGateway, nil, "building the request for stripe-mock: "+err.Error())
		return false
	}
	for _, h := range []string{"Authorization", "Stripe-Version", "Stripe-Account", "Idempotency-Key", "Content-Type"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := s.mockClient.Do(req)
	if err != nil {
		s.rejectByMock(w, r, http.StatusBadGateway, nil, "stripe-mock unreachable: "+err.Error())
		return false
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return true
	}
	msg := mockMessage(out)
	s.rejectByMock(w, r, resp.StatusCode, out, msg)
	return false
}

func (s *Server) rejectByMock(w http.ResponseWriter, r *http.Request, status int, body []byte, msg string) {
	s.mu.Lock()
	s.mockRejections = append(s.mockRejections, r.Method+" "+r.URL.Path+": "+msg)
	s.mu.Unlock()
	if body == nil {
		writeError(w, newRequestID(), &apiError{status: status, Type: "api_error", Message: msg})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
