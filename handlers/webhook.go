// Provider webhooks at {base}/webhook/{provider}: the raw body is capped,
// handed to the provider to verify, and its findings applied durably
// before the provider gets its 2xx.
package handlers

import (
	"errors"
	"io"
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/store"
)

// maxWebhookBody caps what a webhook may send; real events are far smaller.
const maxWebhookBody = 256 << 10

func (s *Site) serveWebhook(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("provider")
	p, ok := s.providers[name]
	wh, isWH := p.(provider.Webhooker)
	if !ok || !isWH {
		writeAPIError(w, http.StatusNotFound, "no webhook endpoint for this provider here")
		return
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		writeAPIError(w, http.StatusMethodNotAllowed, "webhooks must be POST (or GET where the provider calls so)")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		writeAPIError(w, http.StatusRequestEntityTooLarge, "webhook body too large")
		return
	}
	findings, err := wh.Webhook(r.Context(), r, body)
	switch {
	case errors.Is(err, provider.ErrUnauthenticated):
		s.cfg.Observer.Webhook(s.cfg.Site, name, "unauthenticated")
		s.log.Warn("webhook rejected: bad signature", zap.String("provider", name))
		writeAPIError(w, http.StatusUnauthorized, "signature missing or invalid")
		return
	case errors.Is(err, provider.ErrMalformed):
		s.cfg.Observer.Webhook(s.cfg.Site, name, "malformed")
		s.log.Warn("webhook rejected: malformed", zap.String("provider", name), zap.Error(err))
		writeAPIError(w, http.StatusBadRequest, "malformed webhook")
		return
	case errors.Is(err, provider.ErrUnavailable):
		s.cfg.Observer.Webhook(s.cfg.Site, name, "unavailable")
		writeAPIError(w, http.StatusServiceUnavailable, "cannot confirm with the provider now; retry later")
		return
	case err != nil:
		s.cfg.Observer.Webhook(s.cfg.Site, name, "error")
		s.log.Error("webhook failed", zap.String("provider", name), zap.Error(err))
		status := http.StatusInternalServerError
		if store.Unavailable(err) {
			status = http.StatusServiceUnavailable
		}
		writeAPIError(w, status, "internal error; retry later")
		return
	}
	for _, f := range findings {
		f.From = name
		_, _, err := s.Apply(r.Context(), order.ByWebhook, f)
		if errors.Is(err, order.ErrUnknownRef) {
			s.log.Info("webhook for an unknown payment ignored", zap.String("provider", name))
			continue
		}
		if err != nil {
			s.cfg.Observer.Webhook(s.cfg.Site, name, "error")
			s.log.Error("applying webhook", zap.String("provider", name), zap.Error(err))
			status := http.StatusInternalServerError
			if store.Unavailable(err) {
				status = http.StatusServiceUnavailable // the provider retries
			}
			writeAPIError(w, status, "internal error; retry later")
			return
		}
	}
	s.cfg.Observer.Webhook(s.cfg.Site, name, "ok")
	writeJSON(w, http.StatusOK, map[string]bool{"received": true})
}
