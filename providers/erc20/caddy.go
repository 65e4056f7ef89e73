// Registration of the ERC-20 provider as the Caddy module
// checkout.providers.erc20, and its Caddyfile block.
package erc20

import (
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-checkout/checkout/internal/caddyconf"
	"github.com/caddy-checkout/checkout/internal/secrets"
)

func init() {
	caddy.RegisterModule(ERC20{})
}

// CaddyModule returns the Caddy module information.
func (ERC20) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "checkout.providers.erc20",
		New: func() caddy.Module { return new(ERC20) },
	}
}

// Provision resolves placeholders; Setup, called next by the checkout
// handler, checks the settings.
func (e *ERC20) Provision(caddy.Context) error {
	var err error
	if e.RPC != "" {
		if e.RPC, err = secrets.Resolve("erc20 rpc", e.RPC); err != nil {
			return err
		}
	}
	if e.Xpub != "" {
		if e.xpub, err = secrets.Resolve("erc20 xpub", e.Xpub); err != nil {
			return err
		}
	}
	repl := caddy.NewReplacer()
	e.AddressesFile = repl.ReplaceKnown(e.AddressesFile, "")
	return nil
}

// UnmarshalCaddyfile reads the erc20 block of a checkout handler:
//
//	erc20 {
//		rpc           {env.ETH_RPC_URL}
//		token         0xB6eD7644C69416d67B522e20bC294A9a9B405B31   # default: 0xBitcoin
//		symbol        0xBTC                                        # default
//		decimals      8                                            # default
//		chain_id      1                                            # default
//		xpub          {env.CHECKOUT_XPUB}                          # or: addresses_file <path>
//		confirmations 12                                           # default
//		poll          15s                                          # default
//	}
func (e *ERC20) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "erc20"
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		setting := d.Val()
		v, err := caddyconf.OneValue(d, "erc20")
		if err != nil {
			return err
		}
		switch setting {
		case "rpc":
			e.RPC = v
		case "token":
			e.Token = v
		case "symbol":
			e.Symbol = v
		case "decimals":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 36 {
				return d.Errf("erc20 decimals %q: want a number from 0 to 36", v)
			}
			e.Decimals = &n
		case "chain_id":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || n == 0 {
				return d.Errf("erc20 chain_id %q: want a positive number (1 for Ethereum mainnet)", v)
			}
			e.ChainID = n
		case "xpub":
			e.Xpub = v
		case "addresses_file":
			e.AddressesFile = v
		case "confirmations":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || n == 0 || n > 10000 {
				return d.Errf("erc20 confirmations %q: want a number from 1 to 10000", v)
			}
			e.Confirmations = n
		case "poll":
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur < time.Second {
				return d.Errf("erc20 poll %q: want a duration of at least 1s, such as 15s", v)
			}
			e.Poll = caddy.Duration(dur)
		default:
			return d.Errf("erc20: unknown setting %q (want rpc, token, symbol, decimals, chain_id, xpub, addresses_file, confirmations or poll)", setting)
		}
	}
	switch {
	case e.RPC == "":
		return d.Errf("erc20: rpc is required (the Ethereum JSON-RPC endpoint)")
	case e.Xpub == "" && e.AddressesFile == "":
		return d.Errf("erc20: xpub or addresses_file is required (no private key is ever used)")
	case e.Xpub != "" && e.AddressesFile != "":
		return d.Errf("erc20: use xpub or addresses_file, not both")
	}
	return nil
}

var (
	_ caddy.Provisioner     = (*ERC20)(nil)
	_ caddyfile.Unmarshaler = (*ERC20)(nil)
)
