// Stripping of client-sent X-Checkout-* headers (SPEC §6.3). The shop
// trusts these headers when their signature verifies, so a client must
// never be able to send them, in any spelling, nor make a later proxy
// hop drop ours by naming them in Connection.
package handlers

import (
	"io"
	"net/http"
	"strings"
)

// stripCheckoutHeaders removes client-sent X-Checkout-* fields from a
// request: its headers, its Connection list and its trailers. Trailers
// arrive only after the body, so a chunked body is wrapped to remove them
// once it has been read, before anything down the chain can pass them on.
func stripCheckoutHeaders(r *http.Request) {
	stripCheckoutFields(r.Header)
	stripCheckoutFields(r.Trailer)
	if r.Body != nil && r.Body != http.NoBody && len(r.TransferEncoding) > 0 {
		r.Body = &trailerStripper{ReadCloser: r.Body, r: r}
	}
}

// trailerStripper removes X-Checkout-* trailers when its body hits EOF,
// which is when net/http has just merged them into the request's Trailer.
type trailerStripper struct {
	io.ReadCloser
	r *http.Request
}

func (t *trailerStripper) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err == io.EOF {
		stripCheckoutFields(t.r.Trailer)
	}
	return n, err
}

// isCheckoutHeader reports whether name, compared case-insensitively with
// '-', '_' and '.' alike, starts with "X-Checkout-". PHP and other CGI
// hosts map X_Checkout_Status, X.Checkout.Status (which Caddy's relaxed
// header options let through) and X-Checkout-Status to one variable.
func isCheckoutHeader(name string) bool {
	const prefix = "x-checkout-"
	if len(name) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c == '_' || c == '.' {
			c = '-'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// stripCheckoutFields removes every X-Checkout-* header from h and every
// such name from Connection. It reports whether anything was removed.
func stripCheckoutFields(h http.Header) bool {
	removed := false
	for name := range h {
		if isCheckoutHeader(name) {
			delete(h, name)
			removed = true
		}
	}
	if conns, ok := h["Connection"]; ok && namesCheckoutHeader(conns) {
		kept := conns[:0]
		for _, line := range conns {
			var keep []string
			for _, tok := range strings.Split(line, ",") {
				tok = strings.TrimSpace(tok)
				if tok == "" {
					continue
				}
				if isCheckoutHeader(tok) {
					removed = true
					continue
				}
				keep = append(keep, tok)
			}
			if len(keep) > 0 {
				kept = append(kept, strings.Join(keep, ", "))
			}
		}
		if len(kept) == 0 {
			delete(h, "Connection")
		} else {
			h["Connection"] = kept
		}
	}
	return removed
}

// namesCheckoutHeader reports whether a Connection header lists an
// X-Checkout-* name, so that the common "keep-alive" is left untouched
// (rewriting it costs allocations on every request).
func namesCheckoutHeader(conns []string) bool {
	for _, line := range conns {
		for line != "" {
			tok, rest, _ := strings.Cut(line, ",")
			if isCheckoutHeader(strings.TrimSpace(tok)) {
				return true
			}
			line = rest
		}
	}
	return false
}
