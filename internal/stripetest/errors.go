// Stripe's error responses: the JSON shape stripe-go decodes into
// *stripe.Error, and the status code that goes with each type.
package stripetest

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// apiError is one Stripe error. saved says whether the endpoint had begun
// executing when it failed: Stripe saves such a result under the request's
// idempotency key and replays it, but not a parameter validation failure,
// which a client may correct and retry with the same key.
type apiError struct {
	status  int
	saved   bool
	Type    string
	Code    string
	Message string
	Param   string
}

type errorJSON struct {
	Error errorFields `json:"error"`
}

// errorFields lists Stripe's error fields in Stripe's (alphabetical) order.
type errorFields struct {
	Code          string `json:"code,omitempty"`
	DocURL        string `json:"doc_url,omitempty"`
	Message       string `json:"message"`
	Param         string `json:"param,omitempty"`
	RequestLogURL string `json:"request_log_url,omitempty"`
	Type          string `json:"type"`
}

func (e *apiError) body(reqID string) []byte {
	f := errorFields{Code: e.Code, Message: e.Message, Param: e.Param, Type: e.Type}
	if e.Code != "" {
		f.DocURL = "https://stripe.com/docs/error-codes/" + strings.ReplaceAll(e.Code, "_", "-")
	}
	if reqID != "" {
		f.RequestLogURL = "https://dashboard.stripe.com/test/logs/" + reqID
	}
	return marshal(errorJSON{Error: f})
}

// response is what an endpoint answers; the idempotency layer saves and
// replays it byte for byte.
type response struct {
	status    int
	body      []byte
	saved     bool
	requestID string
	replayed  bool
}

func ok(v any) response {
	return response{status: http.StatusOK, body: marshal(v), saved: true}
}

func (e *apiError) response(reqID string) response {
	return response{status: e.status, body: e.body(reqID), saved: e.saved, requestID: reqID}
}

func writeResponse(w http.ResponseWriter, res response) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", res.requestID)
	if res.replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.WriteHeader(res.status)
	w.Write(res.body)
}

func writeError(w http.ResponseWriter, reqID string, e *apiError) {
	writeResponse(w, e.response(reqID))
}

// marshal renders JSON as Stripe does: two-space indented, one trailing
// newline.
func marshal(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic("stripetest: encoding JSON: " + err.Error())
	}
	return append(b, '\n')
}

func invalidRequest(param, msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, Type: "invalid_request_error", Param: param, Message: msg}
}

func missingParam(param string) *apiError {
	e := invalidRequest(param, "Missing required param: "+param+".")
	e.Code = "parameter_missing"
	return e
}

// stateError is a request refused because of the state of an object, after
// the endpoint began executing; Stripe saves it under the idempotency key.
func stateError(param, code, msg string) *apiError {
	e := invalidRequest(param, msg)
	e.Code = code
	e.saved = true
	return e
}

// noSuch is Stripe's answer for an id that does not exist in the requesting
// account: a 404 when the id is in the path, a 400 when it is a parameter.
func noSuch(object, id, param string, inPath bool) *apiError {
	e := invalidRequest(param, fmt.Sprintf("No such %s: '%s'", object, id))
	e.Code = "resource_missing"
	if inPath {
		e.status = http.StatusNotFound
	}
	return e
}

func unknownRoute(r *http.Request) *apiError {
	return &apiError{
		status: http.StatusNotFound,
		Type:   "invalid_request_error",
		Message: fmt.Sprintf("Unrecognized request URL (%s: %s). Please see https://stripe.com/docs or we can help at https://support.stripe.com/. "+
			"(stripetest models only the Checkout Session, PaymentIntent and Refund endpoints listed in its package documentation.)",
			r.Method, r.URL.Path),
	}
}

// outage is the answer of a failing Stripe: api_error for server errors, and
// Stripe's rate-limit error for 429.
func outage(status int) *apiError {
	if status == http.StatusTooManyRequests {
		return &apiError{status: status, Type: "invalid_request_error", Code: "rate_limit",
			Message: "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits."}
	}
	return &apiError{status: status, Type: "api_error",
		Message: "An unknown error occurred (simulated by stripetest's FailNext)."}
}

func accountInvalid(authorization, account string) *apiError {
	return &apiError{
		status: http.StatusForbidden,
		Type:   "invalid_request_error",
		Code:   "account_invalid",
		Message: fmt.Sprintf("The provided key '%s' does not have access to account '%s' (or that account does not exist). "+
			"Application access may have been revoked.", maskKey(apiKey(authorization)), account),
	}
}

// mockMessage extracts the message of a stripe-mock error body.
func mockMessage(body []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		return e.Error.Message
	}
	return strings.TrimSpace(string(body))
}

// newID makes an object id with Stripe's prefix and a random suffix of
// Stripe's usual length.
func newID(prefix string, n int) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + string(b)
}

func newRequestID() string { return newID("req_", 14) }
