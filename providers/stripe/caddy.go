// Registration of the Stripe provider as the Caddy module
// checkout.providers.stripe, and its Caddyfile block.
package stripe

import (
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-checkout/checkout/internal/caddyconf"
	"github.com/caddy-checkout/checkout/internal/secrets"
)

func init() {
	caddy.RegisterModule(Stripe{})
}

// CaddyModule returns the Caddy module information.
func (Stripe) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "checkout.providers.stripe",
		New: func() caddy.Module { return new(Stripe) },
	}
}

// Provision resolves the placeholders of the secret settings; Setup,
// called next by the checkout handler, checks them.
func (s *Stripe) Provision(caddy.Context) error {
	var err error
	if s.secretKey, err = secrets.Resolve("stripe secret_key", s.SecretKey); err != nil {
		return err
	}
	if s.webhookSecret, err = secrets.Resolve("stripe webhook_secret", s.WebhookSecret); err != nil {
		return err
	}
	repl := caddy.NewReplacer()
	s.Account = repl.ReplaceKnown(s.Account, "")
	s.APIURL = repl.ReplaceKnown(s.APIURL, "")
	return nil
}

// UnmarshalCaddyfile reads the stripe block of a checkout handler:
//
//	stripe {
//		secret_key     {env.STRIPE_SECRET_KEY}
//		webhook_secret {env.STRIPE_WEBHOOK_SECRET}
//		account        acct_...                  # act for a connected account
//		api_url        http://127.0.0.1:12111    # another API address (tests)
//		payment_method_types card konbini
//	}
func (s *Stripe) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "stripe"
	if d.NextArg() {
		return d.ArgErr()
	}
	one := map[string]*string{
		"secret_key": &s.SecretKey, "webhook_secret": &s.WebhookSecret, "account": &s.Account, "api_url": &s.APIURL,
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		setting := d.Val()
		if ptr, ok := one[setting]; ok {
			v, err := caddyconf.OneValue(d, "stripe")
			if err != nil {
				return err
			}
			*ptr = v
			continue
		}
		switch setting {
		case "payment_method_types":
			s.PaymentMethodTypes = d.RemainingArgs()
			if len(s.PaymentMethodTypes) == 0 {
				return d.Errf("stripe payment_method_types: want one or more types, such as card konbini")
			}
			for _, t := range s.PaymentMethodTypes {
				if !validMethodType(t) {
					return d.Errf("stripe payment_method_types: %q is not a Stripe payment method type", t)
				}
			}
		default:
			return d.Errf("stripe: unknown setting %q (want %s)", setting, strings.Join([]string{"secret_key", "webhook_secret", "account", "api_url", "payment_method_types"}, ", "))
		}
	}
	if s.SecretKey == "" || s.WebhookSecret == "" {
		return d.Errf("stripe: secret_key and webhook_secret are required")
	}
	if s.Account != "" && !strings.Contains(s.Account, "{") && !validID(s.Account, "acct_") {
		return d.Errf("stripe account %q: want a connected account id such as acct_1A2b3C", s.Account)
	}
	return nil
}

var (
	_ caddy.Provisioner     = (*Stripe)(nil)
	_ caddyfile.Unmarshaler = (*Stripe)(nil)
)
