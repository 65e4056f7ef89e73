// The http.handlers.checkout module: one site's checkout, configured in
// JSON (or through the Caddyfile's checkout directive).
package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/internal/secrets"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/sign"
	"github.com/caddy-checkout/checkout/templates"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler takes payments for the shop behind it. It learns of orders from
// the shop (X-Checkout-* response headers, signed links, a server API),
// sends customers to a payment provider, verifies what comes back and
// tells the shop through signed headers and signed callbacks.
type Handler struct {
	// Site names this shop in order keys, the admin API and callbacks.
	// Two checkout handlers that share a store need different names.
	// Default: the host of public_url, or "default".
	Site string `json:"site,omitempty"`

	// BasePath is where the plugin's own routes live (pay pages,
	// returns, webhooks, the API). Default: /_checkout.
	BasePath string `json:"base_path,omitempty"`

	// PublicURL is how customers and providers reach this site, such as
	// https://shop.example.com. Default: the scheme and host of each
	// request.
	PublicURL string `json:"public_url,omitempty"`

	// Secret signs callbacks, the headers given to the shop and links:
	// "whsec_" and base64 of 24-64 random bytes (make one with `caddy
	// checkout secret`). Use a placeholder such as {env.CHECKOUT_SECRET}
	// or {file./etc/caddy/checkout.secret} to keep it out of the config.
	Secret string `json:"secret,omitempty"`

	// PreviousSecret is the secret before the last rotation: what it
	// signed (links, return tokens, receipts, server API calls) still
	// verifies, and callbacks carry its signature beside the current
	// one's, until PreviousSecretUntil. Everything new is signed with
	// Secret. Placeholders work as for Secret.
	PreviousSecret string `json:"previous_secret,omitempty"`
	// PreviousSecretUntil ends the rotation window: an RFC 3339 time.
	// Empty: the previous secret verifies for as long as it is set.
	PreviousSecretUntil string `json:"previous_secret_until,omitempty"`

	// Callback is the shop URL that receives a signed Standard Webhooks
	// POST for every order state change, retried for 3 days. Optional.
	Callback string `json:"callback,omitempty"`

	// SuccessURL is the shop page a paid customer lands on, with
	// {order_id} filled in, such as /orders/{order_id}/thanks. The
	// request reaches the shop with signed X-Checkout-* headers. Default:
	// the plugin's own "paid" page.
	SuccessURL string `json:"success_url,omitempty"`

	// CancelURL is the shop page for a customer who gives up, such as
	// /cart ({order_id} may be used). Default: /.
	CancelURL string `json:"cancel_url,omitempty"`

	// Expire is how long an order stays payable unless the shop says
	// otherwise (X-Checkout-Expires). Default: 30m.
	Expire caddy.Duration `json:"expire,omitempty"`

	// Locales are the languages of the pay pages; the customer's
	// Accept-Language picks one. Default: en ja.
	Locales []string `json:"locales,omitempty"`

	// Intake lists the ways orders may come in: "headers" (X-Checkout-*
	// response headers from the shop), "signed_link" ({base}/start links)
	// and "api" (the server API). Default: headers.
	Intake []string `json:"intake,omitempty"`

	// APIAllow lists the client networks (CIDR) that may call the server
	// API. Default: 127.0.0.0/8 and ::1/128.
	APIAllow []string `json:"api_allow,omitempty"`

	// ReturnReferers are origins, besides this site's and the providers'
	// own pages, from which customers come back to the return routes
	// (a bank's 3-D Secure page, a wallet's site), such as
	// https://pay.example-bank.com. See RefererPolicy.
	ReturnReferers []string `json:"return_referers,omitempty"`

	// RefererPolicy says what a return from a foreign Referer (not this
	// site, not a provider's pages, not in ReturnReferers) does: "log"
	// (the default) logs and counts it and lets the server-side check
	// with the provider, which is always the proof, decide; "refuse"
	// answers 403 and asks the provider nothing. A return without a
	// Referer always goes on to the server-side check.
	RefererPolicy string `json:"referer_policy,omitempty"`

	// Prices sell access to paths of this site, with no shop behind them:
	// a request without a paid receipt is sent to pay (a browser) or
	// answered 402 with a JSON price (a program). Each covers an exact
	// path or a prefix ending in /*; no two may cover one path.
	Prices []Price `json:"prices,omitempty"`

	// ReceiptTTL is how long a paid price's receipt (a cookie, or a bearer
	// token for programs) opens its path. Default: 30d.
	ReceiptTTL caddy.Duration `json:"receipt_ttl,omitempty"`

	// RetainPersonal erases a customer's data (the e-mail, the shop's
	// metadata, provider data such as a Jabber ID or a konbini slip's
	// code) once the order has been final this long; amounts, ids,
	// states and the history stay. Zero (the default): kept for as long
	// as the order.
	RetainPersonal caddy.Duration `json:"retain_personal,omitempty"`

	// TemplatesDir holds page templates that replace the embedded ones of
	// the same file name. Optional.
	TemplatesDir string `json:"templates_dir,omitempty"`

	// Brand shows the shop's name, logo and colour on every page of the
	// plugin, as the shop's own pages would. Optional.
	Brand *Brand `json:"brand,omitempty"`

	// ProvidersRaw are the payment providers, in the order the pay page
	// offers them. Each is a module in the checkout.providers namespace,
	// such as {"provider": "sandbox"}.
	ProvidersRaw []json.RawMessage `json:"providers,omitempty" caddy:"namespace=checkout.providers inline_key=provider"`

	site   *handlers.Site
	engine *engine
}

// Price sells access to a path.
type Price struct {
	// Path is an exact path, such as /downloads/ebook.pdf, or a prefix
	// ending in /*, such as /reports/* (which covers /reports and
	// everything under it).
	Path string `json:"path"`
	// Amount is a decimal in the currency's major units, such as 9.99.
	Amount string `json:"amount"`
	// Currency is an ISO 4217 code or a token symbol that a provider of
	// this site takes.
	Currency string `json:"currency"`
	// Description is shown on the pay page and kept with the order.
	Description string `json:"description,omitempty"`
}

// Brand is how the pages present the shop.
type Brand struct {
	// Name is the shop's name, shown at the top of every page and in
	// the window title.
	Name string `json:"name,omitempty"`
	// Logo is an image file (PNG, JPEG, GIF, WebP or SVG, at most 256
	// KiB), read when the config loads and served by the plugin itself,
	// so that the pages' Content-Security-Policy stays 'self'.
	Logo string `json:"logo,omitempty"`
	// Color is the accent colour of buttons and links, as #rgb or
	// #rrggbb.
	Color string `json:"color,omitempty"`
}

// parseOrigins checks return_referers: each a bare http(s) origin.
func parseOrigins(list []string) ([]string, error) {
	var out []string
	for _, v := range list {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("return_referers: %q is not an origin; want scheme and host, such as https://pay.example-bank.com", v)
		}
		out = append(out, strings.ToLower(u.Scheme+"://"+u.Host))
	}
	return out, nil
}

// brandColor is what Brand.Color accepts.
var brandColor = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// maxLogo bounds the logo file, which is kept in memory.
const maxLogo = 256 << 10

// load reads and checks the brand's settings.
func (b *Brand) load() (handlers.Brand, error) {
	out := handlers.Brand{Name: b.Name}
	if len(b.Name) > 100 || strings.ContainsAny(b.Name, "\r\n") {
		return out, fmt.Errorf("brand name: want one line of at most 100 bytes")
	}
	if b.Color != "" {
		if !brandColor.MatchString(b.Color) {
			return out, fmt.Errorf("brand color %q: want a hex colour such as #1f6feb", b.Color)
		}
		out.Color = b.Color
	}
	if b.Logo != "" {
		f, err := os.Open(b.Logo)
		if err != nil {
			return out, fmt.Errorf("brand logo: %v", err)
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, maxLogo+1))
		if err != nil {
			return out, fmt.Errorf("brand logo %s: %v", b.Logo, err)
		}
		if len(data) > maxLogo {
			return out, fmt.Errorf("brand logo %s: larger than 256 KiB", b.Logo)
		}
		typ := http.DetectContentType(data)
		switch {
		case typ == "image/png" || typ == "image/jpeg" || typ == "image/gif" || typ == "image/webp":
		case strings.HasSuffix(strings.ToLower(b.Logo), ".svg") && bytes.Contains(data, []byte("<svg")):
			typ = "image/svg+xml"
		default:
			return out, fmt.Errorf("brand logo %s: not a PNG, JPEG, GIF, WebP or SVG image (%s)", b.Logo, typ)
		}
		out.Logo, out.LogoType = data, typ
	}
	return out, nil
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.checkout",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision builds the site from the config.
func (h *Handler) Provision(ctx caddy.Context) error {
	appIface, err := ctx.App("checkout")
	if err != nil {
		return fmt.Errorf("loading checkout app: %v", err)
	}
	app := appIface.(*App)
	h.engine = app.engine

	secretText, err := secrets.Resolve("secret", h.Secret)
	if err != nil {
		return err
	}
	secret, err := sign.ParseSecret(secretText)
	if err != nil {
		return err // names the secret setting, never its value
	}
	if secret, err = h.withPrevious(secret); err != nil {
		return err
	}
	if h.PreviousSecret != "" && !secret.Rotating(time.Now()) {
		ctx.Logger().Warn("previous_secret's window is over: it verifies nothing now; remove the line",
			zap.String("until", h.PreviousSecretUntil))
	}
	cfg := handlers.Config{
		Site:       h.Site,
		BasePath:   h.BasePath,
		PublicURL:  h.PublicURL,
		Secret:     secret,
		SuccessURL: h.SuccessURL,
		CancelURL:  h.CancelURL,
		Expire:     time.Duration(h.Expire),
		Store:      app.engine.store,
		Logger:     ctx.Logger(),
		Wake:       app.engine.notifier.Wake,
		Observer:   app.engine.metrics,
	}
	if h.Callback != "" {
		if cfg.Callback, err = secrets.Resolve("callback", h.Callback); err != nil {
			return err
		}
	}
	if cfg.Site == "" {
		cfg.Site = "default"
		if u, err := url.Parse(h.PublicURL); err == nil && u.Hostname() != "" {
			cfg.Site = u.Hostname()
		}
	}
	if err := checkSiteName(cfg.Site); err != nil {
		return err
	}
	settings, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("encoding settings: %v", err)
	}
	if err := app.claimSite(cfg.Site, settings); err != nil {
		return err
	}
	if cfg.Intake, err = parseIntake(h.Intake); err != nil {
		return err
	}
	for _, s := range h.APIAllow {
		p, err := parsePrefix(s)
		if err != nil {
			return fmt.Errorf("api_allow: %v", err)
		}
		cfg.APIAllow = append(cfg.APIAllow, p)
	}
	if cfg.ReturnReferers, err = parseOrigins(h.ReturnReferers); err != nil {
		return err
	}
	switch h.RefererPolicy {
	case "", "log":
	case "refuse":
		cfg.RefuseForeignReferers = true
	default:
		return fmt.Errorf("referer_policy %q: want log or refuse", h.RefererPolicy)
	}
	for _, p := range h.Prices {
		cfg.Prices = append(cfg.Prices, handlers.Price(p))
	}
	cfg.ReceiptTTL = time.Duration(h.ReceiptTTL)
	cfg.RetainPersonal = time.Duration(h.RetainPersonal)
	if h.Brand != nil {
		if cfg.Brand, err = h.Brand.load(); err != nil {
			return err
		}
	}
	if cfg.Pages, err = templates.New(h.TemplatesDir, h.Locales); err != nil {
		return fmt.Errorf("templates: %v", err)
	}

	mods, err := ctx.LoadModule(h, "ProvidersRaw")
	if err != nil {
		return fmt.Errorf("loading providers: %v", err)
	}
	for _, m := range mods.([]any) {
		p, ok := m.(provider.Provider)
		if !ok {
			return fmt.Errorf("module %T is not a payment provider", m)
		}
		cfg.Providers = append(cfg.Providers, p)
	}
	site, err := handlers.New(cfg)
	if err != nil {
		return err
	}
	h.site = site
	app.engine.register(site)
	return nil
}

func parseIntake(list []string) (handlers.Intakes, error) {
	var in handlers.Intakes
	if len(list) == 0 {
		in.Headers = true
		return in, nil
	}
	for _, v := range list {
		switch v {
		case "headers":
			in.Headers = true
		case "signed_link":
			in.SignedLink = true
		case "api":
			in.API = true
		default:
			return in, fmt.Errorf("intake %q: want headers, signed_link or api", v)
		}
	}
	return in, nil
}

// parsePrefix reads a CIDR, or a single address as its /32 or /128.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("%q is not a CIDR such as 127.0.0.1/32", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Validate checks what Provision could not.
func (h *Handler) Validate() error { return nil }

// Cleanup unregisters the site unless a newer config replaced it.
func (h *Handler) Cleanup() error {
	if h.engine != nil && h.site != nil {
		h.engine.unregister(h.site)
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return h.site.ServeHTTP(w, r, next.ServeHTTP)
}

var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)

// maxSiteName bounds a site name: it is part of every order's key and of
// the change notices instances send each other.
const maxSiteName = 200

// checkSiteName refuses a site name that could not key orders in every
// store: empty, too long, not UTF-8 (PostgreSQL refuses such text, and
// JSON, as in the admin API's cursors, turns its bytes into U+FFFD and so
// names another site), or with spaces, control characters or '/' (order
// keys are shown as site/order id).
func checkSiteName(name string) error {
	if name == "" || len(name) > maxSiteName {
		return fmt.Errorf("site %q: want 1 to %d characters", name, maxSiteName)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("site %q: not UTF-8 text", name)
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f || r == '/' || !unicode.IsPrint(r) {
			return fmt.Errorf("site %q: letters, digits and punctuation only (no spaces, control characters or /)", name)
		}
	}
	return nil
}

// withPrevious adds the previous secret of a rotation to secret.
func (h *Handler) withPrevious(secret sign.Secret) (sign.Secret, error) {
	if h.PreviousSecret == "" {
		if h.PreviousSecretUntil != "" {
			return secret, errors.New("previous_secret_until is set without previous_secret")
		}
		return secret, nil
	}
	text, err := secrets.Resolve("previous_secret", h.PreviousSecret)
	if err != nil {
		return secret, err
	}
	prev, err := sign.ParseSecret(text)
	if err != nil {
		return secret, fmt.Errorf("previous_secret: %v", err) // never its value
	}
	if prev.SameKey(secret) {
		return secret, errors.New("previous_secret is the same as secret: a rotation needs a new secret (make one with: caddy checkout secret --rotate)")
	}
	var until time.Time
	if h.PreviousSecretUntil != "" {
		if until, err = time.Parse(time.RFC3339, h.PreviousSecretUntil); err != nil {
			return secret, fmt.Errorf("previous_secret until %q: not an RFC 3339 time such as 2026-12-31T00:00:00Z", h.PreviousSecretUntil)
		}
	}
	return secret.WithPrevious(prev, until), nil
}
