// Package handlers is the HTTP side of caddy-checkout for one site: the
// intake of orders from the shop (response headers, signed links, the
// server API), the customer's pages and returns, provider webhooks, and
// the signed headers on the request that reaches the shop after payment.
// It knows nothing of Caddy: caddymodule adapts it.
package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/payments"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/sign"
	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/templates"
)

// Intakes says which ways an order may come in.
type Intakes struct {
	Headers    bool // X-Checkout-* response headers from the upstream
	SignedLink bool // GET {base}/start?...&sig=
	API        bool // POST {base}/api/orders
}

// Config is a site's settings, already validated and with secrets
// resolved.
type Config struct {
	Site       string // names the site in order keys and the admin API
	BasePath   string // "/_checkout"
	PublicURL  string // "https://shop.example.com"; empty: from the request
	Secret     sign.Secret
	Callback   string // shop callback URL; empty: no callbacks
	SuccessURL string // "/orders/{order_id}/thanks"; empty: our own paid page
	CancelURL  string // "/cart"
	Expire     time.Duration
	// RetainPersonal is how long a final order keeps its customer's data
	// (payments.Config.RetainPersonal); 0: as long as the order.
	RetainPersonal time.Duration
	Intake         Intakes
	APIAllow       []netip.Prefix
	Providers      []provider.Provider // in the order the pay page lists them
	Store          store.Store
	Pages          *templates.Set
	Logger         *zap.Logger
	// Wake is called after a callback delivery was committed, so that the
	// notifier sends it now rather than at its next poll.
	Wake func()
	// Now is the clock; tests set it.
	Now func() time.Time
	// Observer is told of state changes and webhook verdicts, for
	// metrics. Optional.
	Observer Observer
	// Brand presents the shop on every page. Optional.
	Brand Brand
	// ReturnReferers are more origins customers may come back from to the
	// return routes, besides this site and the providers' PageOrigins
	// ("https://pay.example-bank.com").
	ReturnReferers []string
	// RefuseForeignReferers answers a return from any other Referer with
	// 403, asking the provider nothing; otherwise such a return is logged
	// and counted, and the server-side check decides.
	RefuseForeignReferers bool
	// Prices sell access to paths (SPEC §4.4); no two may cover one path.
	Prices []Price
	// ReceiptTTL is how long a paid price's receipt opens its path.
	// Default: DefaultReceiptTTL.
	ReceiptTTL time.Duration
}

// Brand is the shop's name, logo and accent colour on the pages. The logo
// is served from {base}/brand/logo and the colour as {base}/brand/style.css,
// so the pages' CSP keeps to 'self' and no inline style.
type Brand struct {
	Name     string
	Logo     []byte // the image; empty: none
	LogoType string // its media type, such as image/png
	Color    string // "#1f6feb"; empty: the default
}

// Observer counts what happens to orders. Implementations MUST be safe
// for concurrent use and MUST NOT block.
type Observer interface {
	// Moved: an order entered state to (pending on creation), through
	// provider ("" when none was chosen yet).
	Moved(site, provider string, to order.State)
	// Webhook: a provider webhook got a verdict: "ok", "unauthenticated",
	// "malformed", "unavailable" or "error".
	Webhook(site, provider, result string)
	// ForeignReferer: a customer came back to provider's return route
	// from a foreign Referer, and was refused or let through.
	ForeignReferer(site, provider string, refused bool)
}

type noObserver struct{}

func (noObserver) Moved(string, string, order.State)   {}
func (noObserver) Webhook(string, string, string)      {}
func (noObserver) ForeignReferer(string, string, bool) {}

// Site serves one site's checkout routes. It is safe for concurrent use.
type Site struct {
	cfg       Config
	providers map[string]provider.Provider
	log       *zap.Logger
	now       func() time.Time
	hub       *hub
	pay       *payments.Site
	brand     templates.Brand
	// currencies are the site's: the built-in ones and the tokens its
	// providers registered at Setup.
	currencies *money.Currencies
	routes     *http.ServeMux
	prices     []*price
	receiptTTL time.Duration
	receipts   *receiptCache
}

// DefaultBasePath is where the plugin's routes live unless configured.
const DefaultBasePath = "/_checkout"

// New checks cfg, builds the site and sets up its providers
// (provider.Setuper) with the site's Env.
func New(cfg Config) (*Site, error) {
	if cfg.Site == "" {
		return nil, errors.New("site: a site name is required")
	}
	if cfg.Secret.IsZero() {
		return nil, errors.New("secret: required (make one with: caddy checkout secret)")
	}
	if cfg.Store == nil || cfg.Pages == nil {
		return nil, errors.New("checkout site needs a store and pages")
	}
	if cfg.BasePath == "" {
		cfg.BasePath = DefaultBasePath
	}
	if !strings.HasPrefix(cfg.BasePath, "/") || strings.HasSuffix(cfg.BasePath, "/") || strings.ContainsAny(cfg.BasePath, "?#{}") {
		return nil, fmt.Errorf("base_path %q: must start with / and not end with /", cfg.BasePath)
	}
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, fmt.Errorf("public_url %q: want scheme and host only, such as https://shop.example.com", cfg.PublicURL)
		}
		cfg.PublicURL = u.Scheme + "://" + u.Host
	}
	if cfg.Callback != "" {
		u, err := url.Parse(cfg.Callback)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("callback %q: want an absolute http or https URL, with the scheme, such as http://127.0.0.1:8080/payments/webhook", redactURL(cfg.Callback))
		}
	}
	if cfg.SuccessURL != "" {
		if _, err := localPath(fillOrderID(cfg.SuccessURL, "x")); err != nil {
			return nil, fmt.Errorf("success_url: %v", err)
		}
	}
	if cfg.CancelURL != "" {
		if _, err := localPath(fillOrderID(cfg.CancelURL, "x")); err != nil {
			return nil, fmt.Errorf("cancel_url: %v", err)
		}
	}
	if cfg.Expire == 0 {
		cfg.Expire = 30 * time.Minute
	}
	if cfg.Expire < time.Minute {
		return nil, fmt.Errorf("expire %s: must be at least 1m", cfg.Expire)
	}
	if len(cfg.Providers) == 0 {
		return nil, errors.New("no payment provider configured: add at least one (for example sandbox)")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Wake == nil {
		cfg.Wake = func() {}
	}
	if cfg.Observer == nil {
		cfg.Observer = noObserver{}
	}
	s := &Site{cfg: cfg, providers: map[string]provider.Provider{}, log: cfg.Logger, now: cfg.Now, hub: newHub(), receipts: newReceiptCache()}
	for _, p := range cfg.Providers {
		if _, dup := s.providers[p.Name()]; dup {
			return nil, fmt.Errorf("provider %s configured twice", p.Name())
		}
		s.providers[p.Name()] = p
	}
	var err error
	if s.pay, err = payments.New(payments.Config{
		Site: cfg.Site, BasePath: cfg.BasePath, PublicURL: cfg.PublicURL, Callback: cfg.Callback,
		Expire: cfg.Expire, Providers: cfg.Providers, Store: cfg.Store, Logger: cfg.Logger, Now: cfg.Now, Wake: cfg.Wake,
		Observer: cfg.Observer, OnChange: s.changed,
		RetainPersonal: cfg.RetainPersonal, KeepMetadata: paywallMetadata,
	}); err != nil {
		return nil, err
	}
	if s.prices, err = checkPricePaths(cfg.Prices, cfg.Site, cfg.BasePath); err != nil {
		return nil, err
	}
	if s.receiptTTL = cfg.ReceiptTTL; s.receiptTTL == 0 {
		s.receiptTTL = DefaultReceiptTTL
	}
	if s.receiptTTL < time.Minute {
		return nil, fmt.Errorf("receipt_ttl %s: must be at least 1m", s.receiptTTL)
	}
	s.brand = brandPage(cfg.BasePath, cfg.Brand)
	s.currencies = new(money.Currencies)
	s.routes = s.buildMux()
	for _, p := range cfg.Providers {
		if su, ok := p.(provider.Setuper); ok {
			if err := su.Setup(s.Env(p.Name())); err != nil {
				return nil, fmt.Errorf("provider %s: %v", p.Name(), err)
			}
		}
	}
	// Amounts are read once the providers have registered their
	// currencies (an ERC-20 token's decimals).
	if err := s.checkPrices(); err != nil {
		return nil, err
	}
	return s, nil
}

// Name is the site's name.
func (s *Site) Name() string { return s.cfg.Site }

// Env is what the site gives the provider name at setup.
func (s *Site) Env(name string) provider.Env {
	return provider.Env{
		Site:     s.cfg.Site,
		BasePath: s.cfg.BasePath,
		Secret:   s.cfg.Secret,
		Report: func(ctx context.Context, cause order.CauseKind, f provider.Finding) (*order.Order, error) {
			f.From = name
			o, _, err := s.Apply(ctx, cause, f)
			return o, err
		},
		Lookup:  s.pay.Lookup,
		Locale:  s.cfg.Pages.Locale,
		Webhook: s.routes,
		Now:     s.now,
		Render: func(w http.ResponseWriter, r *http.Request, status int, page string, p templates.Page) {
			p.Name = page
			if page == "error" {
				p = s.errorPage(status, nil, p)
			}
			s.render(w, r, status, p)
		},
		CSRFToken:  s.csrfToken,
		VerifyCSRF: s.verifyCSRF,
		Data:       siteData{s.cfg.Store, s.cfg.Site + "/"},
		SharedData: s.cfg.Store,
		Exclusive: func(ctx context.Context, name string, ttl time.Duration, fn func() error) error {
			return store.Exclusive(ctx, s.cfg.Store, name, ttl, fn)
		},
		Currencies: s.currencies,
		Logger:     s.log,
		Intake:     s.intakeFor,
		Order: func(ctx context.Context, id string) (*order.Order, error) {
			return s.cfg.Store.Get(ctx, order.Key{Site: s.cfg.Site, ID: id})
		},
		API: func(r *http.Request) (bool, bool) {
			return s.cfg.Intake.API, s.cfg.Intake.API && s.apiAllowed(r)
		},
	}
}

// intakeFor takes an order that came in through a provider's own routes
// (provider.Env.Intake): stored as the server API would, fixed to the
// provider, and started with it.
func (s *Site) intakeFor(ctx context.Context, in order.Intake, name string) (*order.Order, provider.Start, error) {
	in.Provider = name
	o, _, err := s.Receive(ctx, in, name)
	if err != nil {
		return nil, provider.Start{}, err
	}
	st, o, err := s.start(ctx, nil, o, name)
	return o, st, err
}

// siteData is the store's provider data under the site's own prefix, so
// that providers of two sites sharing a store never see each other's keys.
type siteData struct {
	st     store.ProviderData
	prefix string
}

func (d siteData) GetData(ctx context.Context, key string) ([]byte, error) {
	return d.st.GetData(ctx, d.prefix+key)
}

func (d siteData) PutData(ctx context.Context, key string, val []byte) error {
	return d.st.PutData(ctx, d.prefix+key, val)
}

func (d siteData) PutDataIfAbsent(ctx context.Context, key string, val []byte) ([]byte, error) {
	return d.st.PutDataIfAbsent(ctx, d.prefix+key, val)
}

func (d siteData) ScanData(ctx context.Context, prefix string, fn func(key string, val []byte) error) error {
	return d.st.ScanData(ctx, d.prefix+prefix, func(k string, v []byte) error { return fn(k[len(d.prefix):], v) })
}

func (d siteData) NextSeq(ctx context.Context, key string) (uint64, error) {
	return d.st.NextSeq(ctx, d.prefix+key)
}

// Secret is the site's secret (for callbacks).
func (s *Site) Secret() sign.Secret { return s.cfg.Secret }

// Runners are the site's providers with background work.
func (s *Site) Runners() []provider.Runner {
	var rs []provider.Runner
	for _, p := range s.cfg.Providers {
		if r, ok := p.(provider.Runner); ok {
			rs = append(rs, r)
		}
	}
	return rs
}

// Provider returns a configured provider by name.
func (s *Site) Provider(name string) (provider.Provider, bool) {
	p, ok := s.providers[name]
	return p, ok
}

// Next is the rest of the server's handler chain (in Caddy, the next
// middleware). An error it returns has not been written to the client:
// ServeHTTP writes nothing for it either and hands it back, so that the
// server answers it as it would without checkout (Caddy's handle_errors).
type Next func(w http.ResponseWriter, r *http.Request) error

// NextHandler is an http.Handler as a Next that never fails.
func NextHandler(h http.Handler) Next {
	return func(w http.ResponseWriter, r *http.Request) error {
		h.ServeHTTP(w, r)
		return nil
	}
}

// ServeHTTP handles r when it is one of the site's routes or the shop's
// success page with a return token; otherwise it strips client-sent
// X-Checkout-* headers, passes r to next and watches the response for
// X-Checkout-* order headers. It returns next's error, untouched.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request, next Next) error {
	stripCheckoutHeaders(r)
	if rest, ok := s.underBase(r.URL.Path); ok {
		s.serveRoute(w, r, rest)
		return nil
	}
	if len(s.prices) > 0 {
		pr, back, err := s.priceOf(r.URL)
		if err != nil {
			s.log.Info("request for a path that reads as more than one priced path", zap.String("site", s.cfg.Site))
			s.refusePriced(w, r, http.StatusBadRequest, "error.generic", "this path reads as more than one priced path; ask for it as it is named")
			return nil
		}
		if pr != nil {
			return s.servePriced(w, r, pr, back, next)
		}
		dropReceiptCookies(r)
	}
	if r.URL.RawQuery != "" && strings.Contains(r.URL.RawQuery, returnTokenParam+"=") {
		return s.serveSuccess(w, r, next)
	}
	if s.cfg.Intake.Headers {
		return s.proxyWatchingHeaders(w, r, next)
	}
	return next(w, r)
}

func (s *Site) underBase(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, s.cfg.BasePath)
	if !ok || (rest != "" && rest[0] != '/') {
		return "", false
	}
	return rest, true
}

// publicURL is how the customer and providers reach us.
func (s *Site) publicURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	scheme := "http"
	if r != nil && r.TLS != nil {
		scheme = "https"
	}
	host := "localhost"
	if r != nil && r.Host != "" {
		host = r.Host
	}
	return scheme + "://" + host
}

func (s *Site) url(r *http.Request, path string) string {
	return s.publicURL(r) + s.cfg.BasePath + path
}

// redactURL drops the query and user info of a URL for messages. What is
// not a URL with a host is shown as written but for what could be
// credentials (before an @) and tokens (a query); when a "?" or "#" comes
// before the last "@", which of them is a password and which a query
// cannot be told, and nothing is shown.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Opaque == "" && u.Host != "" {
		u.User, u.RawQuery, u.Fragment, u.ForceQuery = nil, "", "", false
		return u.String()
	}
	at := strings.LastIndexByte(raw, '@')
	if q := strings.IndexAny(raw, "?#"); q >= 0 {
		if at > q {
			return "(not shown: it may hold credentials)"
		}
		raw = raw[:q]
	}
	if at >= 0 {
		raw = "…@" + raw[at+1:]
	}
	return raw
}
