// Registration of the Voucher-Safe provider as the Caddy module
// checkout.providers.vouchersafe, and its Caddyfile block.
package vouchersafe

import (
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-checkout/checkout/internal/caddyconf"
	"github.com/caddy-checkout/checkout/internal/secrets"
)

func init() {
	caddy.RegisterModule(VoucherSafe{})
}

// CaddyModule returns the Caddy module information.
func (VoucherSafe) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "checkout.providers.vouchersafe",
		New: func() caddy.Module { return new(VoucherSafe) },
	}
}

// Provision resolves the placeholders of the bot's login; Setup, called
// next by the checkout handler, checks the settings. pickup_command is
// left as written: its {key} and {value} are the provider's own.
func (v *VoucherSafe) Provision(caddy.Context) error {
	var err error
	if v.jidText, err = secrets.Resolve("vouchersafe xmpp jid", v.JID); err != nil {
		return err
	}
	if v.password, err = secrets.Resolve("vouchersafe xmpp password", v.Password); err != nil {
		return err
	}
	repl := caddy.NewReplacer()
	v.Server = repl.ReplaceKnown(v.Server, "")
	v.XMPPCA = repl.ReplaceKnown(v.XMPPCA, "")
	v.MerchantVS = repl.ReplaceKnown(v.MerchantVS, "")
	return nil
}

// UnmarshalCaddyfile reads the vouchersafe block of a checkout handler:
//
//	vouchersafe {
//		xmpp           {env.VS_JID} {env.VS_PASSWORD} [ofs.vm.to:5233]  # the web bot's login; server: the JID's domain, port 5222
//		xmpp_ca        /etc/caddy/xmpp-ca.pem                          # optional: a CA to trust for the server's certificate
//		merchant_vs    mymerchantsafe-1234@vouchi.com                  # the safe that receives payments
//		issuers        VI-USV VI-EUV                                   # accepted issuers
//		secret_length  12                                              # 8..24 hex digits (default 12)
//		pickup_command java -jar /var/www/websci/java/voucher-cli.jar -x ofs.vm.to -p 5233 -w -b {key}:{value}
//		pickup_timeout 90s
//	}
func (v *VoucherSafe) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "vouchersafe"
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		setting := d.Val()
		switch setting {
		case "xmpp":
			args := d.RemainingArgs()
			if len(args) < 2 || len(args) > 3 {
				return d.Errf("vouchersafe xmpp: want the bot's JID, its password and optionally the server host:port")
			}
			v.JID, v.Password = args[0], args[1]
			if len(args) == 3 {
				v.Server = args[2]
			}
			if !strings.Contains(v.JID, "{") {
				if _, err := ParseBotJID(v.JID); err != nil {
					return d.Errf("vouchersafe %v", err)
				}
			}
		case "xmpp_ca", "merchant_vs":
			val, err := caddyconf.OneValue(d, "vouchersafe")
			if err != nil {
				return err
			}
			if setting == "xmpp_ca" {
				v.XMPPCA = val
			} else {
				v.MerchantVS = val
			}
		case "issuers":
			v.Issuers = d.RemainingArgs()
			if len(v.Issuers) == 0 {
				return d.Errf("vouchersafe issuers: name at least one accepted issuer, such as VI-USV")
			}
		case "secret_length":
			val, err := caddyconf.OneValue(d, "vouchersafe")
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(val)
			if err != nil || n < MinSecretLength || n > MaxSecretLength {
				return d.Errf("vouchersafe secret_length %q: want %d to %d hex digits", val, MinSecretLength, MaxSecretLength)
			}
			v.SecretLength = n
		case "pickup_command":
			v.PickupCommand = d.RemainingArgs()
			if err := CheckCommand(v.PickupCommand); err != nil {
				return d.Errf("vouchersafe %v", err)
			}
		case "pickup_timeout":
			val, err := caddyconf.OneValue(d, "vouchersafe")
			if err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(val)
			if err != nil || dur <= 0 {
				return d.Errf("vouchersafe pickup_timeout %q: want a duration such as 90s", val)
			}
			v.PickupTimeout = caddy.Duration(dur)
		default:
			return d.Errf("vouchersafe: unknown setting %q (want xmpp, xmpp_ca, merchant_vs, issuers, secret_length, pickup_command, pickup_timeout)", setting)
		}
	}
	if v.JID == "" || v.MerchantVS == "" || len(v.Issuers) == 0 || len(v.PickupCommand) == 0 {
		return d.Errf("vouchersafe: xmpp, merchant_vs, issuers and pickup_command are required")
	}
	return nil
}

var (
	_ caddy.Provisioner     = (*VoucherSafe)(nil)
	_ caddyfile.Unmarshaler = (*VoucherSafe)(nil)
)
