// Stripe's idempotent requests (docs.stripe.com/idempotency): the first
// executed result for an account and Idempotency-Key is saved and replayed;
// reusing the key for another request is an idempotency_error.
package stripetest

import (
	"fmt"
	"net/http"
	"net/url"
	"sync"
)

// idemScope is where a key is unique: Stripe scopes keys per account.
type idemScope struct {
	account, key string
}

type idemEntry struct {
	// mu is held while the first request with the key executes, so a
	// concurrent retry waits and then replays instead of creating a second
	// object. (Stripe answers such a concurrent retry 409 with
	// idempotency_key_in_use; waiting gives the same guarantee without making
	// tests depend on timing.)
	mu sync.Mutex

	done     bool
	endpoint string // "POST /v1/refunds"
	params   string // canonical form of the parameters
	saved    response
}

func (s *Server) idempotent(c *call, handle func(*call) response) response {
	s.mu.Lock()
	scope := idemScope{c.account, c.idemKey}
	e := s.idem[scope]
	if e == nil {
		e = &idemEntry{}
		s.idem[scope] = e
	}
	s.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	endpoint := c.method + " " + c.path
	params := canonical(c.values)
	if e.done {
		if e.endpoint != endpoint {
			err := &apiError{status: http.StatusBadRequest, Type: "idempotency_error", Message: fmt.Sprintf(
				"Keys for idempotent requests can only be used for the same endpoint they were first used for ('%s' vs '%s'). "+
					"Try using a key other than '%s' if you meant to execute a different request.", endpoint, e.endpoint, c.idemKey)}
			return err.response(c.reqID)
		}
		if e.params != params {
			err := &apiError{status: http.StatusBadRequest, Type: "idempotency_error", Message: fmt.Sprintf(
				"Keys for idempotent requests can only be used with the same parameters they were first used with. "+
					"Try using a key other than '%s' if you meant to execute a different request.", c.idemKey)}
			return err.response(c.reqID)
		}
		res := e.saved
		res.replayed = true
		return res
	}
	res := handle(c)
	res.requestID = c.reqID
	if res.saved {
		e.done, e.endpoint, e.params, e.saved = true, endpoint, params, res
	}
	return res
}

// canonical is the parameters in a stable order, so the same parameters
// encoded in another order (as Go's map iteration does) still match.
func canonical(v url.Values) string { return v.Encode() }
