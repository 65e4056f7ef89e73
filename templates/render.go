package templates

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Render writes page p with the given status (0: p.HTTPStatus, else 200)
// in the language the request prefers. The page is rendered into a buffer
// first: if rendering fails the customer gets a plain-text 500 instead of
// half a page, and the error is returned for the caller to log.
func (s *Set) Render(w http.ResponseWriter, r *http.Request, status int, p Page) error {
	if status == 0 {
		status = p.HTTPStatus
	}
	if status == 0 {
		status = http.StatusOK
	}
	if p.HTTPStatus == 0 {
		p.HTTPStatus = status
	}
	p.Locale = s.Locale(r)
	p.Languages = s.languages(r, p.Locale)

	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer") // attempt references are in our URLs
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", CSP(p.FormOrigins))

	buf, err := s.render(p)
	if err != nil {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Del("Content-Length")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("500 Internal Server Error\n\nThis page could not be shown. Please try again in a moment.\n"))
		return err
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", p.Locale)
	h.Add("Vary", "Accept-Language")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w) // a customer who left cannot be told
	return nil
}

// CSP is the Content-Security-Policy of every page: nothing but this
// origin's own stylesheet, script, images (and data: images for QR codes)
// and fetches, and forms that post to this origin or to formOrigins. Values
// of formOrigins that are not a bare http(s) origin are left out, so that
// no value can widen or break the policy.
func CSP(formOrigins []string) string {
	var b strings.Builder
	b.WriteString("default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'")
	for _, o := range formOrigins {
		if o = origin(o); o != "" {
			b.WriteByte(' ')
			b.WriteString(o)
		}
	}
	b.WriteString("; frame-ancestors 'none'; base-uri 'none'")
	return b.String()
}

// origin returns s as "scheme://host[:port]" when it is an http(s) URL
// with nothing but an origin (a trailing "/" allowed), else "".
func origin(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return ""
	}
	for _, c := range u.Host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '[' || c == ']') {
			return ""
		}
	}
	return u.Scheme + "://" + strings.ToLower(u.Host)
}
