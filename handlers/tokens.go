// Short-lived tokens: the CSRF token of our forms and the single-use
// return token that carries a verified payment to the shop's success page.
package handlers

import (
	"context"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

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

// openReturnToken checks tok for the order id and uses it up. A token is
// spent in the store, so it works once across reloads, restarts and every
// instance sharing the store; a store that cannot record it refuses it.
func (s *Site) openReturnToken(ctx context.Context, tok, orderID string) bool {
	nonce, rest, ok := strings.Cut(tok, ".")
	if !ok || len(nonce) != 26 {
		return false
	}
	now := s.now()
	if s.cfg.Secret.VerifyToken(rest, "return", s.cfg.Site+"\n"+orderID+"\n"+nonce, now) != nil {
		return false
	}
	fresh, err := s.cfg.Store.SpendToken(ctx, s.cfg.Site+"\x00return\x00"+nonce, now.Add(returnTokenTTL), now)
	if err != nil {
		s.log.Error("recording a spent return token", zap.String("site", s.cfg.Site), zap.Error(err))
		return false
	}
	return fresh
}
