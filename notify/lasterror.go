// This file turns the outcome of a failed try into the LastError text that
// is stored with the delivery, shown to operators and logged. That text
// must never carry what the callback URL may hide: a query string (a
// shop's own token) or user:password.

package notify

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// maxErrorLen bounds LastError; a network error is short, and anything
// longer is not worth keeping in every delivery record.
const maxErrorLen = 300

// statusError is the LastError of a try that got an answer other than 2xx.
func statusError(code int) string {
	text := http.StatusText(code)
	if text == "" {
		text = "unknown status"
	}
	msg := fmt.Sprintf("shop answered %d %s", code, text)
	if code >= 300 && code < 400 {
		// Say why, so that an operator does not wait for the redirect to
		// "start working": it never will.
		msg += " (redirects are not followed: set the callback to the final URL)"
	}
	return msg
}

// errorText is the LastError of a try that got no answer.
func errorText(err error, rawURL string) string {
	// *url.Error's text starts with the whole URL, query string included;
	// its Op ("Post") says nothing the operator does not know.
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	msg := err.Error()
	// Inner errors (a proxy's, a TLS one) may still quote the URL or its
	// parts; scrub those too rather than trust every error type.
	if u, perr := url.Parse(rawURL); perr == nil {
		if u.RawQuery != "" {
			msg = strings.ReplaceAll(msg, u.RawQuery, "[query]")
		}
		if u.User != nil {
			msg = strings.ReplaceAll(msg, u.User.String(), "[userinfo]")
			if p, ok := u.User.Password(); ok && p != "" {
				msg = strings.ReplaceAll(msg, p, "[password]")
			}
		}
	}
	return truncate(msg, maxErrorLen)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1] // do not cut a rune in half
	}
	return s + "…"
}
