// Short-lived tokens: the CSRF token of our forms and the single-use
// return token that carries a verified payment to the shop's success page.
package handlers

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddy-checkout/checkout/order"
)

const (
	csrfTTL          = 12 * time.Hour
	returnTokenTTL   = 2 * time.Minute
	returnTokenParam = "checkout_token"
)

var crossOrigin = http.NewCrossOriginProtection()

// csrfToken is bound to the attempt reference: only someone who can read
// our page for that attempt has it.
func (s *Site) csrfToken(ref string) string {
	return s.cfg.Secret.Token("csrf", ref, s.now().Add(csrfTTL))
}

// verifyCSRF checks a form POST: the browser's Fetch metadata or Origin
// must not say cross-site, and the csrf field must be ours for this ref.
func (s *Site) verifyCSRF(r *http.Request, ref string) bool {
	if crossOrigin.Check(r) != nil {
		return false
	}
	return s.cfg.Secret.VerifyToken(r.PostFormValue("csrf"), "csrf", ref, s.now()) == nil
}

// returnToken is "<nonce>.<exp>.<mac>", bound to the order id and nonce.
func (s *Site) returnToken(o *order.Order) string {
	nonce := order.NewRef()
	return nonce + "." + s.cfg.Secret.Token("return", o.Site+"\n"+o.ID+"\n"+nonce, s.now().Add(returnTokenTTL))
}

// openReturnToken checks tok for the order id and uses it up.
func (s *Site) openReturnToken(tok, orderID string) bool {
	nonce, rest, ok := strings.Cut(tok, ".")
	if !ok || len(nonce) != 26 {
		return false
	}
	if s.cfg.Secret.VerifyToken(rest, "return", s.cfg.Site+"\n"+orderID+"\n"+nonce, s.now()) != nil {
		return false
	}
	now := s.now()
	return s.used.use(nonce, now, now.Add(returnTokenTTL))
}

// usedTokens remembers spent single-use tokens until they would have
// expired anyway.
type usedTokens struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (u *usedTokens) use(nonce string, now, until time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.seen == nil {
		u.seen = map[string]time.Time{}
	}
	if len(u.seen) > 1024 {
		for k, exp := range u.seen {
			if now.After(exp) {
				delete(u.seen, k)
			}
		}
	}
	if _, dup := u.seen[nonce]; dup {
		return false
	}
	u.seen[nonce] = until
	return true
}
