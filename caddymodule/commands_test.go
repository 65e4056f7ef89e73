package caddymodule

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-checkout/checkout/sign"
)

func TestSecretAndSignLinkCommands(t *testing.T) {
	var out bytes.Buffer
	c := secretCommand()
	c.SetOut(&out)
	c.SetArgs(nil)
	if err := c.Execute(); err != nil {
		t.Fatal(err)
	}
	secretText := strings.TrimSpace(out.String())
	secret, err := sign.ParseSecret(secretText)
	if err != nil {
		t.Fatalf("secret command printed an unusable secret: %v", err)
	}

	out.Reset()
	c = signLinkCommand()
	c.SetOut(&out)
	c.SetArgs([]string{"--base", "https://shop.example/_checkout", "--secret", secretText,
		"--order", "42", "--amount", "9.99", "--currency", "USD", "--description", "E-book & more", "--valid", "1h"})
	if err := c.Execute(); err != nil {
		t.Fatal(err)
	}
	link, err := url.Parse(strings.TrimSpace(out.String()))
	if err != nil || link.Host != "shop.example" || link.Path != "/_checkout/start" {
		t.Fatalf("link %q", out.String())
	}
	q := link.Query()
	if err := secret.VerifyLink(q, time.Now()); err != nil {
		t.Fatalf("printed link does not verify: %v", err)
	}
	if q.Get("description") != "E-book & more" || q.Get("order") != "42" {
		t.Fatalf("link query %v", q)
	}
	if err := secret.VerifyLink(q, time.Now().Add(2*time.Hour)); err == nil {
		t.Fatal("link valid past --valid")
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--secret", "nope", "--order", "1", "--amount", "1", "--currency", "USD"}, "secret"},
		{[]string{"--order", "1", "--amount", "1", "--currency", "USD"}, "no secret given"},
		{[]string{"--secret", secretText, "--order", "1", "--amount", "1.234", "--currency", "USD"}, "USD has 2 decimal places"},
		{[]string{"--secret", secretText, "--order", "1", "--amount", "0", "--currency", "USD"}, "more than zero"},
		{[]string{"--secret", secretText, "--order", "1", "--amount", "12.5", "--currency", "JPY"}, "JPY has 0 decimal places"},
		{[]string{"--secret", secretText, "--order", "a b", "--amount", "1", "--currency", "USD"}, "--order"},
		{[]string{"--secret", secretText, "--order", "1", "--amount", "abc", "--currency", "XTK"}, "--amount"},
		{[]string{"--secret", secretText, "--order", "1", "--amount", "0.00", "--currency", "XTK"}, "more than zero"},
		{[]string{"--secret", secretText, "--order", "1", "--amount", "1e3", "--currency", "XTK"}, "--amount"},
		{[]string{"--secret", secretText, "--order", "1", "--amount", "1", "--currency", "X T"}, "--currency"},
	} {
		t.Setenv("CHECKOUT_SECRET", "")
		out.Reset()
		c = signLinkCommand()
		c.SetOut(&out)
		c.SetErr(&out)
		c.SetArgs(tc.args)
		err := c.Execute()
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "nope") || strings.Contains(err.Error(), secretText[6:]) {
			t.Errorf("sign-link %v: %v, want an error saying %q and no secret", tc.args, err, tc.want)
		}
	}
	// A token this build does not know is left to the site to check.
	out.Reset()
	c = signLinkCommand()
	c.SetOut(&out)
	c.SetArgs([]string{"--secret", secretText, "--order", "1", "--amount", "1.5", "--currency", "XTK"})
	if err := c.Execute(); err != nil || !strings.Contains(out.String(), "/start?") {
		t.Fatalf("sign-link for an unknown token: %v %q", err, out.String())
	}
}

// TestSecretRotateCommand: --rotate prints the two Caddyfile lines of a
// rotation, the new secret first and the current one as previous_secret
// until the overlap; without a usable current secret it says what is
// missing and never shows the value it was given.
func TestSecretRotateCommand(t *testing.T) {
	current := sign.NewSecret()
	var out, errOut bytes.Buffer
	c := secretCommand()
	c.SetOut(&out)
	c.SetErr(&errOut)
	c.SetArgs([]string{"--rotate", "--secret", current, "--overlap", "48h"})
	before := time.Now()
	if err := c.Execute(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want two lines on stdout, got %q", out.String())
	}
	next, ok := strings.CutPrefix(lines[0], "secret ")
	if !ok {
		t.Fatalf("first line %q is not a secret line", lines[0])
	}
	fresh, err := sign.ParseSecret(next)
	if err != nil || next == current {
		t.Fatalf("new secret %q: %v (the same as the current: %v)", next, err, next == current)
	}
	var prev, until string
	if n, _ := fmt.Sscanf(lines[1], "previous_secret %s until %s", &prev, &until); n != 2 || prev != current {
		t.Fatalf("second line %q: want previous_secret %s until <time>", lines[1], current)
	}
	end, err := time.Parse(time.RFC3339, until)
	if err != nil {
		t.Fatal(err)
	}
	if d := end.Sub(before); d < 48*time.Hour-time.Second || d > 48*time.Hour+time.Minute {
		t.Errorf("until %s is %s from now, want 48h", until, d)
	}
	if !strings.Contains(errOut.String(), "reload") {
		t.Errorf("stderr does not say what to do: %q", errOut.String())
	}

	// The printed lines are what the Caddyfile parser and the handler take.
	h := &Handler{}
	d := caddyfile.NewTestDispenser("checkout {\n" + out.String() + "sandbox\n}")
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatalf("the printed lines do not parse: %v", err)
	}
	got, err := h.withPrevious(fresh)
	if err != nil || !got.Rotating(time.Now()) || got.Rotating(end.Add(time.Second)) {
		t.Fatalf("the printed lines do not make a rotation that ends at %s: %v", until, err)
	}

	// From the environment.
	out.Reset()
	t.Setenv("CHECKOUT_SECRET", current)
	c = secretCommand()
	c.SetOut(&out)
	c.SetErr(&errOut)
	c.SetArgs([]string{"--rotate"})
	if err := c.Execute(); err != nil || !strings.Contains(out.String(), "previous_secret "+current+" until ") {
		t.Fatalf("--rotate with $CHECKOUT_SECRET: %v %q", err, out.String())
	}

	t.Setenv("CHECKOUT_SECRET", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--rotate"}, "no current secret given"},
		{[]string{"--rotate", "--secret", "whsec_!!Secretvalue"}, "current secret"},
		{[]string{"--rotate", "--secret", current, "--overlap", "10s"}, "--overlap"},
	} {
		out.Reset()
		c = secretCommand()
		c.SetOut(&out)
		c.SetErr(&errOut)
		c.SilenceUsage, c.SilenceErrors = true, true
		c.SetArgs(tc.args)
		err := c.Execute()
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "Secretvalue") || strings.Contains(err.Error(), current[6:]) {
			t.Errorf("secret %v: %v, want an error saying %q and no secret", tc.args, err, tc.want)
		}
		if out.Len() != 0 {
			t.Errorf("secret %v printed %q on a failure", tc.args, out.String())
		}
	}
}
