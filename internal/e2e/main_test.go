// Package e2e runs caddy-checkout inside real Caddy: in process for the
// flows, and as a child process (this test binary re-executed as Caddy)
// for the crash test.
package e2e

import (
	"os"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-checkout/checkout"
)

// runAsCaddy makes the test binary act as the caddy command, so that the
// crash test can start and kill -9 a real Caddy with this plugin.
const runAsCaddy = "CHECKOUT_E2E_RUN_CADDY"

func TestMain(m *testing.M) {
	if os.Getenv(runAsCaddy) == "1" {
		os.Args = append([]string{"caddy"}, os.Args[1:]...)
		caddycmd.Main()
		return
	}
	os.Exit(m.Run())
}
