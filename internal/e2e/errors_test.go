package e2e

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-checkout/checkout/sign"
)

// TestUpstreamErrorsKeepTheirStatus: with the shop down, a request through
// checkout's default header intake gets the status Caddy gives it without
// checkout (502), and a site's handle_errors page is sent with its status,
// never as an empty 200.
func TestUpstreamErrorsKeepTheirStatus(t *testing.T) {
	base := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	errBase := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	down := fmt.Sprintf("127.0.0.1:%d", freePort(t)) // nothing listens here
	storage := filepath.Join(t.TempDir(), "checkout.db")
	secret := sign.NewSecret()
	cf := caddyfile(storage, admin, base, secret, "http://"+down+"/hook", down) + fmt.Sprintf(`
http://%s {
	checkout {
		site errors
		secret %s
		sandbox
	}
	reverse_proxy %s
	handle_errors {
		respond "shop unavailable ({err.status_code})" {err.status_code}
	}
}
`, errBase, secret, down)
	loadCaddy(t, cf)
	t.Cleanup(func() { _ = caddy.Stop() })

	for _, tc := range []struct {
		name, url string
		status    int
		body      string
	}{
		{"no handle_errors", "http://" + base + "/any/page", http.StatusBadGateway, ""},
		{"handle_errors", "http://" + errBase + "/any/page", http.StatusBadGateway, "shop unavailable (502)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := http.Get(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode != tc.status {
				t.Errorf("GET %s = %d %q, want %d", tc.url, r.StatusCode, b, tc.status)
			}
			if tc.body != "" && !strings.Contains(string(b), tc.body) {
				t.Errorf("body = %q, want the handle_errors page %q", b, tc.body)
			}
		})
	}
}
