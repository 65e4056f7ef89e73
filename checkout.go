// Package checkout is caddy-checkout, a Caddy v2 plugin that puts
// payments in front of an unmodified web shop. Importing it (as xcaddy's
// --with does) registers the Caddy modules, the Caddyfile syntax, the
// `caddy checkout` commands and every bundled payment provider.
package checkout

import (
	_ "github.com/caddy-checkout/checkout/caddymodule"
	_ "github.com/caddy-checkout/checkout/providers/cyclos"
	_ "github.com/caddy-checkout/checkout/providers/erc20"
	_ "github.com/caddy-checkout/checkout/providers/komoju"
	_ "github.com/caddy-checkout/checkout/providers/sandbox"
	_ "github.com/caddy-checkout/checkout/providers/stripe"
	_ "github.com/caddy-checkout/checkout/providers/vouchersafe"
)
