package caddymodule_test

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddy-checkout/checkout/sign"
)

// validateStorage validates a config whose global checkout option holds
// the storage line given.
func validateStorage(t *testing.T, storage string) error {
	t.Helper()
	dir := t.TempDir()
	input := "{\n\tstorage file_system " + quoteCaddyfile(filepath.Join(dir, "caddy")) + "\n" +
		"\tcheckout {\n\t\t" + storage + "\n\t}\n}\n\n" +
		"http://shop.example.com {\n\tcheckout {\n\t\tsecret " + sign.NewSecret() + "\n\t\tsandbox\n\t}\n" +
		"\treverse_proxy 127.0.0.1:8080\n}\n"
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
	if err != nil {
		return err
	}
	var cfg caddy.Config
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}

// TestValidatePostgresStorage: validating a config with storage postgres
// opens no connection (a server that would hang every connection does not
// slow it down), reads the connection string from the environment, and
// never shows its password in an error.
func TestValidatePostgresStorage(t *testing.T) {
	// A listener that accepts and never answers: a connection attempt
	// would hang until the connect timeout.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			defer c.Close()
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	t.Setenv("CHECKOUT_TEST_DSN", "postgres://checkout:hunter2-secret@127.0.0.1:"+port+"/shop?sslmode=disable")

	start := time.Now()
	if err := validateStorage(t, "storage postgres {env.CHECKOUT_TEST_DSN}"); err != nil {
		t.Fatalf("a valid postgres config was refused: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("validate took %s", d)
	}
	select {
	case <-accepted:
		t.Fatal("validate connected to the database")
	default:
	}

	for _, c := range []struct {
		name, storage, env string
		want               []string
	}{
		{"unset variable", "storage postgres {env.CHECKOUT_UNSET_DSN}", "", []string{"{env.CHECKOUT_UNSET_DSN}", "empty", "is the variable set"}},
		{"malformed", "storage postgres {env.CHECKOUT_TEST_DSN}", "postgres://checkout:hunter2-secret@127.0.0.1:notaport/shop", []string{"storage postgres", "invalid PostgreSQL connection string"}},
		{"bad keyword form", "storage postgres {env.CHECKOUT_TEST_DSN}", "host=127.0.0.1 password=hunter2-secret sslmode=bogus", []string{"storage postgres", "invalid"}},
		{"short leader lease", "storage postgres {env.CHECKOUT_TEST_DSN} {\n\t\t\tleader_lease 100ms\n\t\t}", "postgres://checkout:hunter2-secret@127.0.0.1/shop", []string{"leader_lease", "at least 1s"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.env != "" {
				t.Setenv("CHECKOUT_TEST_DSN", c.env)
			}
			err := validateStorage(t, c.storage)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

// TestSiteNamesThatCannotKeyOrdersAreRefused: a site name is part of
// every order's key in every store and of the notices instances send
// each other.
func TestSiteNamesThatCannotKeyOrdersAreRefused(t *testing.T) {
	for _, name := range []string{`"two words"`, `"a/b"`, strings.Repeat("s", 201)} {
		err := validateCheckout(t, t.TempDir(), "site "+name, "secret "+sign.NewSecret(), "sandbox")
		if err == nil || !strings.Contains(err.Error(), "site") {
			t.Errorf("site %s: %v, want refused", name, err)
		}
	}
	if err := validateCheckout(t, t.TempDir(), "site shop-1.example", "secret "+sign.NewSecret(), "sandbox"); err != nil {
		t.Fatalf("a good site name was refused: %v", err)
	}
}
