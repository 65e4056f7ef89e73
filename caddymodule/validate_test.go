// Tests of what `caddy validate` catches beyond the Caddyfile parser:
// secrets that do not resolve or do not parse, and URLs that would send
// customers or callbacks somewhere they should not go. Each case adapts a
// Caddyfile and runs caddy.Validate, as the command does.
package caddymodule_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddy-checkout/checkout/providers/erc20/hdkey"
	"github.com/caddy-checkout/checkout/sign"
)

// testXprv is BIP-32 test vector 1's master private key: a private key
// where only a public one belongs.
const testXprv = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi"

// validateCheckout adapts a site whose checkout block holds settings
// (one per line) and validates it. The checkout store is dir/c.db and
// Caddy's own storage dir/caddy, never the real Caddy data directory.
func validateCheckout(t *testing.T, dir string, settings ...string) error {
	t.Helper()
	input := "{\n" +
		"\tstorage file_system " + quoteCaddyfile(filepath.Join(dir, "caddy")) + "\n" +
		"\tcheckout {\n" +
		"\t\tstorage bolt " + quoteCaddyfile(filepath.Join(dir, "c.db")) + "\n" +
		"\t}\n" +
		"}\n\n" +
		"http://shop.example.com {\n" +
		"\tcheckout {\n"
	for _, s := range settings {
		input += "\t\t" + s + "\n"
	}
	input += "\t}\n" +
		"\treverse_proxy 127.0.0.1:8080\n" +
		"}\n"

	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
	if err != nil {
		t.Fatalf("adapting:\n%s\n%v", input, err)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}

func quoteCaddyfile(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// secretOfLength is a well-formed whsec_ secret whose key has n bytes.
func secretOfLength(n int) string {
	key := make([]byte, n)
	for i := range key {
		key[i] = byte(0xA5 ^ i)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

func TestValidate(t *testing.T) {
	if _, set := os.LookupEnv("NOT_SET_XYZ"); set {
		t.Skip("NOT_SET_XYZ is set in this environment")
	}
	realSecret := sign.NewSecret()
	oldSecret := sign.NewSecret()
	shortSecret := secretOfLength(16)
	longSecret := secretOfLength(65)
	secretFileDir := t.TempDir()
	secretFile := filepath.Join(secretFileDir, "checkout.secret")
	if err := os.WriteFile(secretFile, []byte(realSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	templatesDir := t.TempDir()

	for _, tc := range []struct {
		name     string
		env      map[string]string
		settings []string
		want     []string // substrings of the error; none means it validates
		secrets  []string // values the error must never show
	}{
		{
			name:     "ok/env-secret",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "sandbox"},
		},
		{
			name:     "ok/file-secret",
			settings: []string{"secret {file." + secretFile + "}", "sandbox"},
		},
		{
			name: "ok/every-setting",
			env:  map[string]string{"CHECKOUT_TEST_SECRET": realSecret, "CHECKOUT_TEST_CALLBACK": "http://127.0.0.1:8080/payments/webhook"},
			settings: []string{
				"site shop",
				"base_path /pay",
				"public_url https://shop.example.com",
				"secret {env.CHECKOUT_TEST_SECRET}",
				"callback {env.CHECKOUT_TEST_CALLBACK}",
				"success_url /orders/{order_id}/thanks",
				"cancel_url /cart",
				"expire 1h",
				"locales ja en",
				"intake headers signed_link api",
				"api_allow 127.0.0.1/32 ::1 10.0.0.0/8",
				"templates_dir " + quoteCaddyfile(templatesDir),
				"sandbox",
			},
		},
		{
			name:     "fail/secret-env-unset",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.NOT_SET_XYZ}", "sandbox"},
			want:     []string{"secret", "did not resolve"},
			secrets:  []string{realSecret, strings.TrimPrefix(realSecret, "whsec_")},
		},
		{
			name: "ok/stripe",
			env:  map[string]string{"CHECKOUT_TEST_SECRET": realSecret, "STRIPE_TEST_KEY": "sk_test_51Hx0Secretvalue", "STRIPE_TEST_WHSEC": "whsec_Secretwebhookvalue"},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}",
				"stripe {", "secret_key {env.STRIPE_TEST_KEY}", "webhook_secret {env.STRIPE_TEST_WHSEC}", "account acct_1ExAmple", "}"},
		},
		{
			name: "fail/stripe-key-unset",
			env:  map[string]string{"CHECKOUT_TEST_SECRET": realSecret, "STRIPE_TEST_WHSEC": "whsec_Secretwebhookvalue"},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}",
				"stripe {", "secret_key {env.NOT_SET_XYZ}", "webhook_secret {env.STRIPE_TEST_WHSEC}", "}"},
			want:    []string{"stripe secret_key", "did not resolve"},
			secrets: []string{"Secretwebhookvalue"},
		},
		{
			name: "fail/stripe-publishable-key",
			env:  map[string]string{"CHECKOUT_TEST_SECRET": realSecret, "STRIPE_TEST_KEY": "pk_test_51Hx0Secretvalue", "STRIPE_TEST_WHSEC": "whsec_Secretwebhookvalue"},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}",
				"stripe {", "secret_key {env.STRIPE_TEST_KEY}", "webhook_secret {env.STRIPE_TEST_WHSEC}", "}"},
			want:    []string{"provider stripe", "secret_key", "sk_live_"},
			secrets: []string{"51Hx0Secretvalue", "Secretwebhookvalue"},
		},
		{
			name: "fail/stripe-webhook-secret-not-whsec",
			env:  map[string]string{"CHECKOUT_TEST_SECRET": realSecret, "STRIPE_TEST_KEY": "sk_test_51Hx0Secretvalue", "STRIPE_TEST_WHSEC": "Secretwebhookvalue"},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}",
				"stripe {", "secret_key {env.STRIPE_TEST_KEY}", "webhook_secret {env.STRIPE_TEST_WHSEC}", "}"},
			want:    []string{"webhook_secret", "whsec_"},
			secrets: []string{"51Hx0Secretvalue", "Secretwebhookvalue"},
		},
		{
			name: "ok/komoju",
			env:  map[string]string{"CHECKOUT_TEST_SECRET": realSecret, "KOMOJU_TEST_KEY": "sk_test_Secretkomojukey", "KOMOJU_TEST_WHSEC": "Secretkomojuhook"},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "referer_policy refuse", "return_referers https://3ds.example-bank.com",
				"komoju {", "secret_key {env.KOMOJU_TEST_KEY}", "webhook_secret {env.KOMOJU_TEST_WHSEC}", "payment_types konbini", "}"},
		},
		{
			name: "ok/prices",
			env:  map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", `price /downloads/ebook.pdf 9.99 USD "The e-book"`,
				`price /reports/* 25 EUR "All reports"`, "price /downloads/audio/* 1200 JPY", "receipt_ttl 7d", "sandbox"},
		},
		{
			name:     "fail/price-overlaps-prefix",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "price /reports/* 25 EUR", "price /reports/q3.pdf 5 EUR", "sandbox"},
			want:     []string{`price "/reports/q3.pdf" overlaps price "/reports/*"`},
		},
		{
			name:     "fail/price-overlaps-nested-prefix",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "price /reports/2026/* 5 EUR", "price /reports/* 25 EUR", "sandbox"},
			want:     []string{`price "/reports/*" overlaps price "/reports/2026/*"`},
		},
		{
			name:     "fail/price-twice",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "price /e.pdf 5 EUR", "price /e.pdf 6 EUR", "sandbox"},
			want:     []string{`price "/e.pdf" overlaps price "/e.pdf"`},
		},
		{
			name:     "fail/price-under-base-path",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "price /_checkout/pay/* 5 EUR", "sandbox"},
			want:     []string{`price "/_checkout/pay/*"`, "base_path /_checkout"},
		},
		{
			name:     "fail/price-not-a-path",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "price downloads/e.pdf 5 EUR", "sandbox"},
			want:     []string{`price "downloads/e.pdf"`, "/downloads/ebook.pdf", "/reports/*"},
		},
		{
			name:     "fail/price-wildcard-inside",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "price /files/*.pdf 5 EUR", "sandbox"},
			want:     []string{`price "/files/*.pdf"`, "only end a prefix"},
		},
		{
			name:     "fail/price-dot-segments",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "price /files/../e.pdf 5 EUR", "sandbox"},
			want:     []string{`price "/files/../e.pdf"`, "plain form (/e.pdf)"},
		},
		{
			name:     "fail/price-percent-encoded",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "price /downloads/my%20book.pdf 5 EUR", "sandbox"},
			want:     []string{`price "/downloads/my%20book.pdf"`, "not percent-encoded", `"/docs/my book.pdf"`},
		},
		{
			name:     "ok/price-with-a-space",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", `price "/downloads/my book.pdf" 5 EUR`, "sandbox"},
		},
		{
			name:     "fail/price-overlaps-in-another-case",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "price /Reports/* 25 EUR", "price /reports/q3.pdf 5 EUR", "sandbox"},
			want:     []string{`price "/reports/q3.pdf" overlaps price "/Reports/*"`, "without regard to case"},
		},
		{
			name:     "fail/price-trailing-slash",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "price /reports/ 5 EUR", "sandbox"},
			want:     []string{`price "/reports/"`, "names a directory", "/reports/*", "/reports/index.html"},
		},
		{
			name:     "fail/price-trailing-dot",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "price /e.pdf. 5 EUR", "sandbox"},
			want:     []string{`price "/e.pdf."`, "plain form (/e.pdf)"},
		},
		{
			name:     "fail/price-whole-site",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "price /* 5 EUR", "sandbox"},
			want:     []string{`price "/*"`, "whole site"},
		},
		{
			name:     "fail/price-decimals",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "price /e.pdf 9.99 JPY", "sandbox"},
			want:     []string{"price /e.pdf", `"9.99"`, "JPY has 0 decimal places"},
		},
		{
			name:     "fail/price-zero",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "price /e.pdf 0.00 USD", "sandbox"},
			want:     []string{"price /e.pdf", "more than zero"},
		},
		{
			name:     "fail/price-unknown-currency",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "price /e.pdf 5 DOGE", "sandbox"},
			want:     []string{"price /e.pdf", `"DOGE"`},
		},
		{
			name: "fail/price-currency-no-provider-takes",
			env:  map[string]string{"CHECKOUT_TEST_SECRET": realSecret, "KOMOJU_TEST_KEY": "sk_test_Secretkomojukey", "KOMOJU_TEST_WHSEC": "Secretkomojuhook"},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "price /e.pdf 1 0xBTC",
				"komoju {", "secret_key {env.KOMOJU_TEST_KEY}", "webhook_secret {env.KOMOJU_TEST_WHSEC}", "}"},
			want:    []string{"price /e.pdf", "no payment provider of this site takes 0xBTC"},
			secrets: []string{"Secretkomojukey", "Secretkomojuhook"},
		},
		{
			name:     "fail/receipt-ttl-short",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "receipt_ttl 10s", "sandbox"},
			want:     []string{"receipt_ttl 10s", "at least 1m"},
		},
		{
			name: "fail/komoju-key-unset",
			env:  map[string]string{"CHECKOUT_TEST_SECRET": realSecret, "KOMOJU_TEST_WHSEC": "Secretkomojuhook"},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}",
				"komoju {", "secret_key {env.NOT_SET_XYZ}", "webhook_secret {env.KOMOJU_TEST_WHSEC}", "}"},
			want:    []string{"komoju secret_key", "did not resolve"},
			secrets: []string{"Secretkomojuhook"},
		},
		{
			name: "fail/komoju-publishable-key",
			env:  map[string]string{"CHECKOUT_TEST_SECRET": realSecret, "KOMOJU_TEST_KEY": "pk_test_Secretkomojukey", "KOMOJU_TEST_WHSEC": "Secretkomojuhook"},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}",
				"komoju {", "secret_key {env.KOMOJU_TEST_KEY}", "webhook_secret {env.KOMOJU_TEST_WHSEC}", "}"},
			want:    []string{"provider komoju", "secret_key", "sk_test_"},
			secrets: []string{"Secretkomojukey", "Secretkomojuhook"},
		},
		{
			name: "fail/komoju-webhook-secret-short",
			env:  map[string]string{"CHECKOUT_TEST_SECRET": realSecret, "KOMOJU_TEST_KEY": "sk_test_Secretkomojukey", "KOMOJU_TEST_WHSEC": "Secret"},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}",
				"komoju {", "secret_key {env.KOMOJU_TEST_KEY}", "webhook_secret {env.KOMOJU_TEST_WHSEC}", "}"},
			want:    []string{"provider komoju", "webhook_secret"},
			secrets: []string{"Secretkomojukey", "\"Secret\""},
		},
		{
			name: "ok/vouchersafe",
			env:  map[string]string{"CHECKOUT_TEST_SECRET": realSecret, "VS_TEST_JID": "webbot@ofs.vm.to", "VS_TEST_PASSWORD": "Secretbotpassword"},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}",
				"vouchersafe {", "xmpp {env.VS_TEST_JID} {env.VS_TEST_PASSWORD} ofs.vm.to:5233", "merchant_vs m-1@vouchi.com", "issuers VI-USV",
				"pickup_command java -jar /opt/voucher-cli.jar -w -b {key}:{value}", "}"},
		},
		{
			name: "fail/vouchersafe-bad-jid-from-env",
			env:  map[string]string{"CHECKOUT_TEST_SECRET": realSecret, "VS_TEST_JID": "not a jid", "VS_TEST_PASSWORD": "Secretbotpassword"},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}",
				"vouchersafe {", "xmpp {env.VS_TEST_JID} {env.VS_TEST_PASSWORD}", "merchant_vs m-1@vouchi.com", "issuers VI-USV",
				"pickup_command cli -b {key}:{value}", "}"},
			want:    []string{"provider vouchersafe", "xmpp", "webbot@example.net"},
			secrets: []string{"Secretbotpassword"},
		},
		{
			name: "fail/vouchersafe-password-unset",
			env:  map[string]string{"CHECKOUT_TEST_SECRET": realSecret, "VS_TEST_JID": "webbot@ofs.vm.to"},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}",
				"vouchersafe {", "xmpp {env.VS_TEST_JID} {env.NOT_SET_XYZ}", "merchant_vs m-1@vouchi.com", "issuers VI-USV",
				"pickup_command cli -b {key}:{value}", "}"},
			want: []string{"vouchersafe xmpp password", "did not resolve"},
		},
		{
			name: "fail/vouchersafe-xmpp-ca-missing",
			env:  map[string]string{"CHECKOUT_TEST_SECRET": realSecret, "VS_TEST_JID": "webbot@ofs.vm.to", "VS_TEST_PASSWORD": "Secretbotpassword"},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}",
				"vouchersafe {", "xmpp {env.VS_TEST_JID} {env.VS_TEST_PASSWORD}", "xmpp_ca /nonexistent/xmpp-ca.pem", "merchant_vs m-1@vouchi.com", "issuers VI-USV",
				"pickup_command cli -b {key}:{value}", "}"},
			want:    []string{"provider vouchersafe", "xmpp_ca", "/nonexistent/xmpp-ca.pem"},
			secrets: []string{"Secretbotpassword"},
		},
		{
			name: "ok/cyclos",
			env:  map[string]string{"CHECKOUT_TEST_SECRET": realSecret, "CYCLOS_TEST_TOKEN": "Secrettokenvalue1234"},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}",
				"cyclos {", "url https://demo.cyclos.org", "access_client_token {env.CYCLOS_TEST_TOKEN}", "custom_value invoice_nr {order_id}", "}"},
		},
		{
			name: "fail/cyclos-token-unset",
			env:  map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}",
				"cyclos {", "url https://demo.cyclos.org", "access_client_token {env.NOT_SET_XYZ}", "}"},
			want: []string{"cyclos access_client_token", "did not resolve"},
		},
		{
			name: "fail/cyclos-url-not-http",
			env:  map[string]string{"CHECKOUT_TEST_SECRET": realSecret, "CYCLOS_TEST_PASSWORD": "Secretpassword"},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}",
				"cyclos {", "url demo.cyclos.org", "username ticket", "password {env.CYCLOS_TEST_PASSWORD}", "}"},
			want:    []string{"provider cyclos", "url", "Cyclos root"},
			secrets: []string{"Secretpassword"},
		},
		{
			name: "ok/erc20",
			env:  map[string]string{"CHECKOUT_TEST_SECRET": realSecret, "CHECKOUT_TEST_XPUB": hdkey.TestXpub},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}",
				"erc20 {", "rpc http://127.0.0.1:8545", "xpub {env.CHECKOUT_TEST_XPUB}", "confirmations 3", "}"},
		},
		{
			name: "fail/erc20-private-key",
			env:  map[string]string{"CHECKOUT_TEST_SECRET": realSecret, "CHECKOUT_TEST_XPUB": testXprv},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}",
				"erc20 {", "rpc http://127.0.0.1:8545", "xpub {env.CHECKOUT_TEST_XPUB}", "}"},
			want:    []string{"provider erc20", "xpub"},
			secrets: []string{testXprv, testXprv[4:20]},
		},
		{
			name: "fail/erc20-bad-token",
			env:  map[string]string{"CHECKOUT_TEST_SECRET": realSecret, "CHECKOUT_TEST_XPUB": hdkey.TestXpub},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}",
				"erc20 {", "rpc http://127.0.0.1:8545", "token 0xnope", "xpub {env.CHECKOUT_TEST_XPUB}", "}"},
			want: []string{"provider erc20", "token", "0x address"},
		},
		{
			name:     "fail/secret-file-missing",
			settings: []string{"secret {file." + filepath.Join(secretFileDir, "missing") + "}", "sandbox"},
			want:     []string{"secret", "did not resolve"},
		},
		{
			name:     "fail/secret-not-whsec",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": "sk_live_Zm9vYmFyYmF6cXV4cXV1eA"},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "sandbox"},
			want:     []string{"secret", "whsec_"},
			secrets:  []string{"sk_live_Zm9vYmFyYmF6cXV4cXV1eA", "Zm9vYmFy"},
		},
		{
			name:     "fail/secret-literal-not-whsec",
			settings: []string{"secret hunter2hunter2", "sandbox"},
			want:     []string{"secret", "whsec_"},
			secrets:  []string{"hunter2"},
		},
		{
			name:     "fail/secret-not-base64",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": "whsec_not*base64*at*all"},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "sandbox"},
			want:     []string{"secret", "base64"},
			secrets:  []string{"not*base64*at*all"},
		},
		{
			name:     "fail/secret-too-short",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": shortSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "sandbox"},
			want:     []string{"secret", "24-64 bytes", "16"},
			secrets:  []string{shortSecret, strings.TrimPrefix(shortSecret, "whsec_")},
		},
		{
			name:     "fail/secret-too-long",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": longSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "sandbox"},
			want:     []string{"secret", "24-64 bytes", "65"},
			secrets:  []string{longSecret, strings.TrimPrefix(longSecret, "whsec_")},
		},
		{
			name:     "fail/public-url-with-path",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"public_url https://shop.example.com/shop", "secret {env.CHECKOUT_TEST_SECRET}", "sandbox"},
			want:     []string{"public_url", "scheme and host only"},
			secrets:  []string{realSecret},
		},
		{
			name:     "fail/public-url-no-scheme",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"public_url shop.example.com", "secret {env.CHECKOUT_TEST_SECRET}", "sandbox"},
			want:     []string{"public_url", "scheme and host only"},
		},
		{
			name:     "fail/success-url-other-host",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"success_url https://evil.example/x", "secret {env.CHECKOUT_TEST_SECRET}", "sandbox"},
			want:     []string{"success_url", "path on this site"},
		},
		{
			name:     "fail/success-url-scheme-relative",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"success_url //evil", "secret {env.CHECKOUT_TEST_SECRET}", "sandbox"},
			want:     []string{"success_url", "single /"},
		},
		{
			name:     "fail/cancel-url-other-host",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"cancel_url https://evil.example/cart", "secret {env.CHECKOUT_TEST_SECRET}", "sandbox"},
			want:     []string{"cancel_url", "path on this site"},
		},
		{
			name:     "fail/callback-not-http",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"callback ftp://x", "secret {env.CHECKOUT_TEST_SECRET}", "sandbox"},
			want:     []string{"callback", "http or https"},
		},
		{
			name:     "fail/callback-without-scheme",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"callback 127.0.0.1:9000/hook", "secret {env.CHECKOUT_TEST_SECRET}", "sandbox"},
			want:     []string{`callback "127.0.0.1:9000/hook"`, "with the scheme", "http://"},
		},
		{
			name:     "fail/callback-without-scheme-with-credentials",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"callback shop:Secretpass@127.0.0.1:9000/hook?token=Secrettoken", "secret {env.CHECKOUT_TEST_SECRET}", "sandbox"},
			want:     []string{`callback "…@127.0.0.1:9000/hook"`, "with the scheme"},
			secrets:  []string{"Secretpass", "Secrettoken"},
		},
		{
			name:     "fail/callback-env-unset",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"callback {env.NOT_SET_XYZ}", "secret {env.CHECKOUT_TEST_SECRET}", "sandbox"},
			want:     []string{"callback", "did not resolve"},
		},
		{
			name:     "fail/expire-under-a-minute",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"expire 30s", "secret {env.CHECKOUT_TEST_SECRET}", "sandbox"},
			want:     []string{"expire", "at least 1m"},
		},
		{
			name:     "fail/locale-unsupported",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"locales en xx", "secret {env.CHECKOUT_TEST_SECRET}", "sandbox"},
			want:     []string{`locale "xx"`, "not supported"},
		},
		{
			name:     "fail/templates-dir-missing",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"templates_dir " + quoteCaddyfile(filepath.Join(templatesDir, "missing")), "secret {env.CHECKOUT_TEST_SECRET}", "sandbox"},
			want:     []string{"templates", "missing"},
		},
		{
			name:     "ok/previous-secret",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret, "CHECKOUT_TEST_OLD": oldSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "previous_secret {env.CHECKOUT_TEST_OLD} until 2026-12-31T00:00:00Z", "sandbox"},
		},
		{
			name:     "ok/previous-secret-file",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": oldSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "previous_secret {file." + secretFile + "}", "sandbox"},
		},
		{
			name:     "fail/previous-secret-same",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "previous_secret {file." + secretFile + "} until 2026-12-31T00:00:00Z", "sandbox"},
			want:     []string{"previous_secret is the same as secret", "caddy checkout secret --rotate"},
			secrets:  []string{realSecret, strings.TrimPrefix(realSecret, "whsec_")},
		},
		{
			name:     "fail/previous-secret-malformed",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret, "CHECKOUT_TEST_OLD": "whsec_!!Secretoldvalue"},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "previous_secret {env.CHECKOUT_TEST_OLD}", "sandbox"},
			want:     []string{"previous_secret"},
			secrets:  []string{"Secretoldvalue", strings.TrimPrefix(realSecret, "whsec_")},
		},
		{
			name:     "fail/previous-secret-unset",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "previous_secret {env.NOT_SET_XYZ}", "sandbox"},
			want:     []string{"previous_secret", "did not resolve"},
			secrets:  []string{strings.TrimPrefix(realSecret, "whsec_")},
		},
		{
			name:     "fail/provider-twice",
			env:      map[string]string{"CHECKOUT_TEST_SECRET": realSecret},
			settings: []string{"secret {env.CHECKOUT_TEST_SECRET}", "sandbox", "sandbox"},
			want:     []string{"provider sandbox", "twice"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			dir := t.TempDir()
			err := validateCheckout(t, dir, tc.settings...)

			// The store opens on first use, not at provision: validating
			// must not create (or lock) the bbolt file, even for a config
			// that is fine.
			if _, statErr := os.Stat(filepath.Join(dir, "c.db")); !os.IsNotExist(statErr) {
				t.Errorf("validate created the store file (stat: %v)", statErr)
			}

			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("validated without error")
			}
			t.Log(err)
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error does not contain %q:\n%v", s, err)
				}
			}
			for _, s := range tc.secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error shows a secret value: %v", err)
				}
			}
		})
	}
}

// validateSites validates two site blocks, each with its own checkout
// settings.
func validateSites(t *testing.T, a, b []string) error {
	t.Helper()
	dir := t.TempDir()
	input := "{\n\tstorage file_system " + quoteCaddyfile(filepath.Join(dir, "caddy")) +
		"\n\tcheckout {\n\t\tstorage bolt " + quoteCaddyfile(filepath.Join(dir, "c.db")) + "\n\t}\n}\n"
	for i, settings := range [][]string{a, b} {
		input += "\nhttp://shop" + string(rune('a'+i)) + ".example.com {\n\tcheckout {\n"
		for _, s := range settings {
			input += "\t\t" + s + "\n"
		}
		input += "\t}\n\treverse_proxy 127.0.0.1:8080\n}\n"
	}
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
	if err != nil {
		t.Fatalf("adapting:\n%s\n%v", input, err)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}

// TestTwoSitesWithOneNameAreRefused: two handlers that both fall back to
// the name "default" with different settings would share orders; validate
// refuses them, naming the name and what to set. The same settings twice
// share a site on purpose.
func TestTwoSitesWithOneNameAreRefused(t *testing.T) {
	s1, s2 := sign.NewSecret(), sign.NewSecret()
	err := validateSites(t, []string{"secret " + s1, "sandbox"}, []string{"secret " + s2, "sandbox"})
	if err == nil || !strings.Contains(err.Error(), `site "default"`) || !strings.Contains(err.Error(), "public_url") {
		t.Fatalf("two different sites named default: err = %v, want a refusal naming the site and what to set", err)
	}
	if strings.Contains(err.Error(), s1) || strings.Contains(err.Error(), s2) {
		t.Fatalf("the refusal shows a secret: %v", err)
	}
	if err := validateSites(t, []string{"secret " + s1, "sandbox"}, []string{"secret " + s1, "sandbox"}); err != nil {
		t.Fatalf("identical settings under one name: %v, want them to share the site", err)
	}
	if err := validateSites(t, []string{"site a", "secret " + s1, "sandbox"}, []string{"site b", "secret " + s2, "sandbox"}); err != nil {
		t.Fatalf("two named sites: %v", err)
	}
}

// TestValidateBrandLogo: the brand's logo must be a readable image file of
// at most 256 KiB; validate says which and why.
func TestValidateBrandLogo(t *testing.T) {
	dir := t.TempDir()
	png := filepath.Join(dir, "logo.png")
	// The smallest valid PNG signature and header is enough for sniffing.
	if err := os.WriteFile(png, []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(dir, "logo.txt")
	if err := os.WriteFile(text, []byte("not an image"), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.png")
	if err := os.WriteFile(big, append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 300<<10)...), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := sign.NewSecret()
	for _, tc := range []struct {
		name, logo string
		want       string
	}{
		{"ok/png", png, ""},
		{"fail/missing", filepath.Join(dir, "nope.png"), "brand logo"},
		{"fail/not-image", text, "not a PNG, JPEG, GIF, WebP or SVG"},
		{"fail/too-big", big, "larger than 256 KiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateCheckout(t, t.TempDir(), "secret "+secret, "brand {", "name Shop", "logo "+quoteCaddyfile(tc.logo), `color "#1f6feb"`, "}", "sandbox")
			if tc.want == "" && err != nil {
				t.Fatalf("validate: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("validate = %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestTokenDecimalsMayChangeBetweenConfigs: each site registers its token
// in a registry of its own, so a config that changes an erc20 block's
// decimals (a reload) validates after one with the old value, in one
// process, and two sites may give one symbol different decimals.
func TestTokenDecimalsMayChangeBetweenConfigs(t *testing.T) {
	t.Setenv("CHECKOUT_TEST_XPUB", hdkey.TestXpub)
	secret := sign.NewSecret()
	for _, decimals := range []string{"8", "18", "8"} {
		if err := validateCheckout(t, t.TempDir(), "secret "+secret,
			"erc20 {", "rpc http://127.0.0.1:8545", "xpub {env.CHECKOUT_TEST_XPUB}", "symbol TSTX", "decimals "+decimals, "}"); err != nil {
			t.Fatalf("decimals %s after another value: %v", decimals, err)
		}
	}
	if err := validateSites(t,
		[]string{"site a", "secret " + secret, "erc20 {", "rpc http://127.0.0.1:8545", "xpub {env.CHECKOUT_TEST_XPUB}", "symbol TSTY", "decimals 8", "}"},
		[]string{"site b", "secret " + secret, "erc20 {", "rpc http://127.0.0.1:8545", "xpub {env.CHECKOUT_TEST_XPUB}", "symbol TSTY", "decimals 18", "}"}); err != nil {
		t.Fatalf("two sites, one symbol, different decimals: %v", err)
	}
}
