// The Caddyfile syntax of caddy-checkout: the global checkout option and
// the checkout site directive.
package caddymodule

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("checkout", parseGlobal)
	httpcaddyfile.RegisterHandlerDirective("checkout", parseDirective)
	// After the auth directives, before anything that answers or proxies.
	httpcaddyfile.RegisterDirectiveOrder("checkout", httpcaddyfile.Before, "handle")
}

// parseGlobal reads the global option:
//
//	checkout {
//		storage bolt [<path>]
//		storage postgres <connection string> {   # the block is optional
//			claim_lease  <duration>
//			leader_lease <duration>
//		}
//		reconcile_after <duration>
//		callback_retry_for <duration>
//	}
func parseGlobal(d *caddyfile.Dispenser, _ any) (any, error) {
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "checkout", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile sets up the app from the global checkout option.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "checkout"
	if d.NextArg() {
		return d.Errf("checkout: the global option takes no arguments, found %q", d.Val())
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "storage":
			if !d.NextArg() {
				return d.Errf("storage: want bolt [<path>] or postgres <connection string>")
			}
			st := &Storage{Module: d.Val()}
			switch st.Module {
			case "bolt":
				if d.NextArg() {
					st.Path = d.Val()
				}
				if d.NextArg() {
					return d.Errf("storage: want bolt [<path>], found extra %q", d.Val())
				}
			case "postgres":
				if !d.NextArg() {
					return d.Errf("storage postgres: want a connection string, such as {env.CHECKOUT_DATABASE_URL}")
				}
				st.DSN = d.Val()
				if d.NextArg() {
					return d.Errf("storage postgres: want one connection string; found more (quote it if it has spaces)")
				}
				for d.NextBlock(1) {
					switch d.Val() {
					case "claim_lease":
						dur, err := durationArg(d, "claim_lease")
						if err != nil {
							return err
						}
						st.ClaimLease = dur
					case "leader_lease":
						dur, err := durationArg(d, "leader_lease")
						if err != nil {
							return err
						}
						st.LeaderLease = dur
					default:
						return d.Errf("storage postgres: unknown setting %q (want claim_lease or leader_lease)", d.Val())
					}
				}
			default:
				return d.Errf("storage %q: unknown store (want bolt or postgres)", st.Module)
			}
			a.Storage = st
		case "reconcile_after":
			dur, err := durationArg(d, "reconcile_after")
			if err != nil {
				return err
			}
			a.ReconcileAfter = dur
		case "callback_retry_for":
			dur, err := durationArg(d, "callback_retry_for")
			if err != nil {
				return err
			}
			a.CallbackRetryFor = dur
		default:
			return d.Errf("checkout: unknown global setting %q (want storage, reconcile_after or callback_retry_for)", d.Val())
		}
	}
	return nil
}

func parseDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile reads the checkout site directive:
//
//	checkout [<matcher>] {
//		site          <name>
//		base_path     <path>
//		public_url    <scheme://host>
//		secret        <whsec_...>
//		previous_secret <whsec_...> [until <RFC 3339 time>]   # during a rotation: what it signed still verifies
//		callback      <url>
//		success_url   <path with {order_id}>
//		cancel_url    <path>
//		expire        <duration>
//		locales       <lang>...
//		intake        headers|signed_link|api...
//		api_allow     <cidr>...
//		templates_dir <dir>
//		return_referers <origin>...   # more origins customers return from (a bank's 3-D Secure page)
//		referer_policy log|refuse      # a return from a foreign Referer: logged (default) or refused
//		price <path> <amount> <currency> [<description>]   # repeatable; a path, or a prefix ending in /*
//		receipt_ttl <duration>         # how long a paid price's receipt opens its path (default 30d)
//		retain_personal <duration>     # erase customer data once an order is final this long (default: keep)
//		brand {
//			name  <text>
//			logo  <file>             # PNG, JPEG, GIF, WebP or SVG, at most 256 KiB
//			color "<#hex>"           # quoted (# starts a comment), or without the #
//		}
//		<provider> [{ ... }]     # sandbox, or any checkout.providers module
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "checkout"
	if d.NextArg() {
		return d.Errf("checkout: unexpected %q; the directive takes an optional matcher, then a block", d.Val())
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		name := d.Val()
		if single[name] && seen[name] {
			return d.Errf("%s: set more than once", name)
		}
		seen[name] = true
		switch name {
		case "site", "base_path", "public_url", "secret", "callback", "success_url", "cancel_url", "templates_dir":
			v, err := oneArg(d, name)
			if err != nil {
				return err
			}
			switch name {
			case "site":
				h.Site = v
			case "base_path":
				if !strings.HasPrefix(v, "/") || strings.HasSuffix(v, "/") {
					return d.Errf("base_path %q: must start with / and not end with /", v)
				}
				h.BasePath = v
			case "public_url":
				h.PublicURL = v
			case "secret":
				h.Secret = v
			case "callback":
				h.Callback = v
			case "success_url":
				h.SuccessURL = v
			case "cancel_url":
				h.CancelURL = v
			case "templates_dir":
				h.TemplatesDir = v
			}
		case "expire":
			dur, err := durationArg(d, "expire")
			if err != nil {
				return err
			}
			h.Expire = dur
		case "locales":
			h.Locales = d.RemainingArgs()
			if len(h.Locales) == 0 {
				return d.Errf("locales: name at least one language, such as en ja")
			}
		case "intake":
			h.Intake = d.RemainingArgs()
			if len(h.Intake) == 0 {
				return d.Errf("intake: want one or more of headers, signed_link, api")
			}
			if _, err := parseIntake(h.Intake); err != nil {
				return d.WrapErr(err)
			}
		case "api_allow":
			h.APIAllow = d.RemainingArgs()
			if len(h.APIAllow) == 0 {
				return d.Errf("api_allow: name at least one network, such as 127.0.0.1/32")
			}
			for _, s := range h.APIAllow {
				if _, err := parsePrefix(s); err != nil {
					return d.Errf("api_allow: %v", err)
				}
			}
		case "return_referers":
			h.ReturnReferers = d.RemainingArgs()
			if len(h.ReturnReferers) == 0 {
				return d.Errf("return_referers: name at least one origin, such as https://pay.example-bank.com")
			}
			if _, err := parseOrigins(h.ReturnReferers); err != nil {
				return d.WrapErr(err)
			}
		case "referer_policy":
			v, err := oneArg(d, name)
			if err != nil {
				return err
			}
			if v != "log" && v != "refuse" {
				return d.Errf("referer_policy %q: want log or refuse", v)
			}
			h.RefererPolicy = v
		case "price":
			args := d.RemainingArgs()
			if len(args) < 3 || len(args) > 4 {
				return d.Errf(`price: want <path> <amount> <currency> ["description"], such as price /downloads/ebook.pdf 9.99 USD "The e-book"`)
			}
			p := Price{Path: args[0], Amount: args[1], Currency: args[2]}
			if len(args) == 4 {
				p.Description = args[3]
			}
			if !decimal.MatchString(p.Amount) {
				return d.Errf("price %s: amount %q is not a decimal such as 9.99", p.Path, p.Amount)
			}
			h.Prices = append(h.Prices, p)
		case "previous_secret":
			args := d.RemainingArgs()
			switch {
			case len(args) == 1:
			case len(args) == 3 && args[1] == "until":
				if _, err := time.Parse(time.RFC3339, args[2]); err != nil {
					return d.Errf("previous_secret: until %q is not an RFC 3339 time such as 2026-12-31T00:00:00Z", args[2])
				}
				h.PreviousSecretUntil = args[2]
			default:
				// The arguments are not echoed: one of them is a secret.
				return d.Errf("previous_secret: want <whsec_...> [until <RFC 3339 time>] (%d arguments given)", len(args))
			}
			h.PreviousSecret = args[0]
		case "retain_personal":
			dur, err := durationArg(d, "retain_personal")
			if err != nil {
				return err
			}
			h.RetainPersonal = dur
		case "receipt_ttl":
			dur, err := durationArg(d, "receipt_ttl")
			if err != nil {
				return err
			}
			h.ReceiptTTL = dur
		case "brand":
			if d.NextArg() {
				return d.Errf("brand: takes a block (name, logo, color), not %q", d.Val())
			}
			h.Brand = new(Brand)
			for d.NextBlock(1) {
				sub := d.Val()
				if sub == "color" && !d.NextArg() {
					return d.Errf(`brand color: missing value (a # starts a comment in a Caddyfile: write the colour in quotes, "#1f6feb", or without the #, 1f6feb)`)
				} else if sub == "color" {
					d.Prev()
				}
				v, err := oneArg(d, "brand "+sub)
				if err != nil {
					return err
				}
				switch sub {
				case "name":
					h.Brand.Name = v
				case "logo":
					h.Brand.Logo = v
				case "color":
					if !strings.HasPrefix(v, "#") {
						v = "#" + v
					}
					if !brandColor.MatchString(v) {
						return d.Errf("brand color %q: want a hex colour such as #1f6feb", v)
					}
					h.Brand.Color = v
				default:
					return d.Errf("brand: unknown setting %q (want name, logo or color)", sub)
				}
			}
		default:
			if _, err := caddy.GetModule("checkout.providers." + name); err != nil {
				return d.Errf("unknown checkout setting or payment provider %q", name)
			}
			unm, err := caddyfile.UnmarshalModule(d, "checkout.providers."+name)
			if err != nil {
				// The provider's own errors (such as ArgErr) carry the
				// line but not always the provider's name.
				return fmt.Errorf("provider %s: %w", name, err)
			}
			h.ProvidersRaw = append(h.ProvidersRaw, caddyconfig.JSONModuleObject(unm, "provider", name, nil))
		}
	}
	if h.Secret == "" {
		return d.Err("checkout: secret is required (make one with: caddy checkout secret)")
	}
	if len(h.ProvidersRaw) == 0 {
		return d.Err("checkout: no payment provider configured; add one, such as sandbox")
	}
	return nil
}

// decimal is the shape of a price's amount; the currency's decimal places
// are checked when the config loads.
var decimal = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// single lists the settings that may appear once.
var single = map[string]bool{"site": true, "base_path": true, "public_url": true, "secret": true,
	"callback": true, "success_url": true, "cancel_url": true, "templates_dir": true, "expire": true,
	"locales": true, "intake": true, "api_allow": true, "brand": true, "return_referers": true, "referer_policy": true,
	"receipt_ttl": true, "previous_secret": true, "retain_personal": true}

func oneArg(d *caddyfile.Dispenser, name string) (string, error) {
	if !d.NextArg() {
		return "", d.Errf("%s: missing value", name)
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.Errf("%s: takes one value", name)
	}
	return v, nil
}

func durationArg(d *caddyfile.Dispenser, name string) (caddy.Duration, error) {
	v, err := oneArg(d, name)
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur <= 0 {
		return 0, d.Errf("%s %q: want a duration such as 30m", name, v)
	}
	return caddy.Duration(dur), nil
}

var (
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*App)(nil)
)
