// Tests of the Caddyfile syntax: golden `caddy adapt` files for every
// setting, the directive's place among Caddy's own, and the errors a
// mistyped Caddyfile gets.
package caddymodule_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/caddy-checkout/checkout/caddymodule"
	_ "github.com/caddy-checkout/checkout/providers/cyclos"
	_ "github.com/caddy-checkout/checkout/providers/erc20"
	_ "github.com/caddy-checkout/checkout/providers/komoju"
	_ "github.com/caddy-checkout/checkout/providers/sandbox"
	_ "github.com/caddy-checkout/checkout/providers/stripe"
	_ "github.com/caddy-checkout/checkout/providers/vouchersafe"
)

const goldenAdaptDir = "testdata/caddyfile_adapt"

// goldenSeparator divides a .caddyfiletest file: the Caddyfile above, the
// JSON `caddy adapt` makes of it below (the format of Caddy's own
// caddytest/integration/caddyfile_adapt).
const goldenSeparator = "----------"

// TestCaddyfileAdapt adapts every testdata/caddyfile_adapt/*.caddyfiletest
// and compares the result with the JSON in the file. Run with
// UPDATE_GOLDEN=1 to rewrite the JSON, then read the diff before
// committing it.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(goldenAdaptDir, "*.caddyfiletest"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no golden files in %s", goldenAdaptDir)
	}
	update := os.Getenv("UPDATE_GOLDEN") == "1"
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".caddyfiletest"), func(t *testing.T) {
			input, want := readGoldenAdapt(t, file)
			got := adaptCaddyfile(t, input)
			if update {
				out := input + goldenSeparator + "\n" + got + "\n"
				if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Errorf("%s: adapted JSON differs from the golden file (UPDATE_GOLDEN=1 rewrites it):\n%s",
					file, firstDifference(want, got))
			}
		})
	}
}

// readGoldenAdapt splits a golden file into its Caddyfile and its JSON.
func readGoldenAdapt(t *testing.T, file string) (caddyfileText, wantJSON string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	in, out, ok := strings.Cut(text, "\n"+goldenSeparator+"\n")
	if !ok {
		t.Fatalf("%s: no %q line between the Caddyfile and the JSON", file, goldenSeparator)
	}
	return strings.TrimSpace(in) + "\n", strings.TrimSpace(out)
}

// adaptCaddyfile does what `caddy adapt --pretty` does. A warning (such as
// an unformatted Caddyfile) fails the test: golden input should be clean.
func adaptCaddyfile(t *testing.T, input string) string {
	t.Helper()
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapting: %v", err)
	}
	for _, w := range warnings {
		t.Errorf("adapter warning: %s", w)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, out, "", "\t"); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// firstDifference shows where two texts part, with a little context.
func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	line := func(lines []string, n int) string {
		if n < len(lines) {
			return lines[n]
		}
		return "(end)"
	}
	var b strings.Builder
	for n := max(0, i-3); n < i; n++ {
		fmt.Fprintf(&b, "  %4d   %s\n", n+1, w[n])
	}
	fmt.Fprintf(&b, "  %4d - %s\n", i+1, line(w, i))
	fmt.Fprintf(&b, "  %4d + %s\n", i+1, line(g, i))
	return b.String()
}

// TestCaddyfileDirectiveOrder pins where checkout runs without a route
// block: after basic_auth and forward_auth (a customer who must log in
// does so before paying), before everything that answers or proxies.
// checkout_order.caddyfiletest lists the directives in reverse.
func TestCaddyfileDirectiveOrder(t *testing.T) {
	input, _ := readGoldenAdapt(t, filepath.Join(goldenAdaptDir, "checkout_order.caddyfiletest"))
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Handle []struct {
							Routes []json.RawMessage `json:"routes"`
						} `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal([]byte(adaptCaddyfile(t, input)), &cfg); err != nil {
		t.Fatal(err)
	}
	srv, ok := cfg.Apps.HTTP.Servers["srv0"]
	if !ok || len(srv.Routes) != 1 || len(srv.Routes[0].Handle) != 1 {
		t.Fatalf("want one site route holding a subroute, got %+v", cfg.Apps.HTTP.Servers)
	}

	// Each directive in the Caddyfile has its own path, so a route's path
	// tells which directive made it; checkout is the one without a path.
	markers := []struct{ label, marker string }{
		{"basic_auth", `"/basic/*"`},
		{"forward_auth", `"/forward/*"`},
		{"handle", `"/handle/*"`},
		{"route", `"/route/*"`},
		{"respond", `"/respond"`},
		{"reverse_proxy", `"/proxy/*"`},
		{"php_fastcgi", `"/php/*"`},
		{"checkout", `"handler":"checkout"`},
	}
	var got []string
	for _, route := range srv.Routes[0].Handle[0].Routes {
		var compact bytes.Buffer
		if err := json.Compact(&compact, route); err != nil {
			t.Fatal(err)
		}
		label := "unknown route " + compact.String()
		for _, m := range markers {
			if strings.Contains(compact.String(), m.marker) {
				label = m.label
				break
			}
		}
		if len(got) == 0 || got[len(got)-1] != label {
			got = append(got, label)
		}
	}
	want := []string{"basic_auth", "forward_auth", "checkout", "handle", "route", "respond", "reverse_proxy", "php_fastcgi"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("adapted route order:\n got  %v\n want %v", got, want)
	}
}

// TestCaddyfileAdaptErrorLine checks that a mistake in a real Caddyfile is
// reported with the file and line, as `caddy adapt` and `caddy validate`
// print it.
func TestCaddyfileAdaptErrorLine(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input string
		want  []string
	}{
		{
			name: "fail/expire-not-duration",
			input: "http://shop.example.com {\n" +
				"\tcheckout {\n" +
				"\t\tsecret {env.CHECKOUT_SECRET}\n" +
				"\t\texpire soon\n" +
				"\t\tsandbox\n" +
				"\t}\n" +
				"}\n",
			want: []string{`expire "soon"`, "Caddyfile:4"},
		},
		{
			name: "fail/storage-unknown",
			input: "{\n" +
				"\tcheckout {\n" +
				"\t\tstorage redis\n" +
				"\t}\n" +
				"}\n\n" +
				"http://shop.example.com {\n" +
				"\trespond \"ok\"\n" +
				"}\n",
			want: []string{`storage "redis"`, "Caddyfile:3"},
		},
		{
			name: "fail/directive-args",
			input: "http://shop.example.com {\n" +
				"\tcheckout /shop/* extra {\n" +
				"\t\tsecret {env.CHECKOUT_SECRET}\n" +
				"\t\tsandbox\n" +
				"\t}\n" +
				"}\n",
			want: []string{"checkout", `"extra"`, "Caddyfile:2"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(tc.input), map[string]any{"filename": "Caddyfile"})
			if err == nil {
				t.Fatal("adapted without error")
			}
			t.Log(err)
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

// TestCaddyfileErrors runs the directive and the global option on bad
// input. Every error names the setting and the line.
func TestCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		global bool     // the global option rather than the site directive
		input  string   // tokens of the directive or option, from its name on
		want   []string // substrings of the error; none means success
	}{
		{
			name:  "ok/minimal",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n sandbox\n}",
		},
		{
			name: "ok/every-setting",
			input: `checkout {
				site shop
				base_path /_checkout
				public_url https://shop.example.com
				secret {env.CHECKOUT_SECRET}
				callback http://127.0.0.1:8080/payments/webhook
				success_url /orders/{order_id}/thanks
				cancel_url /cart
				expire 30m
				locales en ja
				intake headers signed_link api
				api_allow 127.0.0.1/32 ::1 10.1.2.3
				templates_dir /etc/caddy/checkout
				sandbox
			}`,
		},
		{
			name:   "ok/global",
			global: true,
			input:  "checkout {\n storage bolt /var/lib/checkout.db\n reconcile_after 5m\n callback_retry_for 24h\n}",
		},
		{
			name:   "fail/callback-retry-for",
			global: true,
			input:  "checkout {\n callback_retry_for forever\n}",
			want:   []string{`callback_retry_for "forever"`, "duration", "Testfile:2"},
		},
		{
			name:  "fail/unknown-setting",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n colour blue\n sandbox\n}",
			want:  []string{`"colour"`, "unknown checkout setting", "Testfile:3"},
		},
		{
			name:  "fail/unknown-provider",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n nosuchpay {\n  key abc\n }\n}",
			want:  []string{`"nosuchpay"`, "payment provider", "Testfile:3"},
		},
		{
			name:  "fail/brand-color",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n brand {\n  color blue\n }\n sandbox\n}",
			want:  []string{`brand color "#blue"`, "#1f6feb", "Testfile:4"},
		},
		{
			name:  "fail/brand-color-comment",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n brand {\n  color #1f6feb\n }\n sandbox\n}",
			want:  []string{"brand color: missing value", "in quotes"},
		},
		{
			name:  "fail/brand-unknown",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n brand {\n  font serif\n }\n sandbox\n}",
			want:  []string{`brand: unknown setting "font"`, "Testfile:4"},
		},
		{
			name:  "fail/brand-args",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n brand Shop\n sandbox\n}",
			want:  []string{"brand: takes a block", "Testfile:3"},
		},
		{
			name:  "fail/directive-args",
			input: "checkout extra {\n secret {env.CHECKOUT_SECRET}\n sandbox\n}",
			want:  []string{"checkout", `"extra"`, "Testfile:1"},
		},
		{
			name:  "fail/missing-value",
			input: "checkout {\n public_url\n secret {env.CHECKOUT_SECRET}\n sandbox\n}",
			want:  []string{"public_url: missing value", "Testfile:2"},
		},
		{
			name:  "fail/two-values",
			input: "checkout {\n secret {env.A} {env.B}\n sandbox\n}",
			want:  []string{"secret: takes one value", "Testfile:2"},
		},
		{
			name:  "ok/previous-secret",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n previous_secret {env.OLD_SECRET} until 2026-12-31T00:00:00Z\n sandbox\n}",
		},
		{
			name:  "ok/previous-secret-no-until",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n previous_secret {env.OLD_SECRET}\n sandbox\n}",
		},
		{
			name:  "fail/previous-secret-bad-until",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n previous_secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw until next-week\n sandbox\n}",
			want:  []string{"previous_secret", `"next-week"`, "RFC 3339", "Testfile:3"},
		},
		{
			name:  "fail/previous-secret-arity",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n previous_secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw 2026-12-31T00:00:00Z\n sandbox\n}",
			want:  []string{"previous_secret", "until", "2 arguments", "Testfile:3"},
		},
		{
			name:  "fail/previous-secret-twice",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n previous_secret {env.A}\n previous_secret {env.B}\n sandbox\n}",
			want:  []string{"previous_secret", "Testfile:4"},
		},
		{
			name:  "ok/retain-personal",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n retain_personal 90d\n sandbox\n}",
		},
		{
			name:  "fail/retain-personal-not-duration",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n retain_personal forever\n sandbox\n}",
			want:  []string{`retain_personal "forever"`, "duration", "Testfile:3"},
		},
		{
			name:  "fail/expire-not-duration",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n expire soon\n sandbox\n}",
			want:  []string{`expire "soon"`, "duration", "Testfile:3"},
		},
		{
			name:  "fail/expire-not-positive",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n expire 0s\n sandbox\n}",
			want:  []string{`expire "0s"`, "duration", "Testfile:3"},
		},
		{
			name:  "ok/stripe-every-setting",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n stripe {\n  secret_key {env.STRIPE_SECRET_KEY}\n  webhook_secret {env.STRIPE_WEBHOOK_SECRET}\n  account acct_1ExAmple\n  api_url http://127.0.0.1:12111\n  payment_method_types card konbini\n }\n}",
		},
		{
			name:  "ok/komoju-every-setting",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n komoju {\n  secret_key {env.KOMOJU_SECRET_KEY}\n  webhook_secret {env.KOMOJU_WEBHOOK_SECRET}\n  payment_types credit_card konbini\n  locale ja\n  api_url http://127.0.0.1:12112\n }\n}",
		},
		{
			name:  "fail/komoju-unknown-setting",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n komoju {\n  secret_key {env.K}\n  webhook_secret {env.W}\n  publishable_key pk_test_1\n }\n}",
			want:  []string{"komoju", `"publishable_key"`, "secret_key, webhook_secret", "Testfile:6"},
		},
		{
			name:  "fail/komoju-missing-webhook-secret",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n komoju {\n  secret_key {env.K}\n }\n}",
			want:  []string{"komoju", "webhook_secret", "required"},
		},
		{
			name:  "fail/komoju-locale",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n komoju {\n  secret_key {env.K}\n  webhook_secret {env.W}\n  locale fr\n }\n}",
			want:  []string{"komoju locale", `"fr"`, "ja, en or ko"},
		},
		{
			name:  "fail/komoju-payment-type",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n komoju {\n  secret_key {env.K}\n  webhook_secret {env.W}\n  payment_types Konbini!\n }\n}",
			want:  []string{"payment_types", `"Konbini!"`, "Testfile:6"},
		},
		{
			name:  "fail/return-referers-not-origin",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n return_referers https://bank.example/acs\n sandbox\n}",
			want:  []string{"return_referers", "not an origin", "Testfile:3"},
		},
		{
			name:  "fail/referer-policy",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n referer_policy block\n sandbox\n}",
			want:  []string{"referer_policy", `"block"`, "log or refuse", "Testfile:3"},
		},
		{
			name:  "ok/vouchersafe-every-setting",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n vouchersafe {\n  xmpp {env.VS_JID} {env.VS_PASSWORD} ofs.vm.to:5233\n  xmpp_ca /etc/caddy/xmpp-ca.pem\n  merchant_vs m-1@vouchi.com\n  issuers VI-USV VI-EUV\n  secret_length 16\n  pickup_command java -jar /opt/voucher-cli.jar -w -b {key}:{value}\n  pickup_timeout 2m\n }\n}",
		},
		{
			name:  "fail/vouchersafe-bad-jid",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n vouchersafe {\n  xmpp not-a-jid secretpassword\n  merchant_vs m-1@vouchi.com\n  issuers VI-USV\n  pickup_command cli -b {key}:{value}\n }\n}",
			want:  []string{"vouchersafe xmpp", "webbot@example.net", "Testfile:4"},
		},
		{
			name:  "fail/vouchersafe-no-issuers",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n vouchersafe {\n  xmpp bot@ofs.vm.to {env.P}\n  merchant_vs m-1@vouchi.com\n  issuers\n  pickup_command cli -b {key}:{value}\n }\n}",
			want:  []string{"vouchersafe issuers", "at least one", "Testfile:6"},
		},
		{
			name:  "fail/vouchersafe-secret-length",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n vouchersafe {\n  xmpp bot@ofs.vm.to {env.P}\n  merchant_vs m-1@vouchi.com\n  issuers VI-USV\n  secret_length 25\n  pickup_command cli -b {key}:{value}\n }\n}",
			want:  []string{"secret_length", `"25"`, "8 to 24", "Testfile:7"},
		},
		{
			name:  "fail/vouchersafe-pickup-without-value",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n vouchersafe {\n  xmpp bot@ofs.vm.to {env.P}\n  merchant_vs m-1@vouchi.com\n  issuers VI-USV\n  pickup_command cli -w -b orderId:fixed\n }\n}",
			want:  []string{"pickup_command", "{value}", "Testfile:7"},
		},
		{
			name:  "fail/vouchersafe-password-not-shown",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n vouchersafe {\n  xmpp bot@ofs.vm.to Sup3rSecretPass bad:host:port:x\n  merchant_vs m-1@vouchi.com\n  issuers VI-USV\n  pickup_command cli -b {key}:{value}\n  frobnicate yes\n }\n}",
			want:  []string{"vouchersafe", `"frobnicate"`, "Testfile:8"},
		},
		{
			name:  "fail/stripe-unknown-setting",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n stripe {\n  secret_key {env.K}\n  webhook_secret {env.W}\n  publishable_key pk_test_1\n }\n}",
			want:  []string{"stripe", `"publishable_key"`, "secret_key, webhook_secret", "Testfile:6"},
		},
		{
			name:  "fail/stripe-missing-webhook-secret",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n stripe {\n  secret_key {env.K}\n }\n}",
			want:  []string{"stripe", "webhook_secret", "required"},
		},
		{
			name:  "fail/stripe-two-keys",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n stripe {\n  secret_key {env.K} {env.L}\n  webhook_secret {env.W}\n }\n}",
			want:  []string{"stripe secret_key", "one value", "Testfile:4"},
		},
		{
			name:  "fail/stripe-bad-account",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n stripe {\n  secret_key {env.K}\n  webhook_secret {env.W}\n  account cus_123\n }\n}",
			want:  []string{"stripe account", `"cus_123"`, "acct_"},
		},
		{
			name:  "fail/stripe-bad-method-type",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n stripe {\n  secret_key {env.K}\n  webhook_secret {env.W}\n  payment_method_types Card!\n }\n}",
			want:  []string{"payment_method_types", `"Card!"`, "Testfile:6"},
		},
		{
			name:  "ok/cyclos-basic-auth",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n cyclos {\n  url https://demo.cyclos.org\n  username ticket\n  password {env.CYCLOS_PASSWORD}\n }\n}",
		},
		{
			name:  "fail/cyclos-no-credentials",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n cyclos {\n  url https://demo.cyclos.org\n  username ticket\n }\n}",
			want:  []string{"cyclos", "access_client_token, or username and password"},
		},
		{
			name:  "fail/cyclos-both-credentials",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n cyclos {\n  url https://demo.cyclos.org\n  access_client_token {env.T}\n  username ticket\n  password {env.P}\n }\n}",
			want:  []string{"cyclos", "not both"},
		},
		{
			name:  "fail/cyclos-no-url",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n cyclos {\n  access_client_token {env.T}\n }\n}",
			want:  []string{"cyclos", "url is required"},
		},
		{
			name:  "fail/cyclos-unknown-template-field",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n cyclos {\n  url https://demo.cyclos.org\n  access_client_token {env.T}\n  custom_value invoice_nr {invoice}\n }\n}",
			want:  []string{"custom_value invoice_nr", "{invoice}", "{order_id}", "Testfile:6"},
		},
		{
			name:  "fail/cyclos-custom-value-args",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n cyclos {\n  url https://demo.cyclos.org\n  access_client_token {env.T}\n  custom_value invoice_nr\n }\n}",
			want:  []string{"custom_value", "field name and a template", "Testfile:6"},
		},
		{
			name:  "fail/cyclos-unknown-setting",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n cyclos {\n  url https://demo.cyclos.org\n  access_client_token {env.T}\n  currency HVC\n }\n}",
			want:  []string{"cyclos", `"currency"`, "access_client_token", "Testfile:6"},
		},
		{
			name:  "ok/erc20-defaults",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n erc20 {\n  rpc {env.ETH_RPC_URL}\n  xpub {env.CHECKOUT_XPUB}\n }\n}",
		},
		{
			name:  "fail/erc20-no-key-source",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n erc20 {\n  rpc {env.ETH_RPC_URL}\n }\n}",
			want:  []string{"erc20", "xpub or addresses_file", "no private key"},
		},
		{
			name:  "fail/erc20-both-sources",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n erc20 {\n  rpc {env.ETH_RPC_URL}\n  xpub {env.X}\n  addresses_file /etc/a.txt\n }\n}",
			want:  []string{"erc20", "not both"},
		},
		{
			name:  "fail/erc20-confirmations",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n erc20 {\n  rpc {env.R}\n  xpub {env.X}\n  confirmations 0\n }\n}",
			want:  []string{"erc20 confirmations", `"0"`, "Testfile:6"},
		},
		{
			name:  "fail/erc20-poll",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n erc20 {\n  rpc {env.R}\n  xpub {env.X}\n  poll 10ms\n }\n}",
			want:  []string{"erc20 poll", "at least 1s", "Testfile:6"},
		},
		{
			name:  "fail/erc20-unknown-setting",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n erc20 {\n  rpc {env.R}\n  xpub {env.X}\n  private_key abc\n }\n}",
			want:  []string{"erc20", `"private_key"`, "Testfile:6"},
		},
		{
			name:  "fail/intake-unknown",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n intake headers email\n sandbox\n}",
			want:  []string{"intake", `"email"`, "headers, signed_link", "Testfile:3"},
		},
		{
			name:  "fail/intake-empty",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n intake\n sandbox\n}",
			want:  []string{"intake", "Testfile:3"},
		},
		{
			name:  "fail/locales-empty",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n locales\n sandbox\n}",
			want:  []string{"locales", "Testfile:3"},
		},
		{
			name:  "fail/api-allow-bad-cidr",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n api_allow 127.0.0.1/32 10.0.0.0/33\n sandbox\n}",
			want:  []string{"api_allow", `"10.0.0.0/33"`, "CIDR", "Testfile:3"},
		},
		{
			name:  "fail/api-allow-hostname",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n api_allow localhost\n sandbox\n}",
			want:  []string{"api_allow", `"localhost"`, "Testfile:3"},
		},
		{
			name:  "fail/api-allow-empty",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n api_allow\n sandbox\n}",
			want:  []string{"api_allow", "Testfile:3"},
		},
		{
			name:  "fail/base-path-no-slash",
			input: "checkout {\n base_path _checkout\n secret {env.CHECKOUT_SECRET}\n sandbox\n}",
			want:  []string{`base_path "_checkout"`, "must start with /", "Testfile:2"},
		},
		{
			name:  "fail/base-path-trailing-slash",
			input: "checkout {\n base_path /_checkout/\n secret {env.CHECKOUT_SECRET}\n sandbox\n}",
			want:  []string{`base_path "/_checkout/"`, "Testfile:2"},
		},
		{
			name:  "fail/base-path-root",
			input: "checkout {\n base_path /\n secret {env.CHECKOUT_SECRET}\n sandbox\n}",
			want:  []string{`base_path "/"`, "Testfile:2"},
		},
		{
			name:  "fail/missing-secret",
			input: "checkout {\n public_url https://shop.example.com\n sandbox\n}",
			want:  []string{"secret is required", "caddy checkout secret", "Testfile:4"},
		},
		{
			name:  "fail/no-provider",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n}",
			want:  []string{"no payment provider", "sandbox", "Testfile:3"},
		},
		{
			name:  "fail/duplicate-setting",
			input: "checkout {\n secret {env.A}\n sandbox\n secret {env.B}\n}",
			want:  []string{"secret: set more than once", "Testfile:4"},
		},
		{
			name:  "fail/sandbox-with-args",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n sandbox fast\n}",
			want:  []string{"sandbox", "fast", "Testfile:3"},
		},
		{
			name:  "fail/sandbox-with-settings",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n sandbox {\n  mode paid\n }\n}",
			want:  []string{"sandbox", `"mode"`, "Testfile:4"},
		},
		{
			name:  "ok/prices",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n price /downloads/ebook.pdf 9.99 USD \"The e-book\"\n price /reports/* 25 EUR\n receipt_ttl 30d\n sandbox\n}",
		},
		{
			name:  "fail/price-too-few",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n price /downloads/ebook.pdf 9.99\n sandbox\n}",
			want:  []string{"price: want <path> <amount> <currency>", "Testfile:3"},
		},
		{
			name:  "fail/price-too-many",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n price /e.pdf 9.99 USD The e-book\n sandbox\n}",
			want:  []string{"price: want", `["description"]`, "Testfile:3"},
		},
		{
			name:  "fail/price-amount",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n price /e.pdf 9,99 USD\n sandbox\n}",
			want:  []string{`price /e.pdf: amount "9,99" is not a decimal`, "Testfile:3"},
		},
		{
			name:  "fail/receipt-ttl",
			input: "checkout {\n secret {env.CHECKOUT_SECRET}\n receipt_ttl forever\n sandbox\n}",
			want:  []string{`receipt_ttl "forever"`, "Testfile:3"},
		},
		{
			name:   "fail/global-args",
			global: true,
			input:  "checkout extra {\n storage bolt\n}",
			want:   []string{"checkout", `"extra"`, "Testfile:1"},
		},
		{
			name:   "fail/global-unknown-setting",
			global: true,
			input:  "checkout {\n expire 30m\n}",
			want:   []string{`"expire"`, "storage, reconcile_after or callback_retry_for", "Testfile:2"},
		},
		{
			name:   "fail/storage-unknown",
			global: true,
			input:  "checkout {\n storage redis\n}",
			want:   []string{`storage "redis"`, "want bolt", "Testfile:2"},
		},
		{
			name:   "fail/storage-missing",
			global: true,
			input:  "checkout {\n storage\n}",
			want:   []string{"storage", "bolt", "Testfile:2"},
		},
		{
			name:   "fail/storage-postgres-no-dsn",
			global: true,
			input:  "checkout {\n storage postgres\n}",
			want:   []string{"storage postgres", "connection string", "Testfile:2"},
		},
		{
			name:   "fail/storage-postgres-two-dsns",
			global: true,
			input:  "checkout {\n storage postgres postgres://a/b postgres://c/d\n}",
			want:   []string{"storage postgres", "one connection string", "Testfile:2"},
		},
		{
			name:   "fail/storage-postgres-unknown-setting",
			global: true,
			input:  "checkout {\n storage postgres postgres://a/b {\n pool 4\n }\n}",
			want:   []string{`"pool"`, "claim_lease or leader_lease", "Testfile:3"},
		},
		{
			name:   "fail/storage-postgres-bad-lease",
			global: true,
			input:  "checkout {\n storage postgres postgres://a/b {\n leader_lease soon\n }\n}",
			want:   []string{"leader_lease", `"soon"`, "Testfile:3"},
		},
		{
			name:   "fail/storage-extra-arg",
			global: true,
			input:  "checkout {\n storage bolt /a.db /b.db\n}",
			want:   []string{"storage", `"/b.db"`, "Testfile:2"},
		},
		{
			name:   "fail/reconcile-after-not-duration",
			global: true,
			input:  "checkout {\n reconcile_after often\n}",
			want:   []string{`reconcile_after "often"`, "duration", "Testfile:2"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := caddyfile.NewTestDispenser(tc.input)
			var err error
			if tc.global {
				err = new(caddymodule.App).UnmarshalCaddyfile(d)
			} else {
				err = new(caddymodule.Handler).UnmarshalCaddyfile(d)
			}
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("parsed without error")
			}
			t.Log(err)
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}
