// Package templates is the customer-facing pages of caddy-checkout: the pay
// page, the outcome pages and the frame of a provider's own pages (the
// sandbox's hosted page: the provider fills and translates it), in English
// and Japanese, with their stylesheet and script.
//
// The pages are html/template files embedded in the binary. An operator may
// replace any of them, the two assets and the message catalogues with files
// of the same name in a directory (the templates_dir setting). A page file
// defines the templates "title" and "content" (and may define "head"); the
// layout file defines "layout", which the renderer executes, and the
// partials the pages share ("summary", "expiry", "actions", "continue").
//
// Pages work without JavaScript and send a strict Content-Security-Policy:
// no inline script or style, no third-party assets. live.js only adds live
// status updates and a ticking countdown.
//
// Functions available to templates:
//
//	t KEY [ARGS...]     the message KEY in the page's language (fmt verbs for ARGS)
//	amount AMOUNT       FormatAmount in the page's language
//	datetime TIME       the time in the language's format ("format.datetime")
//	remaining TIME      how long until TIME, in words ("12 minutes")
//	expired TIME        whether TIME has passed
//	unix TIME, isotime TIME, now
//	providerLabel PAGE  the Label of the chosen provider, or ""
//	asset BASE NAME     the versioned URL of an asset ("/_checkout/assets/style.css?v=…")
package templates

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"text/template/parse"
	"time"

	"github.com/caddy-checkout/checkout/money"
)

//go:embed files
var embedded embed.FS

// AssetPrefix is where pages expect Assets under the base path: the
// stylesheet is linked as Base + "/assets/style.css?v=<hash>".
const AssetPrefix = "/assets/"

// Set is a loaded set of pages. It is safe for concurrent use once its
// exported fields are no longer changed.
type Set struct {
	// Now is the clock for expiry countdowns; time.Now by default.
	Now func() time.Time
	// Location is the time zone expiry times are shown in; nil shows
	// them in the zone of Page.ExpiresAt.
	Location *time.Location

	locales  []string
	messages map[string]map[string]string             // locale → key → text
	pages    map[string]map[string]*template.Template // locale → page name → template
	assets   map[string]asset
}

type asset struct {
	body  []byte
	ctype string
	hash  string // first 16 hex digits of the body's SHA-256
}

// source is one file of the set and where it came from, for errors.
type source struct {
	origin string // "embedded pay.html" or the override's path
	body   []byte
}

var assetTypes = map[string]string{
	"style.css": "text/css; charset=utf-8",
	"live.js":   "text/javascript; charset=utf-8",
}

// New loads the embedded pages, then replaces each with the file of the
// same name in dir when dir is not empty. locales are the enabled
// languages, the first being the default; empty means en and ja. It
// returns an error naming the file for a page that does not parse or
// render, for an unknown file in dir, and for an unsupported locale.
func New(dir string, locales []string) (*Set, error) {
	enabled, err := checkLocales(locales)
	if err != nil {
		return nil, err
	}
	files, err := loadFiles(dir)
	if err != nil {
		return nil, err
	}
	s := &Set{
		Now:      time.Now,
		locales:  enabled,
		messages: map[string]map[string]string{},
		pages:    map[string]map[string]*template.Template{},
		assets:   map[string]asset{},
	}
	for name, ctype := range assetTypes {
		body := files[name].body
		sum := sha256.Sum256(body)
		s.assets[name] = asset{body: body, ctype: ctype, hash: hex.EncodeToString(sum[:8])}
	}
	if err := s.loadMessages(files); err != nil {
		return nil, err
	}
	for _, l := range enabled {
		if err := s.parse(l, files); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func checkLocales(locales []string) ([]string, error) {
	if len(locales) == 0 {
		return slices.Clone(supportedLocales), nil
	}
	var out []string
	for _, l := range locales {
		l = strings.ToLower(strings.TrimSpace(l))
		if !slices.Contains(supportedLocales, l) {
			return nil, fmt.Errorf("locale %q is not supported (supported: %s)", l, strings.Join(supportedLocales, ", "))
		}
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out, nil
}

// loadFiles reads the embedded files and the overrides from dir.
func loadFiles(dir string) (map[string]source, error) {
	files := map[string]source{}
	entries, err := fs.ReadDir(embedded, "files")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		body, err := fs.ReadFile(embedded, "files/"+e.Name())
		if err != nil {
			return nil, err
		}
		files[e.Name()] = source{origin: "embedded " + e.Name(), body: body}
	}
	if dir == "" {
		return files, nil
	}
	overrides, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading templates directory: %w", err)
	}
	for _, e := range overrides {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		p := filepath.Join(dir, name)
		if name == "sandbox.html" {
			return nil, fmt.Errorf("%s: the sandbox's page is the sandbox provider's own now (translated by it, inside provider.html); remove this file, or replace provider.html", p)
		}
		if _, ok := files[name]; !ok {
			switch path.Ext(name) {
			case ".html", ".css", ".js", ".json":
				known := make([]string, 0, len(files))
				for n := range files {
					known = append(known, n)
				}
				slices.Sort(known)
				return nil, fmt.Errorf("%s: not a file of the checkout pages; the files that can be replaced are %s", p, strings.Join(known, ", "))
			}
			continue // READMEs, backups
		}
		body, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading template override: %w", err)
		}
		files[name] = source{origin: p, body: body}
	}
	return files, nil
}

// loadMessages reads each enabled locale's catalogue. An override
// catalogue replaces the texts it names and may leave others out; a key
// the embedded catalogue does not have is an error (a typo would otherwise
// go unnoticed).
func (s *Set) loadMessages(files map[string]source) error {
	for _, l := range s.locales {
		name := "messages." + l + ".json"
		base, err := fs.ReadFile(embedded, "files/"+name)
		if err != nil {
			return err
		}
		msgs := map[string]string{}
		if err := json.Unmarshal(base, &msgs); err != nil {
			return fmt.Errorf("embedded %s: %w", name, err)
		}
		if src := files[name]; src.origin != "embedded "+name {
			var over map[string]string
			if err := json.Unmarshal(src.body, &over); err != nil {
				return fmt.Errorf("%s: %w", src.origin, err)
			}
			for k, v := range over {
				if _, ok := msgs[k]; !ok {
					return fmt.Errorf("%s: unknown message key %q", src.origin, k)
				}
				msgs[k] = v
			}
		}
		s.messages[l] = msgs
	}
	return nil
}

// parse builds every page for one locale and renders each once with sample
// data, so that mistakes html/template only finds when it first executes
// (an unclosed attribute, a missing "content") fail New, not a customer.
func (s *Set) parse(locale string, files map[string]source) error {
	layout := files["layout.html"]
	base, err := template.New("layout.html").Funcs(s.funcs(locale)).Parse(string(layout.body))
	if err != nil {
		return fmt.Errorf("parsing %s: %w", layout.origin, err)
	}
	s.pages[locale] = map[string]*template.Template{}
	for _, name := range pageNames {
		src := files[name+".html"]
		t, err := base.Clone()
		if err != nil {
			return err
		}
		if _, err := t.New(name + ".html").Parse(string(src.body)); err != nil {
			return fmt.Errorf("parsing %s: %w", src.origin, err)
		}
		if err := checkKeys(t, s.messages[locale]); err != nil {
			return fmt.Errorf("%s: %w", src.origin, err)
		}
		p := samplePage(name)
		p.Locale = locale
		p.Languages = s.languages(nil, locale)
		if err := t.ExecuteTemplate(io.Discard, "layout", p); err != nil {
			return fmt.Errorf("%s (with %s): %w", src.origin, layout.origin, err)
		}
		s.pages[locale][name] = t
	}
	return nil
}

// samplePage is a page with every field set, for checking templates.
func samplePage(name string) Page {
	return Page{
		Name: name, Base: "/_checkout", Ref: "sample", OrderID: "1234567", Description: "Sample order",
		Amount: money.MustParse("75.00", "USD"), Received: money.MustParse("25.00", "USD"),
		Status: "on_hold", ExpiresAt: time.Now().Add(30 * time.Minute), Late: true,
		Providers:    []Choice{{Name: "sandbox", Label: "Sandbox"}, {Name: "stripe", Label: "Card"}},
		Provider:     "sandbox",
		ProviderHTML: template.HTML("<p>Sample instructions</p>"),
		Title:        "Sample title", Lead: "Sample lead", ProviderIntro: template.HTML("<p>Sample intro</p>"),
		CSRF: "sample", Action: "/_checkout/pay/sample",
		ContinueURL: "/", RetryURL: "/_checkout/pay/sample",
		StatusURL: "/_checkout/status/sample", EventsURL: "/_checkout/events/sample",
		Message: "Sample message", HTTPStatus: 400,
	}
}

// checkKeys reports the first `t "key"` call in t whose key is not in
// msgs. Keys that are not string constants cannot be checked here; at
// run time an unknown key shows as itself.
func checkKeys(t *template.Template, msgs map[string]string) error {
	var err error
	var walk func(parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n != nil {
				for _, c := range n.Nodes {
					walk(c)
				}
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			if n != nil {
				for _, c := range n.Cmds {
					walk(c)
				}
			}
		case *parse.CommandNode:
			if len(n.Args) >= 2 {
				id, ok1 := n.Args[0].(*parse.IdentifierNode)
				key, ok2 := n.Args[1].(*parse.StringNode)
				if ok1 && ok2 && id.Ident == "t" && err == nil {
					if _, ok := msgs[key.Text]; !ok {
						err = fmt.Errorf("unknown message key %q", key.Text)
					}
				}
			}
			for _, a := range n.Args {
				walk(a)
			}
		case *parse.IfNode:
			walkBranch(&n.BranchNode, walk)
		case *parse.RangeNode:
			walkBranch(&n.BranchNode, walk)
		case *parse.WithNode:
			walkBranch(&n.BranchNode, walk)
		case *parse.TemplateNode:
			walk(n.Pipe)
		}
	}
	for _, tt := range t.Templates() {
		if tt.Tree != nil && tt.Tree.Root != nil {
			walk(tt.Tree.Root)
		}
	}
	return err
}

func walkBranch(b *parse.BranchNode, walk func(parse.Node)) {
	walk(b.Pipe)
	walk(b.List)
	if b.ElseList != nil {
		walk(b.ElseList)
	}
}

// funcs are the template functions for one locale.
func (s *Set) funcs(locale string) template.FuncMap {
	msgs := func() map[string]string { return s.messages[locale] }
	text := func(key string, args ...any) string {
		m, ok := msgs()[key]
		if !ok {
			return key
		}
		if len(args) == 0 {
			return m
		}
		return fmt.Sprintf(m, args...)
	}
	return template.FuncMap{
		"t":      text,
		"amount": func(a money.Amount) string { return FormatAmount(a, locale) },
		"datetime": func(t time.Time) string {
			if s.Location != nil {
				t = t.In(s.Location)
			}
			return t.Format(msgs()["format.datetime"])
		},
		"isotime":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"unix":      func(t time.Time) int64 { return t.Unix() },
		"now":       s.now,
		"expired":   func(t time.Time) bool { return !s.now().Before(t) },
		"remaining": func(t time.Time) string { return remaining(t.Sub(s.now()), text) },
		"providerLabel": func(p Page) string {
			for _, c := range p.Providers {
				if c.Name == p.Provider {
					return c.Label
				}
			}
			return ""
		},
		"asset": func(base, name string) (string, error) {
			a, ok := s.assets[name]
			if !ok {
				return "", fmt.Errorf("no asset %q", name)
			}
			return strings.TrimSuffix(base, "/") + AssetPrefix + name + "?v=" + a.hash, nil
		},
	}
}

func (s *Set) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// remaining says d in words, rounded down so that the customer is never
// told they have more time than they do.
func remaining(d time.Duration, t func(string, ...any) string) string {
	switch {
	case d < time.Minute:
		return t("duration.less_minute")
	case d < 2*time.Minute:
		return t("duration.minute")
	case d < 120*time.Minute:
		return t("duration.minutes", int(d/time.Minute))
	case d < 48*time.Hour:
		return t("duration.hours", int(d/time.Hour))
	default:
		return t("duration.days", int(d/(24*time.Hour)))
	}
}

// errNoPage is returned by Render for a Page.Name that is not a page.
var errNoPage = errors.New("no such page")

// render executes the page into a buffer.
func (s *Set) render(p Page) (*bytes.Buffer, error) {
	t := s.pages[p.Locale][p.Name]
	if t == nil {
		return nil, fmt.Errorf("%w %q", errNoPage, p.Name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		return nil, fmt.Errorf("rendering page %s (%s): %w", p.Name, p.Locale, err)
	}
	return &buf, nil
}
