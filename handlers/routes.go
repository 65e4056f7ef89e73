// The routing of the site's own paths under base_path (SPEC §5).
package handlers

import (
	"net/http"
	"strings"

	"github.com/caddy-checkout/checkout/provider"
)

func (s *Site) buildMux() *http.ServeMux {
	b := s.cfg.BasePath
	m := http.NewServeMux()
	m.HandleFunc("GET "+b+"/pay/{ref}", s.servePay)
	m.HandleFunc("POST "+b+"/pay/{ref}", s.servePayPost)
	m.HandleFunc("GET "+b+"/return/{provider}/{ref}", s.serveReturn)
	m.HandleFunc("GET "+b+"/status/{ref}", func(w http.ResponseWriter, r *http.Request) { s.serveStatus(w, r, r.PathValue("ref")) })
	m.HandleFunc("GET "+b+"/events/{ref}", func(w http.ResponseWriter, r *http.Request) { s.serveEvents(w, r, r.PathValue("ref")) })
	m.HandleFunc(b+"/webhook/{provider}", s.serveWebhook)
	m.HandleFunc("GET "+b+"/start", s.serveStart)
	m.HandleFunc("GET "+b+"/buy/{token}", s.serveBuy)
	m.HandleFunc("POST "+b+"/buy/{token}", s.serveBuyPost)
	m.HandleFunc("GET "+b+"/receipt/{token}", s.serveReceipt)
	m.HandleFunc("POST "+b+"/api/orders", s.serveAPICreate)
	m.HandleFunc("GET "+b+"/api/orders/{id}", s.serveAPIGet)
	m.Handle("GET "+b+"/assets/", http.StripPrefix(b+"/assets", s.cfg.Pages.Assets()))
	m.HandleFunc("GET "+b+"/brand/{file}", s.serveBrand)
	for _, p := range s.cfg.Providers {
		if h, ok := p.(http.Handler); ok {
			prefix := b + "/" + p.Name()
			m.Handle(prefix+"/", http.StripPrefix(prefix, h))
		}
	}
	m.HandleFunc(b+"/", func(w http.ResponseWriter, r *http.Request) {
		// Paths no route of ours claims may be a provider's
		// (provider.BaseRouter: 0xBTCpay's POST {base}/ and GET
		// {base}/{id}/status.json share their shape with ours).
		rest := strings.TrimPrefix(r.URL.Path, b)
		for _, p := range s.cfg.Providers {
			if br, ok := p.(provider.BaseRouter); ok && br.ServeBase(w, r, rest) {
				return
			}
		}
		s.fail(w, r, http.StatusNotFound, "error.not_found")
	})
	return m
}

func (s *Site) serveRoute(w http.ResponseWriter, r *http.Request, rest string) {
	if rest == "" || strings.Contains(rest, "/../") {
		s.fail(w, r, http.StatusNotFound, "error.not_found")
		return
	}
	s.routes.ServeHTTP(w, r)
}
