// The Voucher-Safe provider driven through the site as a customer does,
// with a real Prosody for XMPP (internal/xmpptest), a customer client that
// receives and opens the order message, and the fake voucher CLI over a
// fake merchant safe (internal/vouchertest).
package vouchersafe_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/handlers/handlerstest"
	"github.com/caddy-checkout/checkout/internal/vouchertest"
	"github.com/caddy-checkout/checkout/internal/xmpptest"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/vouchersafe"
)

const merchant = "mymerchantsafe-1234@vouchi.com"

type vsEnv struct {
	*handlerstest.Env
	xmpp  *xmpptest.Server
	safe  *vouchertest.Safe
	buyer *xmpptest.Customer
	prov  *vouchersafe.VoucherSafe
}

func newVSEnv(t *testing.T, configure ...func(*vouchersafe.VoucherSafe)) *vsEnv {
	t.Helper()
	ve := &vsEnv{xmpp: xmpptest.Start(t), safe: vouchertest.NewSafe(t)}
	t.Setenv("VOUCHERTEST_SAFE", ve.safe.Path)
	t.Setenv("VOUCHERTEST_LOCK_WAIT", "2s")
	botJID := ve.xmpp.Register("webbot", "bot-password-1")
	ve.prov = &vouchersafe.VoucherSafe{JID: botJID, Password: "bot-password-1", Server: ve.xmpp.Addr, XMPPCA: ve.xmpp.CAFile,
		MerchantVS: merchant, Issuers: []string{"VI-USV"}, PickupCommand: []string{vouchertest.CLI(t), "-x", "ofs.vm.to", "-p", "5233", "-w", "-b", "{key}:{value}"},
		PickupTimeout: caddy.Duration(20 * time.Second)}
	for _, c := range configure {
		c(ve.prov)
	}
	ve.Env = handlerstest.New(t, func(c *handlers.Config) { c.Providers = []provider.Provider{ve.prov} })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ve.prov.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	ve.buyer = ve.xmpp.Connect(t, "buyer")
	return ve
}

var codeRE = regexp.MustCompile(`<strong class="code">([0-9a-f]+)</strong>`)

// sendOrder has the customer buy product and send the order to their
// client; it returns the attempt and the code the page shows.
func (ve *vsEnv) sendOrder(c *http.Client, product string) (ref, code string) {
	ve.T.Helper()
	r := ve.Post(c, "/buy", url.Values{"product": {product}})
	if r.Code != http.StatusSeeOther || !strings.Contains(r.Location, "/_checkout/pay/") {
		ve.T.Fatalf("buy: %d %q", r.Code, r.Location)
	}
	payURL := r.Location
	page := ve.Get(c, payURL)
	if !strings.Contains(page.Body, `name="jid"`) {
		ve.T.Fatalf("pay page without the JID form:\n%s", page.Body)
	}
	ref = handlerstest.RefOf(strings.SplitN(payURL, "?", 2)[0])
	r = ve.Post(c, "/_checkout/vouchersafe/"+ref+"/send", url.Values{"csrf": {handlerstest.CSRFOf(ve.T, page.Body)}, "jid": {ve.buyer.JID.String()}, "issuer": {ve.prov.Issuers[0]}})
	if r.Code != http.StatusSeeOther {
		ve.T.Fatalf("send: %d\n%s", r.Code, r.Body)
	}
	page = ve.Get(c, r.Location)
	m := codeRE.FindStringSubmatch(page.Body)
	if m == nil || !strings.Contains(page.Body, ve.buyer.JID.String()) || !strings.Contains(page.Body, merchant) || !strings.Contains(page.Body, "Payment completed") {
		ve.T.Fatalf("page after sending:\n%s", page.Body)
	}
	return ref, m[1]
}

// completed presses "Payment completed" and follows the checking page until
// it sends the customer on; it returns where.
func (ve *vsEnv) completed(c *http.Client, ref string) string {
	ve.T.Helper()
	page := ve.Get(c, "/_checkout/pay/"+ref+"?provider=vouchersafe")
	r := ve.Post(c, "/_checkout/vouchersafe/"+ref+"/done", url.Values{"csrf": {handlerstest.CSRFOf(ve.T, page.Body)}})
	if r.Code != http.StatusSeeOther || !strings.HasSuffix(r.Location, "/checking") {
		ve.T.Fatalf("payment completed: %d %q", r.Code, r.Location)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ch := ve.Get(c, r.Location)
		if ch.Code == http.StatusSeeOther {
			return ch.Location
		}
		if ch.Code != http.StatusOK {
			return "status " + http.StatusText(ch.Code) + ": " + ch.Body
		}
		if time.Now().After(deadline) {
			ve.T.Fatal("the checking page never ended")
		}
		time.Sleep(20 * time.Millisecond) // the page refreshes itself; a test polls it
	}
}

func TestVoucherSafePaidEndToEnd(t *testing.T) {
	ve := newVSEnv(t)
	c := ve.Client()
	ref, code := ve.sendOrder(c, "mug")
	m := ve.buyer.Next(t)
	info, err := vouchersafe.Decrypt(m.Data(), code)
	o := ve.OrderByRef(ref)
	if err != nil || info.Payee != merchant || info.Amount != "12.50" || info.Currency != "USD" || info.Issuer != "VI-USV" ||
		info.Baggage["orderId"] != ref || m.Subject != "Your order #"+o.ID+" from shop" {
		t.Fatalf("the customer's client got %+v, opened %+v (%v)", m, info, err)
	}
	// Not paid yet: not found, and the order stays payable.
	if where := ve.completed(c, ref); !strings.Contains(where, "/_checkout/pay/"+ref) {
		t.Fatalf("before paying: sent to %q", where)
	}
	if page := ve.Get(c, "/_checkout/pay/"+ref+"?provider=vouchersafe"); !strings.Contains(page.Body, "Your payment was not found") {
		t.Fatalf("pay page after NOT FOUND:\n%s", page.Body)
	}
	ve.safe.Receive(vouchertest.Payment{Payer: "joecustomer-2345@vouchi.com", Amount: "12.50", Units: "USD", Asset: "USV", Issuer: "VI-USV", Baggage: map[string]string{"orderId": ref}})
	where := ve.completed(c, ref)
	if where != "/_checkout/return/vouchersafe/"+ref {
		t.Fatalf("after paying: sent to %q", where)
	}
	r := ve.Get(c, where)
	if shop := ve.Get(c, r.Location); !strings.Contains(shop.Body, "<strong>paid</strong>: 12.50 USD") {
		t.Fatalf("the shop did not see a verified payment:\n%s", shop.Body)
	}
	o = ve.OrderByRef(ref)
	if o.Status != order.Paid || o.Transaction != "joecustomer-2345@vouchi.com" || ve.safe.Len() != 0 {
		t.Fatalf("order %s transaction %q, safe holds %d", o.Status, o.Transaction, ve.safe.Len())
	}
	if got := ve.CallbackTypes(); strings.Join(got, ",") != "order.paid" {
		t.Fatalf("callbacks %v", got)
	}
}

func TestVoucherSafeWrongPayments(t *testing.T) {
	ve := newVSEnv(t, func(v *vouchersafe.VoucherSafe) { v.Issuers = []string{"VI-USV", "VI-EUV"} })
	c := ve.Client()
	for _, tc := range []struct {
		name          string
		pay           func(ref string) vouchertest.Payment
		want          order.State
		failed        bool
		attentionHint string
	}{
		{"wrong units", func(ref string) vouchertest.Payment {
			return vouchertest.Payment{Payer: "p@vouchi.com", Amount: "12.50", Units: "CAD", Asset: "USV", Issuer: "VI-USV", Baggage: map[string]string{"orderId": ref}}
		}, order.Pending, true, "not the order's USD"},
		{"wrong issuer", func(ref string) vouchertest.Payment {
			return vouchertest.Payment{Payer: "p@vouchi.com", Amount: "12.50", Units: "USD", Asset: "AU", Issuer: "GSFS-AU", Baggage: map[string]string{"orderId": ref}}
		}, order.Pending, true, "issuer GSFS-AU"},
		{"less than due", func(ref string) vouchertest.Payment {
			return vouchertest.Payment{Payer: "p@vouchi.com", Amount: "10.00", Units: "USD", Asset: "USV", Issuer: "VI-EUV", Baggage: map[string]string{"orderId": ref}}
		}, order.OnHold, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, _ := ve.sendOrder(c, "mug")
			ve.buyer.Next(t)
			ve.safe.Receive(tc.pay(ref))
			ve.completed(c, ref)
			o := ve.OrderByRef(ref)
			a := o.Attempt(ref)
			if o.Status != tc.want || a.Failed != tc.failed || !strings.Contains(a.ProviderData["vs_attention"], tc.attentionHint) {
				t.Fatalf("order %s, attempt failed=%v, attention %q", o.Status, a.Failed, a.ProviderData["vs_attention"])
			}
			if tc.failed && !strings.Contains(o.History[len(o.History)-1].Note, "not accepted") {
				t.Fatalf("history does not say why: %+v", o.History[len(o.History)-1])
			}
			if tc.want == order.OnHold {
				// Sent again, the order asks for the rest only.
				page := ve.Get(c, "/_checkout/pay/"+ref+"?provider=vouchersafe")
				ve.Post(c, "/_checkout/vouchersafe/"+ref+"/send", url.Values{"csrf": {handlerstest.CSRFOf(t, page.Body)}, "jid": {ve.buyer.JID.String()}, "issuer": {"VI-USV"}})
				code := codeRE.FindStringSubmatch(ve.Get(c, "/_checkout/pay/"+ref+"?provider=vouchersafe").Body)
				if info, err := vouchersafe.Decrypt(ve.buyer.Next(t).Data(), code[1]); err != nil || info.Amount != "2.50" {
					t.Fatalf("the order sent again asks for %q (%v), want the 2.50 still due", info.Amount, err)
				}
				// The rest arrives as a second voucher: paid.
				ve.safe.Receive(vouchertest.Payment{Payer: "p@vouchi.com", Amount: "2.50", Units: "USD", Asset: "USV", Issuer: "VI-USV", Baggage: map[string]string{"orderId": ref}})
				ve.Clock.Add(2 * time.Minute)
				if n, err := ve.Site().Reconcile(context.Background(), 0, 10); err != nil || n != 1 {
					t.Fatalf("reconcile: %d %v", n, err)
				}
				if o := ve.OrderByRef(ref); o.Status != order.Paid {
					t.Fatalf("after the rest: %s", o.Status)
				}
			}
		})
	}
}

func TestVoucherSafeManyClicksOnePickup(t *testing.T) {
	ve := newVSEnv(t)
	c := ve.Client()
	ref, _ := ve.sendOrder(c, "mug")
	ve.safe.Receive(vouchertest.Payment{Payer: "p@vouchi.com", Amount: "12.50", Units: "USD", Asset: "USV", Issuer: "VI-USV", Baggage: map[string]string{"orderId": ref}})
	t.Setenv("VOUCHERTEST_DELAY", "300ms")
	page := ve.Get(c, "/_checkout/pay/"+ref+"?provider=vouchersafe")
	csrf := handlerstest.CSRFOf(t, page.Body)
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := ve.Post(c, "/_checkout/vouchersafe/"+ref+"/done", url.Values{"csrf": {csrf}}); r.Code != http.StatusSeeOther {
				t.Errorf("click: %d", r.Code)
			}
		}()
	}
	// The reconciler comes by meanwhile: it does not start a second pickup.
	ve.Clock.Add(time.Hour)
	if _, err := ve.Site().Reconcile(context.Background(), 0, 10); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	deadline := time.Now().Add(20 * time.Second)
	for ve.OrderByRef(ref).Status != order.Paid {
		if time.Now().After(deadline) {
			t.Fatal("never paid")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if runs := len(ve.safe.Runs()); runs != 1 {
		t.Fatalf("%d pickups for 10 clicks, want 1", runs)
	}
	if got := ve.CallbackTypes(); strings.Join(got, ",") != "order.paid" {
		t.Fatalf("callbacks %v", got)
	}
}

func TestVoucherSafeReconcilerAndInterruptedPickup(t *testing.T) {
	ve := newVSEnv(t)
	c := ve.Client()
	// The customer paid and closed the browser: the reconciler picks the
	// payment up before the order expires.
	ref, _ := ve.sendOrder(c, "mug")
	ve.safe.Receive(vouchertest.Payment{Payer: "p@vouchi.com", Amount: "12.50", Units: "USD", Asset: "USV", Issuer: "VI-USV", Baggage: map[string]string{"orderId": ref}})
	ve.Clock.Add(31 * time.Minute)
	if n, err := ve.Site().Expire(context.Background(), 10); err != nil || n != 0 {
		t.Fatalf("expired %d (%v)", n, err)
	}
	if o := ve.OrderByRef(ref); o.Status != order.Paid || !o.Late {
		t.Fatalf("order %s late=%v; want paid by the pickup run before expiry", o.Status, o.Late)
	}

	// A crash between a pickup and its record: the mark of the started
	// pickup stays, the voucher has left the safe.
	ref, _ = ve.sendOrder(c, "mug")
	if _, _, err := ve.Site().Apply(context.Background(), order.ByReturn, provider.Finding{Ref: ref, Data: map[string]string{"vs_pickup": "started 2026-11-25T09:00:00Z"}}); err != nil {
		t.Fatal(err)
	}
	ve.Clock.Add(2 * time.Minute)
	if _, err := ve.Site().Reconcile(context.Background(), 0, 10); err != nil {
		t.Fatal(err)
	}
	a := ve.OrderByRef(ref).Attempt(ref)
	if note := a.ProviderData["vs_attention"]; !strings.Contains(note, "interrupted") || !strings.Contains(note, "orderId="+ref) || a.ProviderData["vs_pickup"] != "" {
		t.Fatalf("interrupted pickup: %v", a.ProviderData)
	}
}

func TestVoucherSafeSendLimitsAndErrors(t *testing.T) {
	ve := newVSEnv(t)
	c := ve.Client()
	r := ve.Post(c, "/buy", url.Values{"product": {"mug"}})
	ref := handlerstest.RefOf(strings.SplitN(r.Location, "?", 2)[0])
	csrf := handlerstest.CSRFOf(t, ve.Get(c, r.Location).Body)
	send := func(j string) handlerstest.Resp {
		return ve.Post(c, "/_checkout/vouchersafe/"+ref+"/send", url.Values{"csrf": {csrf}, "jid": {j}})
	}
	for _, bad := range []string{"", "not a jid", "@vouchi.com", "name@", strings.Repeat("a", 2000) + "@x.org", "a@xn--.com", "a@b..c", "a@127.0.0.1", "a@[::1]"} {
		if r := send(bad); r.Code != http.StatusBadRequest || !strings.Contains(r.Body, "not a Jabber ID") {
			t.Fatalf("JID %q: %d", bad, r.Code)
		}
	}
	if r := ve.Post(c, "/_checkout/vouchersafe/"+ref+"/send", url.Values{"csrf": {"forged"}, "jid": {ve.buyer.JID.String()}}); r.Code != http.StatusForbidden {
		t.Fatalf("forged csrf: %d", r.Code)
	}
	for i := 0; i < vouchersafe.MaxSends; i++ {
		if r := send(ve.buyer.JID.String()); r.Code != http.StatusSeeOther {
			t.Fatalf("send %d: %d", i+1, r.Code)
		}
	}
	if r := send(ve.buyer.JID.String()); r.Code != http.StatusTooManyRequests {
		t.Fatalf("send %d: %d, want 429", vouchersafe.MaxSends+1, r.Code)
	}

	// The XMPP server is down: the customer is told to retry, quickly.
	r = ve.Post(c, "/buy", url.Values{"product": {"mug"}})
	ref = handlerstest.RefOf(strings.SplitN(r.Location, "?", 2)[0])
	csrf = handlerstest.CSRFOf(t, ve.Get(c, r.Location).Body)
	ve.xmpp.Stop()
	if r := send(ve.buyer.JID.String()); r.Code != http.StatusServiceUnavailable || !strings.Contains(r.Body, "try again in a minute") {
		t.Fatalf("send with the server down: %d\n%s", r.Code, r.Body)
	}
}

// TestVoucherSafeEqualPartsAndFinalCheck: two equal part payments are two
// payments; and the check before expiry runs even when the reconciler
// looked a moment before.
func TestVoucherSafeEqualPartsAndFinalCheck(t *testing.T) {
	ve := newVSEnv(t)
	c := ve.Client()
	ref, _ := ve.sendOrder(c, "mug")
	half := vouchertest.Payment{Payer: "p@vouchi.com", Amount: "6.25", Units: "USD", Asset: "USV", Issuer: "VI-USV", Baggage: map[string]string{"orderId": ref}}
	ve.safe.Receive(half)
	ve.completed(c, ref)
	ve.safe.Receive(half)
	ve.completed(c, ref)
	if o := ve.OrderByRef(ref); o.Status != order.Paid {
		t.Fatalf("after two halves: %s (received %v)", o.Status, o.Attempt(ref).Received)
	}

	ref, _ = ve.sendOrder(c, "mug")
	ve.Clock.Add(29*time.Minute + 40*time.Second)
	if _, err := ve.Site().Reconcile(context.Background(), 0, 10); err != nil {
		t.Fatal(err)
	}
	ve.safe.Receive(vouchertest.Payment{Payer: "p@vouchi.com", Amount: "12.50", Units: "USD", Asset: "USV", Issuer: "VI-USV", Baggage: map[string]string{"orderId": ref}})
	ve.Clock.Add(30 * time.Second)
	if _, err := ve.Site().Expire(context.Background(), 10); err != nil {
		t.Fatal(err)
	}
	if o := ve.OrderByRef(ref); o.Status != order.Paid {
		t.Fatalf("the payment made just before expiry: order %s", o.Status)
	}
}
