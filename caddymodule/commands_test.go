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

	c = signLinkCommand()
	c.SetOut(&out)
	c.SetErr(&out)
	c.SetArgs([]string{"--secret", "nope", "--order", "1", "--amount", "1", "--currency", "USD"})
	if err := c.Execute(); err == nil || strings.Contains(err.Error(), "nope") {
		t.Fatalf("bad secret: %v", err)
	}
}
