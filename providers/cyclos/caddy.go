// Registration of the Cyclos provider as the Caddy module
// checkout.providers.cyclos, and its Caddyfile block.
package cyclos

import (
	"maps"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-checkout/checkout/internal/caddyconf"
	"github.com/caddy-checkout/checkout/internal/secrets"
)

func init() {
	caddy.RegisterModule(Cyclos{})
}

// CaddyModule returns the Caddy module information.
func (Cyclos) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "checkout.providers.cyclos",
		New: func() caddy.Module { return new(Cyclos) },
	}
}

// Provision resolves the placeholders of the settings; Setup, called next
// by the checkout handler, checks them.
func (c *Cyclos) Provision(caddy.Context) error {
	var err error
	if c.AccessClientToken != "" {
		if c.token, err = secrets.Resolve("cyclos access_client_token", c.AccessClientToken); err != nil {
			return err
		}
	}
	if c.Password != "" {
		if c.password, err = secrets.Resolve("cyclos password", c.Password); err != nil {
			return err
		}
	}
	repl := caddy.NewReplacer()
	c.URL = repl.ReplaceKnown(c.URL, "")
	c.Username = repl.ReplaceKnown(c.Username, "")
	c.Channel = repl.ReplaceKnown(c.Channel, "")
	return nil
}

// UnmarshalCaddyfile reads the cyclos block of a checkout handler:
//
//	cyclos {
//		url                 https://app.hudsonvalleycurrent.org
//		access_client_token {env.CYCLOS_TOKEN}     # or: username + password
//		username            shop
//		password            {env.CYCLOS_PASSWORD}
//		channel             webshop                # a Channel header, where the network wants one
//		user                self                   # who owns the tickets
//		payment_type        member.webshop
//		custom_value        invoice_nr {order_id}  # repeatable
//		payer               {email}                # only this user may pay
//	}
func (c *Cyclos) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "cyclos"
	if d.NextArg() {
		return d.ArgErr()
	}
	one := map[string]*string{
		"url": &c.URL, "access_client_token": &c.AccessClientToken, "username": &c.Username,
		"password": &c.Password, "channel": &c.Channel, "user": &c.User,
		"payment_type": &c.PaymentType, "payer": &c.Payer,
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		setting := d.Val()
		if ptr, ok := one[setting]; ok {
			v, err := caddyconf.OneValue(d, "cyclos")
			if err != nil {
				return err
			}
			*ptr = v
			continue
		}
		switch setting {
		case "custom_value":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("cyclos custom_value: want a field name and a template, such as custom_value invoice_nr {order_id}")
			}
			if c.CustomValues == nil {
				c.CustomValues = map[string]string{}
			}
			if _, dup := c.CustomValues[args[0]]; dup {
				return d.Errf("cyclos custom_value %s: given twice", args[0])
			}
			if err := checkTemplate(args[1]); err != nil {
				return d.Errf("cyclos custom_value %s: %v", args[0], err)
			}
			c.CustomValues[args[0]] = args[1]
		default:
			names := slices.Sorted(maps.Keys(one))
			return d.Errf("cyclos: unknown setting %q (want %s or custom_value)", setting, strings.Join(names, ", "))
		}
	}
	switch {
	case c.URL == "":
		return d.Errf("cyclos: url is required (the Cyclos root, such as https://app.hudsonvalleycurrent.org)")
	case c.AccessClientToken == "" && (c.Username == "" || c.Password == ""):
		return d.Errf("cyclos: access_client_token, or username and password, is required")
	case c.AccessClientToken != "" && (c.Username != "" || c.Password != ""):
		return d.Errf("cyclos: use access_client_token or username and password, not both")
	}
	if err := checkTemplate(c.Payer); err != nil {
		return d.Errf("cyclos payer: %v", err)
	}
	return nil
}

var (
	_ caddy.Provisioner     = (*Cyclos)(nil)
	_ caddyfile.Unmarshaler = (*Cyclos)(nil)
)
