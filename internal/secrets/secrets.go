// Package secrets resolves secret settings written as Caddy placeholders
// ({env.X}, {file./path}) when a config is provisioned. Errors name the
// setting, never its value.
package secrets

import (
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// Resolve fills the placeholders of a required secret setting.
func Resolve(setting, raw string) (string, error) {
	if raw == "" {
		return "", fmt.Errorf("%s: required", setting)
	}
	repl := caddy.NewReplacer()
	v, err := repl.ReplaceOrErr(raw, true, true)
	if err != nil || v == "" {
		return "", fmt.Errorf("%s: its placeholder did not resolve to a value (is the environment variable or file set?)", setting)
	}
	return strings.TrimSpace(v), nil
}
