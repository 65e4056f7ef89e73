// Package caddyconf holds what the providers' Caddyfile blocks read alike.
package caddyconf

import "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

// OneValue reads the one value of the setting the dispenser is on, such
// as `secret_key {env.STRIPE_SECRET_KEY}` in a stripe block. Errors name
// the block and the setting and carry the line.
func OneValue(d *caddyfile.Dispenser, block string) (string, error) {
	setting := d.Val()
	var v string
	if !d.Args(&v) {
		return "", d.Errf("%s %s: want one value", block, setting)
	}
	if d.NextArg() {
		return "", d.Errf("%s %s: want one value, found more", block, setting)
	}
	return v, nil
}
