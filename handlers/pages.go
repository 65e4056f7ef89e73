// Rendering of pages and of the errors customers see.
package handlers

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/templates"
)

func (s *Site) render(w http.ResponseWriter, r *http.Request, status int, p templates.Page) {
	p.Base = s.cfg.BasePath
	if err := s.cfg.Pages.Render(w, r, status, p); err != nil {
		s.log.Error("rendering page", zap.String("page", p.Name), zap.Error(err))
	}
}

// fail shows the error page; msg must be safe to show the customer.
func (s *Site) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, status, templates.Page{Name: "error", HTTPStatus: status, Message: msg})
}

func (s *Site) internalError(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.Error(what, zap.String("site", s.cfg.Site), zap.Error(err))
	s.fail(w, r, http.StatusInternalServerError, "Something went wrong on our side. Nothing was charged by this step; please try again.")
}

// providerError shows a provider failure to the customer and logs it for
// the operator.
func (s *Site) providerError(w http.ResponseWriter, r *http.Request, name string, err error) {
	s.log.Error("starting payment with provider", zap.String("site", s.cfg.Site), zap.String("provider", name), zap.Error(err))
	status := http.StatusBadGateway
	if errors.Is(err, provider.ErrUnavailable) {
		status = http.StatusServiceUnavailable
	}
	var ue provider.UserError
	msg := "The payment provider could not be reached. Please try again in a moment or choose another way to pay."
	if errors.As(err, &ue) {
		msg = ue.UserMessage(s.cfg.Pages.Locale(r))
	}
	s.fail(w, r, status, msg)
}
