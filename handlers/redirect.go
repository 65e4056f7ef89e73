// Validation of the shop URLs customers are sent to, so that no
// configured or computed URL can become an open redirect.
package handlers

import (
	"fmt"
	"net/url"
	"strings"
)

// localPath checks that s is a path on this site ("/orders/1/thanks",
// with an optional query) and not something a browser would resolve to
// another origin: "//evil", "/\evil", "https:evil", control characters,
// encoded slashes at the start.
func localPath(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("empty URL")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f || s[i] == '\\' {
			return "", fmt.Errorf("URL %q: control characters and backslashes are not allowed", s)
		}
	}
	if s[0] != '/' || strings.HasPrefix(s, "//") {
		return "", fmt.Errorf("URL %q: must be a path on this site starting with a single /", s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("URL %q: %v", s, err)
	}
	if u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "", fmt.Errorf("URL %q: must not name a scheme or host", s)
	}
	dec, err := url.PathUnescape(u.EscapedPath())
	if err != nil || strings.HasPrefix(dec, "//") || strings.HasPrefix(dec, "/\\") {
		return "", fmt.Errorf("URL %q: must be a path on this site", s)
	}
	return s, nil
}

// fillOrderID puts the order id into a {order_id} placeholder, escaped as a
// path segment so that an id can never change the URL's shape.
func fillOrderID(tmpl, id string) string {
	return strings.ReplaceAll(tmpl, "{order_id}", url.PathEscape(id))
}
