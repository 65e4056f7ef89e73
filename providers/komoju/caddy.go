// Registration of the KOMOJU provider as the Caddy module
// checkout.providers.komoju, and its Caddyfile block.
package komoju

import (
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-checkout/checkout/internal/caddyconf"
	"github.com/caddy-checkout/checkout/internal/secrets"
)

func init() {
	caddy.RegisterModule(Komoju{})
}

// CaddyModule returns the Caddy module information.
func (Komoju) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "checkout.providers.komoju",
		New: func() caddy.Module { return new(Komoju) },
	}
}

// Provision resolves the placeholders of the settings; Setup, called next
// by the checkout handler, checks them.
func (k *Komoju) Provision(caddy.Context) error {
	var err error
	if k.secretKey, err = secrets.Resolve("komoju secret_key", k.SecretKey); err != nil {
		return err
	}
	if k.webhookSecret, err = secrets.Resolve("komoju webhook_secret", k.WebhookSecret); err != nil {
		return err
	}
	repl := caddy.NewReplacer()
	k.APIURL = repl.ReplaceKnown(k.APIURL, "")
	k.Locale = repl.ReplaceKnown(k.Locale, "")
	return nil
}

// UnmarshalCaddyfile reads the komoju block of a checkout handler:
//
//	komoju {
//		secret_key     {env.KOMOJU_SECRET_KEY}      # sk_test_... / sk_live_...
//		webhook_secret {env.KOMOJU_WEBHOOK_SECRET}  # the webhook's secret token
//		payment_types  credit_card konbini paypay   # optional; default: what the account offers
//		locale         ja                           # optional; default: the customer's page locale
//		api_url        https://komoju.com           # optional; tests point it at a fake
//	}
func (k *Komoju) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "komoju"
	if d.NextArg() {
		return d.ArgErr()
	}
	one := map[string]*string{
		"secret_key": &k.SecretKey, "webhook_secret": &k.WebhookSecret, "locale": &k.Locale, "api_url": &k.APIURL,
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		setting := d.Val()
		if ptr, ok := one[setting]; ok {
			v, err := caddyconf.OneValue(d, "komoju")
			if err != nil {
				return err
			}
			*ptr = v
			continue
		}
		switch setting {
		case "payment_types":
			k.PaymentTypes = d.RemainingArgs()
			if len(k.PaymentTypes) == 0 {
				return d.Errf("komoju payment_types: want one or more types, such as credit_card konbini")
			}
			for _, t := range k.PaymentTypes {
				if !validType(t) {
					return d.Errf("komoju payment_types: %q is not a KOMOJU payment type", t)
				}
			}
		default:
			return d.Errf("komoju: unknown setting %q (want %s)", setting, strings.Join([]string{"secret_key", "webhook_secret", "payment_types", "locale", "api_url"}, ", "))
		}
	}
	if k.SecretKey == "" || k.WebhookSecret == "" {
		return d.Errf("komoju: secret_key and webhook_secret are required")
	}
	switch k.Locale {
	case "", "ja", "en", "ko":
	default:
		if !strings.Contains(k.Locale, "{") {
			return d.Errf("komoju locale %q: want ja, en or ko", k.Locale)
		}
	}
	return nil
}

var (
	_ caddy.Provisioner     = (*Komoju)(nil)
	_ caddyfile.Unmarshaler = (*Komoju)(nil)
)
