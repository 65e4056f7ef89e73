// The Referer of a customer's return: it should be this site or the pages
// of the provider the customer comes back from. It is never the proof of a
// payment (the provider's API is); a foreign one is logged and counted, or
// refused when the site asks for it.
package handlers

import (
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/provider"
)

// foreignReferer returns the origin of r's Referer when it is neither
// this site, the provider's pages nor one of return_referers; "" when it
// is one of them or when there is no Referer (browsers and privacy
// settings often send none).
func (s *Site) foreignReferer(r *http.Request, p provider.Provider) string {
	ref := r.Header.Get("Referer")
	if ref == "" {
		return ""
	}
	u, err := url.Parse(ref)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "(unreadable)"
	}
	origin := strings.ToLower(u.Scheme + "://" + u.Host)
	if own, err := url.Parse(s.publicURL(r)); err == nil && strings.EqualFold(own.Host, u.Host) {
		// This site, whichever scheme: behind a proxy that ends TLS the
		// request's own scheme may read http.
		return ""
	}
	allowed := s.cfg.ReturnReferers
	if o, ok := p.(provider.Origins); ok {
		allowed = append(allowed[:len(allowed):len(allowed)], o.PageOrigins()...)
	}
	for _, a := range allowed {
		if strings.EqualFold(strings.TrimSuffix(a, "/"), origin) {
			return ""
		}
	}
	return origin
}

// checkReferer logs and counts a return from a foreign Referer, and
// reports whether the return may go on (always, unless the site refuses
// foreign Referers). Only the Referer's origin is logged: its path and
// query may hold another site's tokens.
func (s *Site) checkReferer(r *http.Request, name string, p provider.Provider) bool {
	origin := s.foreignReferer(r, p)
	if origin == "" {
		return true
	}
	refuse := s.cfg.RefuseForeignReferers
	s.cfg.Observer.ForeignReferer(s.cfg.Site, name, refuse)
	s.log.Warn("customer returned from a foreign referer",
		zap.String("site", s.cfg.Site), zap.String("provider", name), zap.String("referer_origin", origin),
		zap.Bool("refused", refuse))
	return !refuse
}
