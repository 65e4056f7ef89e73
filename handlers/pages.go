// Rendering of pages and of the errors customers see.
package handlers

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/templates"
)

func (s *Site) render(w http.ResponseWriter, r *http.Request, status int, p templates.Page) {
	p.Base = s.cfg.BasePath
	p.Brand = s.brand
	if err := s.cfg.Pages.Render(w, r, status, p); err != nil {
		s.log.Error("rendering page", zap.String("page", p.Name), zap.Error(err))
	}
}

// brandPage is what pages show of the site's brand.
func brandPage(base string, b Brand) templates.Brand {
	out := templates.Brand{Name: b.Name}
	if len(b.Logo) > 0 {
		out.LogoURL = base + "/brand/logo?v=" + contentVersion(b.Logo)
	}
	if b.Color != "" {
		out.StyleURL = base + "/brand/style.css?v=" + contentVersion([]byte(b.Color))
	}
	return out
}

// contentVersion names content in URLs, so a changed logo is never taken
// from a cache.
func contentVersion(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// serveBrand serves the logo and the colour's stylesheet.
func (s *Site) serveBrand(w http.ResponseWriter, r *http.Request) {
	b := s.cfg.Brand
	switch r.PathValue("file") {
	case "logo":
		if len(b.Logo) == 0 {
			s.fail(w, r, http.StatusNotFound, "error.not_found")
			return
		}
		w.Header().Set("Content-Type", b.LogoType)
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		_, _ = w.Write(b.Logo)
	case "style.css":
		if b.Color == "" {
			s.fail(w, r, http.StatusNotFound, "error.not_found")
			return
		}
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		// Color was checked to be #rgb or #rrggbb: nothing else can be
		// written into the stylesheet.
		_, _ = fmt.Fprintf(w, ":root{--accent:%[1]s;--accent-hover:%[1]s;--link:%[1]s}\n", b.Color)
	default:
		s.fail(w, r, http.StatusNotFound, "error.not_found")
	}
}

// fail shows the error page: key is one of the page messages ("error.*")
// that says what went wrong and what to do next, in the customer's
// language. The page links back to the shop.
func (s *Site) fail(w http.ResponseWriter, r *http.Request, status int, key string) {
	s.failOrder(w, r, status, key, nil)
}

// failOrder is fail for a request about order o: the page also links back
// to o's pay page while it can still be paid.
func (s *Site) failOrder(w http.ResponseWriter, r *http.Request, status int, key string, o *order.Order) {
	s.render(w, r, status, s.errorPage(status, o, templates.Page{MessageKey: key}))
}

// errorPage completes an error page: its status and the links that say
// where to go next.
func (s *Site) errorPage(status int, o *order.Order, p templates.Page) templates.Page {
	p.Name, p.HTTPStatus = "error", status
	if p.ContinueURL == "" {
		p.ContinueURL = s.shopURL(o)
	}
	if o != nil && o.Status.Open() && p.RetryURL == "" {
		p.RetryURL = s.cfg.BasePath + "/pay/" + o.Current().Ref
	}
	return p
}

// shopURL is the way back to the shop: cancel_url (for o, when it names
// the order), else the shop's home page.
func (s *Site) shopURL(o *order.Order) string {
	if o != nil {
		return s.continueURL(o)
	}
	if s.cfg.CancelURL != "" && !strings.Contains(s.cfg.CancelURL, "{order_id}") {
		return s.cfg.CancelURL
	}
	return "/"
}

// internalError logs err and shows the customer an error page: 503 "try
// again shortly" when the store is unreachable for now, else 500.
func (s *Site) internalError(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.Error(what, zap.String("site", s.cfg.Site), zap.Error(err))
	if store.Unavailable(err) {
		w.Header().Set("Retry-After", "5")
		s.fail(w, r, http.StatusServiceUnavailable, "error.unavailable")
		return
	}
	s.fail(w, r, http.StatusInternalServerError, "error.internal")
}

// providerError shows a provider failure to the customer, with the
// provider's own words when it has some for them (provider.UserError), and
// logs it for the operator.
func (s *Site) providerError(w http.ResponseWriter, r *http.Request, o *order.Order, name string, err error) {
	s.log.Error("starting payment with provider", zap.String("site", s.cfg.Site), zap.String("provider", name), zap.Error(err))
	status, key := http.StatusBadGateway, "error.provider_unreachable"
	if errors.Is(err, provider.ErrUnavailable) {
		status = http.StatusServiceUnavailable
	}
	p := templates.Page{MessageKey: key}
	var ue provider.UserError
	if errors.As(err, &ue) {
		p = templates.Page{Message: ue.UserMessage(s.cfg.Pages.Locale(r))}
	}
	s.render(w, r, status, s.errorPage(status, o, p))
}
