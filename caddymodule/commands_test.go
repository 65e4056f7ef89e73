package caddymodule

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"time"

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
