package templates_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddy-checkout/checkout/templates"
)

func TestLocaleSelection(t *testing.T) {
	enJa, err := templates.New("", nil)
	if err != nil {
		t.Fatal(err)
	}
	jaEn, err := templates.New("", []string{"ja", "en"})
	if err != nil {
		t.Fatal(err)
	}
	enOnly, err := templates.New("", []string{"en"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		set    *templates.Set
		query  string
		header string
		want   string
	}{
		{"default/no-header", enJa, "", "", "en"},
		{"default/first-enabled", jaEn, "", "", "ja"},
		{"exact", enJa, "", "ja", "ja"},
		{"region-matches-primary", enJa, "", "ja-JP", "ja"},
		{"case-insensitive", enJa, "", "JA-jp", "ja"},
		{"underscore", enJa, "", "ja_JP", "ja"},
		{"browser-order", enJa, "", "en-US,en;q=0.9,ja;q=0.8", "en"},
		{"q-values-beat-order", enJa, "", "en;q=0.5, ja;q=0.9", "ja"},
		{"unsupported-first", enJa, "", "de-DE, fr;q=0.9, ja;q=0.1", "ja"},
		{"nothing-matches", jaEn, "", "de, fr", "ja"},
		{"q-zero-refuses", enJa, "", "ja;q=0, en;q=0.1", "en"},
		{"q-zero-only", jaEn, "", "ja;q=0", "ja"},
		{"bad-q-skipped", enJa, "", "ja;q=abc, en;q=0.2", "en"},
		{"q-out-of-range-skipped", enJa, "", "ja;q=2, en;q=0.2", "en"},
		{"wildcard", jaEn, "", "*", "ja"},
		{"specific-beats-wildcard", enJa, "", "*;q=0.5, ja", "ja"},
		{"spaces", enJa, "", " ja-JP ; q=0.8 , en ; q=0.7 ", "ja"},
		{"query-overrides-header", enJa, "lang=ja", "en-US,en", "ja"},
		{"query-case", enJa, "lang=JA", "en", "ja"},
		{"query-not-enabled", enOnly, "lang=ja", "ja", "en"},
		{"query-unknown-ignored", enJa, "lang=de", "ja", "ja"},
		{"not-enabled", enOnly, "", "ja-JP", "en"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/_checkout/pay/ref?"+tc.query, nil)
			if tc.header != "" {
				r.Header.Set("Accept-Language", tc.header)
			}
			if got := tc.set.Locale(r); got != tc.want {
				t.Errorf("Locale(Accept-Language %q, query %q) = %q, want %q", tc.header, tc.query, got, tc.want)
			}
			// Render uses the same choice.
			w := httptest.NewRecorder()
			if err := tc.set.Render(w, r, 200, samplePage("paid")); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(w.Body.String(), `<html lang="`+tc.want+`">`) {
				t.Errorf("page not rendered in %s", tc.want)
			}
			if got := w.Header().Get("Content-Language"); got != tc.want {
				t.Errorf("Content-Language = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLocalesConfig(t *testing.T) {
	s, err := templates.New("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Locales(), " "); got != "en ja" {
		t.Errorf("default locales = %q, want \"en ja\"", got)
	}
	s, err = templates.New("", []string{"JA", "en", "ja"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Locales(), " "); got != "ja en" {
		t.Errorf("locales = %q, want \"ja en\" (normalised, deduplicated)", got)
	}
	_, err = templates.New("", []string{"en", "de"})
	if err == nil || !strings.Contains(err.Error(), `"de"`) {
		t.Errorf("New with locale de: err = %v, want an error naming \"de\"", err)
	}
}

func TestLanguageSwitcher(t *testing.T) {
	s, err := templates.New("", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/_checkout/return/stripe/ref?session_id=cs_1&lang=en", nil)
	w := httptest.NewRecorder()
	if err := s.Render(w, r, 200, samplePage("processing")); err != nil {
		t.Fatal(err)
	}
	body := w.Body.String()
	if !strings.Contains(body, `<a href="?lang=ja&amp;session_id=cs_1" lang="ja" hreflang="ja">日本語</a>`) {
		t.Errorf("switcher link to ja missing or wrong:\n%s", body)
	}
	if !strings.Contains(body, `<span aria-current="page">English</span>`) {
		t.Errorf("current language not marked")
	}

	one, err := templates.New("", []string{"en"})
	if err != nil {
		t.Fatal(err)
	}
	w = httptest.NewRecorder()
	if err := one.Render(w, r, 200, samplePage("paid")); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(w.Body.String(), `class="langs"`) {
		t.Errorf("switcher shown with one language")
	}
}
