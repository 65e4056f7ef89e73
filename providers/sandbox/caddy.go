// Registration of the sandbox as the Caddy module checkout.providers.sandbox.
package sandbox

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func init() {
	caddy.RegisterModule(Sandbox{})
}

// CaddyModule returns the Caddy module information.
func (Sandbox) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "checkout.providers.sandbox",
		New: func() caddy.Module { return new(Sandbox) },
	}
}

// UnmarshalCaddyfile reads the sandbox line of a checkout block. It has no
// settings:
//
//	sandbox
func (s *Sandbox) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "sandbox"
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(d.Nesting()) {
		return d.Errf("sandbox takes no settings, found %q", d.Val())
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*Sandbox)(nil)
