package e2e

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/internal/vouchertest"
	"github.com/caddy-checkout/checkout/internal/xmpptest"
	"github.com/caddy-checkout/checkout/providers/vouchersafe"
)

// TestVoucherSafeThroughCaddy runs a Caddy configured from a Caddyfile
// whose vouchersafe block logs its bot in to a real Prosody and picks up
// with the fake voucher CLI: the customer sends the order to their client,
// opens it with the code the page shows, pays, presses Payment completed
// and lands at the shop as paid.
func TestVoucherSafeThroughCaddy(t *testing.T) {
	srv := xmpptest.Start(t)
	safe := vouchertest.NewSafe(t)
	t.Setenv("VOUCHERTEST_SAFE", safe.Path)
	t.Setenv("E2E_VS_JID", srv.Register("webbot", "bot-password-e2e"))
	t.Setenv("E2E_VS_PASSWORD", "bot-password-e2e")
	site := startProviderSite(t, "\t\tvouchersafe {\n"+
		"\t\t\txmpp {env.E2E_VS_JID} {env.E2E_VS_PASSWORD} "+srv.Addr+"\n"+
		"\t\t\txmpp_ca "+srv.CAFile+"\n"+
		"\t\t\tmerchant_vs shop-safe-1@vouchi.com\n"+
		"\t\t\tissuers VI-USV\n"+
		"\t\t\tpickup_command "+vouchertest.CLI(t)+" -x ofs.vm.to -p 5233 -w -b {key}:{value}\n"+
		"\t\t\tpickup_timeout 30s\n"+
		"\t\t}\n")

	// The customer's Voucher-Safe client.
	buyer := srv.Connect(t, "buyer")

	c := noRedirectClient()
	base := "http://" + site.base
	r, err := c.PostForm(base+"/buy", url.Values{"product": {"mug"}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	payURL := r.Header.Get("Location")
	page := site.follow(t, c, payURL)
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if csrf == nil || !strings.Contains(page, `name="jid"`) {
		t.Fatalf("pay page:\n%s", page)
	}
	ref := strings.TrimPrefix(strings.SplitN(payURL, "?", 2)[0], "/_checkout/pay/")
	r, err = c.PostForm(base+"/_checkout/vouchersafe/"+ref+"/send", url.Values{"csrf": {csrf[1]}, "jid": {buyer.JID.String()}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	page = site.follow(t, c, r.Header.Get("Location"))
	code := regexp.MustCompile(`<strong class="code">([0-9a-f]+)</strong>`).FindStringSubmatch(page)
	if code == nil {
		t.Fatalf("no code on the page:\n%s", page)
	}
	m := buyer.Next(t)
	info, err := vouchersafe.Decrypt(m.Data(), code[1])
	if err != nil || info.Payee != "shop-safe-1@vouchi.com" || info.Amount != "12.50" || info.Baggage["orderId"] != ref {
		t.Fatalf("opened %+v (%v)", info, err)
	}
	safe.Receive(vouchertest.Payment{Payer: "buyer-1@vouchi.com", Amount: json.Number(info.Amount), Units: info.Currency, Asset: "USV", Issuer: info.Issuer, Baggage: info.Baggage})
	r, err = c.PostForm(base+"/_checkout/vouchersafe/"+ref+"/done", url.Values{"csrf": {csrf[1]}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	checking := r.Header.Get("Location")
	var final string
	waitFor(t, 30*time.Second, "the pickup", func() bool {
		r, err := c.Get(base + checking)
		if err != nil {
			return false
		}
		r.Body.Close()
		if loc := r.Header.Get("Location"); r.StatusCode == 303 && strings.Contains(loc, "/return/") {
			final = site.follow(t, c, loc)
			return true
		}
		return false
	})
	if !strings.Contains(final, "<strong>paid</strong>: 12.50 USD") {
		t.Fatalf("customer did not land at the shop as paid:\n%s", final)
	}
	waitFor(t, 10*time.Second, "the order.paid callback", func() bool { return len(site.shop.Callbacks()) == 1 })
}
