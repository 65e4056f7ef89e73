package templates

import (
	"bytes"
	"net/http"
	"strings"
	"time"
)

// Assets serves style.css and live.js. Mount it under Base + AssetPrefix
// with the prefix stripped, so that it sees "/style.css". Responses to the
// versioned URLs the pages link (?v=<hash of the current file>) may be
// cached for a year; other requests for a short while, so that a page from
// one version never pins an asset of another for long. Anything else is a
// 404.
func (s *Set) Assets() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/")
		a, ok := s.assets[name]
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.Set("Content-Type", a.ctype)
		h.Set("ETag", `"`+a.hash+`"`)
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if r.URL.Query().Get("v") == a.hash {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "public, max-age=300")
		}
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
	})
}
