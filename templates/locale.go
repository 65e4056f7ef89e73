package templates

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// supportedLocales are the languages whose messages ship with the package.
var supportedLocales = []string{"en", "ja"}

// Locale is the language r is answered in: the lang query parameter when it
// names an enabled locale, else the best match of Accept-Language (q-values
// honoured, "ja-JP" matching "ja"), else the first enabled locale.
func (s *Set) Locale(r *http.Request) string {
	if r != nil && r.URL != nil {
		if l := strings.ToLower(r.URL.Query().Get("lang")); l != "" && s.enabled(l) {
			return l
		}
	}
	var header string
	if r != nil {
		header = strings.Join(r.Header.Values("Accept-Language"), ",")
	}
	return negotiate(header, s.locales)
}

// Locales are the enabled locales, the default first.
func (s *Set) Locales() []string { return append([]string(nil), s.locales...) }

func (s *Set) enabled(l string) bool {
	for _, e := range s.locales {
		if e == l {
			return true
		}
	}
	return false
}

// negotiate picks from enabled (never empty) the locale the Accept-Language
// header value prefers. Entries with q=0 or an unreadable q are skipped;
// among equal q-values the earlier entry wins; "*" stands for the default.
func negotiate(header string, enabled []string) string {
	best, bestQ := "", 0.0
	for _, part := range strings.Split(header, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		tag = strings.ToLower(strings.TrimSpace(tag))
		if tag == "" {
			continue
		}
		q, ok := qValue(params)
		if !ok || q <= bestQ {
			continue
		}
		if m := match(tag, enabled); m != "" {
			best, bestQ = m, q
		}
	}
	if best == "" {
		return enabled[0]
	}
	return best
}

// qValue reads "q=0.8" from the parameters of one Accept-Language entry;
// no q means 1.
func qValue(params string) (float64, bool) {
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || q < 0 || q > 1 {
			return 0, false
		}
		return q, true
	}
	return 1, true
}

// match finds the enabled locale for a lower-case language tag: the tag
// itself, or its primary language ("ja-jp" → "ja").
func match(tag string, enabled []string) string {
	if tag == "*" {
		return enabled[0]
	}
	primary, _, _ := strings.Cut(strings.ReplaceAll(tag, "_", "-"), "-")
	for _, e := range enabled {
		if e == tag || e == primary {
			return e
		}
	}
	return ""
}

// languages is the language switcher for a page shown in current: links
// that keep the request's query and set lang. They are relative ("?…") so
// that they stay right under whatever path prefix the request arrived at.
func (s *Set) languages(r *http.Request, current string) []Language {
	if len(s.locales) < 2 {
		return nil
	}
	var q url.Values
	if r != nil && r.URL != nil {
		q = r.URL.Query()
	} else {
		q = url.Values{}
	}
	out := make([]Language, 0, len(s.locales))
	for _, l := range s.locales {
		q.Set("lang", l)
		out = append(out, Language{
			Code:    l,
			Name:    s.messages[l]["lang.name"],
			URL:     "?" + q.Encode(),
			Current: l == current,
		})
	}
	return out
}
