package handlers_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/handlers"
	"github.com/caddy-checkout/checkout/handlers/handlerstest"
	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/sandbox"
	"github.com/caddy-checkout/checkout/sign"
	"github.com/caddy-checkout/checkout/store"
)

// fileServer stands in for what a paywalled site serves (a file server,
// an API): it answers every path and records what reached it.
type fileServer struct {
	mu   sync.Mutex
	seen []*http.Request
}

func (f *fileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.seen = append(f.seen, r.Clone(context.Background()))
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/octet-stream")
	fmt.Fprintf(w, "content of %s", r.URL.Path)
}

// last is the last request that reached the upstream, or nil.
func (f *fileServer) last() *http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seen) == 0 {
		return nil
	}
	return f.seen[len(f.seen)-1]
}

func (f *fileServer) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.seen)
}

func paywalled(t *testing.T, prices ...handlers.Price) (*handlerstest.Env, *fileServer) {
	t.Helper()
	if len(prices) == 0 {
		prices = []handlers.Price{
			{Path: "/downloads/ebook.pdf", Amount: "9.99", Currency: "USD", Description: "The e-book"},
			{Path: "/reports/*", Amount: "25", Currency: "EUR", Description: "All reports"},
		}
	}
	e := handlerstest.New(t, func(c *handlers.Config) { c.Prices = prices })
	fs := &fileServer{}
	e.SetUpstream(fs)
	return e, fs
}

const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

// orderCount is how many orders the store holds.
func orderCount(t *testing.T, e *handlerstest.Env) int {
	t.Helper()
	os, err := e.Store.List(context.Background(), store.ListFilter{Site: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	return len(os)
}

// chooseSandbox opens pay_url as a person and chooses the sandbox; it
// returns the sandbox page's URL.
func chooseSandbox(t *testing.T, e *handlerstest.Env, c *http.Client, payURL string) string {
	t.Helper()
	page := e.Get(c, payURL, "Accept", browserAccept)
	if page.Code != http.StatusOK || !strings.Contains(page.Body, `value="sandbox"`) {
		t.Fatalf("pay_url: %d\n%s", page.Code, page.Body)
	}
	chosen := e.Post(c, payURL, url.Values{"csrf": {handlerstest.CSRFOf(t, page.Body)}, "provider": {"sandbox"}}, "Origin", e.Srv.URL)
	if chosen.Code != http.StatusSeeOther || !strings.Contains(chosen.Location, "/_checkout/sandbox/") {
		t.Fatalf("choosing the sandbox at pay_url: %d %q\n%s", chosen.Code, chosen.Location, chosen.Body)
	}
	return chosen.Location
}

// browserChoosesSandbox asks for path as a browser and chooses the
// sandbox at the pay_url it is sent to; it returns pay_url and the sandbox
// page's URL.
func browserChoosesSandbox(t *testing.T, e *handlerstest.Env, c *http.Client, path string) (payURL, sandboxURL string) {
	t.Helper()
	first := e.Get(c, path, "Accept", browserAccept)
	if first.Code != http.StatusSeeOther {
		t.Fatalf("%s without a receipt: %d", path, first.Code)
	}
	return first.Location, chooseSandbox(t, e, c, first.Location)
}

// payAt opens pay_url as a person, chooses the sandbox, pays, and
// returns the answer to the provider's return.
func payAt(t *testing.T, e *handlerstest.Env, c *http.Client, payURL string) handlerstest.Resp {
	t.Helper()
	ret := e.PaySandbox(c, chooseSandbox(t, e, c, payURL), "paid")
	if ret.Code != http.StatusSeeOther {
		t.Fatalf("paying: %d", ret.Code)
	}
	return e.Get(c, ret.Location, "Accept", browserAccept)
}

// paymentRequired is the 402 body.
type paymentRequired struct {
	Error, Amount, Currency, Description, Path string
	PayURL                                     string `json:"pay_url"`
	ReceiptURL                                 string `json:"receipt_url"`
	ReceiptTTL                                 int64  `json:"receipt_ttl_seconds"`
	Refused                                    string `json:"receipt_refused"`
}

type receiptAnswer struct {
	Status    string    `json:"status"`
	Receipt   string    `json:"receipt"`
	ExpiresAt time.Time `json:"expires_at"`
	Path      string    `json:"path"`
	OrderID   string    `json:"order_id"`
	PayURL    string    `json:"pay_url"`
	Error     string    `json:"error"`
}

func decode[T any](t *testing.T, r handlerstest.Resp) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.Body), &v); err != nil {
		t.Fatalf("%d %q is not the JSON expected: %v", r.Code, r.Body, err)
	}
	return v
}

// verifyPaidHeaders checks the signed headers a request reached the
// upstream with, as the shop would.
func verifyPaidHeaders(t *testing.T, e *handlerstest.Env, r *http.Request, amount, currency string) {
	t.Helper()
	f := sign.Fields{Method: r.Method, Path: r.URL.EscapedPath(), Order: r.Header.Get("X-Checkout-Order"),
		Status: r.Header.Get("X-Checkout-Status"), Amount: r.Header.Get("X-Checkout-Amount"),
		Currency: r.Header.Get("X-Checkout-Currency"), Transaction: r.Header.Get("X-Checkout-Transaction")}
	if err := e.Secret.VerifyHeaders(r.Header.Get("X-Checkout-Signature"), f, e.Clock.Now(), 5*time.Minute); err != nil {
		t.Fatalf("paid headers do not verify: %v (%+v)", err, f)
	}
	if f.Status != "paid" || f.Amount != amount || f.Currency != currency || !strings.HasPrefix(f.Order, "paywall-") {
		t.Fatalf("paid headers = %+v", f)
	}
}

func TestPaywallBrowserPaysAndGetsTheFile(t *testing.T) {
	e, fs := paywalled(t)
	c := e.Client()

	first := e.Get(c, "/downloads/ebook.pdf", "Accept", browserAccept)
	if first.Code != http.StatusSeeOther || !strings.HasPrefix(first.Location, e.Srv.URL+"/_checkout/buy/") || first.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("priced path without a receipt: %d %q %q, want 303 to pay_url, no-store", first.Code, first.Location, first.Header.Get("Cache-Control"))
	}
	page := e.Get(c, first.Location, "Accept", browserAccept)
	for _, want := range []string{"The e-book", "$9.99", `value="sandbox"`, `<a href="/">`} {
		if !strings.Contains(page.Body, want) {
			t.Fatalf("pay_url page lacks %q:\n%s", want, page.Body)
		}
	}
	if strings.Contains(page.Body, "/cart") {
		t.Fatalf("pay_url page links to the shop's cart (cancel_url), which a paywalled path has nothing to do with")
	}
	if n := orderCount(t, e); n != 0 || fs.count() != 0 {
		t.Fatalf("before a provider was chosen: %d orders stored, %d requests reached the upstream; want none", n, fs.count())
	}

	back := payAt(t, e, c, first.Location)
	if back.Code != http.StatusSeeOther || back.Location != e.Srv.URL+"/downloads/ebook.pdf" {
		t.Fatalf("after paying: %d %q, want 303 back to the path", back.Code, back.Location)
	}
	var cookie *http.Cookie
	for _, ck := range (&http.Response{Header: back.Header}).Cookies() {
		if strings.HasPrefix(ck.Name, "checkout_receipt_") {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.Secure || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/downloads/ebook.pdf" {
		t.Fatalf("receipt cookie = %+v, want HttpOnly, SameSite=Lax, not Secure on http, Path=/downloads/ebook.pdf", cookie)
	}
	if want := int((30 * 24 * time.Hour).Seconds()); cookie.MaxAge < want-5 || cookie.MaxAge > want {
		t.Fatalf("receipt cookie Max-Age %d, want about %d (receipt_ttl 30d)", cookie.MaxAge, want)
	}

	got := e.Get(c, "/downloads/ebook.pdf", "Accept", browserAccept)
	if got.Code != http.StatusOK || got.Body != "content of /downloads/ebook.pdf" {
		t.Fatalf("with the receipt: %d %q, want the file", got.Code, got.Body)
	}
	up := fs.last()
	verifyPaidHeaders(t, e, up, "9.99", "USD")
	if strings.Contains(up.Header.Get("Cookie"), "checkout_receipt") {
		t.Fatalf("the receipt cookie reached the upstream: %q", up.Header.Get("Cookie"))
	}

	// Other paths are not opened by it, and a path written another way is
	// still priced.
	if r := e.Get(c, "/downloads//ebook.pdf", "Accept", browserAccept); r.Code != http.StatusSeeOther {
		t.Fatalf("/downloads//ebook.pdf without its cookie: %d, want 303 to pay", r.Code)
	}
	if r := e.Get(c, "/reports/q3.pdf", "Accept", browserAccept); r.Code != http.StatusSeeOther {
		t.Fatalf("another price's path with this receipt: %d, want 303 to pay", r.Code)
	}
	// Unpriced paths pass as before, with no checkout headers.
	if r := e.Get(c, "/downloads/free.pdf"); r.Code != http.StatusOK || fs.last().Header.Get("X-Checkout-Status") != "" {
		t.Fatalf("unpriced path: %d, headers %v", r.Code, fs.last().Header)
	}

	// One order, one order.paid callback naming the path.
	os, _ := e.Store.List(context.Background(), store.ListFilter{Site: "shop"})
	if len(os) != 1 || os[0].Status != order.Paid || os[0].Metadata["path"] != "/downloads/ebook.pdf" || os[0].Description != "The e-book" {
		t.Fatalf("orders = %+v", os)
	}
	if types := e.CallbackTypes(); len(types) != 1 || types[0] != "order.paid" {
		t.Fatalf("callbacks %v", types)
	}
	var cb struct {
		Data struct {
			OrderID  string            `json:"order_id"`
			Metadata map[string]string `json:"metadata"`
		}
	}
	_ = json.Unmarshal([]byte(e.Shop.Callbacks()[0].Body), &cb)
	if cb.Data.Metadata["path"] != "/downloads/ebook.pdf" || cb.Data.OrderID != os[0].ID {
		t.Fatalf("order.paid callback data = %+v", cb.Data)
	}
}

func TestPaywallProgramGets402ThenABearerReceipt(t *testing.T) {
	e, fs := paywalled(t)
	prog := e.Client()

	r := e.Get(prog, "/downloads/ebook.pdf", "Accept", "*/*")
	if r.Code != http.StatusPaymentRequired || r.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("program: %d %v, want 402 JSON, no-store", r.Code, r.Header)
	}
	pr := decode[paymentRequired](t, r)
	if pr.Amount != "9.99" || pr.Currency != "USD" || pr.Description != "The e-book" || pr.Path != "/downloads/ebook.pdf" ||
		!strings.HasPrefix(pr.PayURL, e.Srv.URL+"/_checkout/buy/") || !strings.HasPrefix(pr.ReceiptURL, e.Srv.URL+"/_checkout/receipt/") ||
		pr.ReceiptTTL != 30*24*3600 {
		t.Fatalf("402 body = %+v", pr)
	}
	if un := e.Get(prog, pr.ReceiptURL); un.Code != http.StatusPaymentRequired || decode[receiptAnswer](t, un).Status != "unpaid" {
		t.Fatalf("receipt_url before paying: %d %s", un.Code, un.Body)
	}
	if n := orderCount(t, e); n != 0 {
		t.Fatalf("%d orders stored for a 402 and a receipt_url poll, want none", n)
	}

	// A person pays in a browser and is shown the receipt.
	person := e.Client()
	paid := payAt(t, e, person, pr.PayURL)
	if paid.Code != http.StatusOK || !strings.Contains(paid.Body, "receipt-token") {
		t.Fatalf("paid page for a program's purchase: %d\n%s", paid.Code, paid.Body)
	}

	ans := e.Get(prog, pr.ReceiptURL)
	if ans.Code != http.StatusOK {
		t.Fatalf("receipt_url once paid: %d %s", ans.Code, ans.Body)
	}
	ra := decode[receiptAnswer](t, ans)
	o, err := e.Store.Get(context.Background(), order.Key{Site: "shop", ID: ra.OrderID})
	if err != nil {
		t.Fatal(err)
	}
	if ra.Receipt == "" || !ra.ExpiresAt.Equal(o.PaidAt.Add(30*24*time.Hour).Truncate(time.Second)) || ra.Path != "/downloads/ebook.pdf" {
		t.Fatalf("receipt_url = %+v, paid at %s", ra, o.PaidAt)
	}
	if !strings.Contains(paid.Body, ra.Receipt) {
		t.Fatalf("the paid page does not show the receipt %q", ra.Receipt)
	}
	if strings.Contains(ra.Receipt, "@") || strings.Contains(ra.Receipt, e.SecretText[6:]) {
		t.Fatalf("receipt %q holds more than it should", ra.Receipt)
	}

	got := e.Get(prog, "/downloads/ebook.pdf", "Authorization", "Bearer "+ra.Receipt)
	if got.Code != http.StatusOK || got.Body != "content of /downloads/ebook.pdf" {
		t.Fatalf("with the bearer receipt: %d %q", got.Code, got.Body)
	}
	up := fs.last()
	verifyPaidHeaders(t, e, up, "9.99", "USD")
	if up.Header.Get("Authorization") != "" {
		t.Fatalf("the bearer receipt reached the upstream")
	}
	// The receipt_url answers the same receipt again; pay_url no longer
	// makes another order.
	if again := decode[receiptAnswer](t, e.Get(prog, pr.ReceiptURL)); again.Receipt != ra.Receipt {
		t.Fatalf("receipt_url changed its answer: %q then %q", ra.Receipt, again.Receipt)
	}
	if n := orderCount(t, e); n != 1 {
		t.Fatalf("%d orders, want 1", n)
	}
}

func TestPaywallReceiptsThatOpenNothing(t *testing.T) {
	e, fs := paywalled(t)
	prog := e.Client()
	pr := decode[paymentRequired](t, e.Get(prog, "/reports/q3.pdf"))
	person := e.Client()
	payAt(t, e, person, pr.PayURL)
	ra := decode[receiptAnswer](t, e.Get(prog, pr.ReceiptURL))
	if ra.Receipt == "" {
		t.Fatalf("no receipt: %+v", ra)
	}
	open := func(path, receipt string) handlerstest.Resp {
		return e.Get(prog, path, "Authorization", "Bearer "+receipt)
	}
	// The prefix price opens the prefix and what is under it.
	for _, p := range []string{"/reports/q3.pdf", "/reports/2026/q1.pdf", "/reports", "/reports/"} {
		if r := open(p, ra.Receipt); r.Code != http.StatusOK {
			t.Fatalf("%s with the receipt for /reports/*: %d %s", p, r.Code, r.Body)
		}
		verifyPaidHeaders(t, e, fs.last(), "25.00", "EUR")
	}

	id, rest, _ := strings.Cut(ra.Receipt, ".")
	expUnix, _, _ := strings.Cut(rest, ".")
	exp, _ := time.Parse(time.RFC3339, ra.ExpiresAt.Format(time.RFC3339))
	forged := func(site, pricePath string) string {
		return id + "." + e.Secret.Token("receipt", site+"\n"+pricePath+"\n"+id, exp)
	}
	flip := []byte(ra.Receipt)
	flip[len(flip)-3] ^= 1
	longer := id + "." + fmt.Sprint(exp.Add(24*time.Hour).Unix()) + rest[len(expUnix):]
	otherSecret, _ := sign.ParseSecret(sign.NewSecret())
	for _, tc := range []struct {
		name, path, receipt, why string
	}{
		{"tampered", "/reports/q3.pdf", string(flip), "not valid"},
		{"expiry moved", "/reports/q3.pdf", longer, "not valid"},
		{"another path's", "/downloads/ebook.pdf", ra.Receipt, "not valid"},
		{"another site's", "/reports/q3.pdf", forged("other-site", "/reports/*"), "not valid"},
		{"another secret's", "/reports/q3.pdf", id + "." + otherSecret.Token("receipt", "shop\n/reports/*\n"+id, exp), "not valid"},
		{"unknown order", "/reports/q3.pdf", forgedFor(e, "paywall-aaaaaaaaaaaaaaaaaaaaaaaaaa", "/reports/*", exp), "unknown"},
		{"not a receipt", "/reports/q3.pdf", "paywall-x", "not one of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := fs.count()
			r := open(tc.path, tc.receipt)
			if r.Code != http.StatusPaymentRequired || fs.count() != before {
				t.Fatalf("%d, upstream reached: %v; want 402 and nothing served", r.Code, fs.count() != before)
			}
			if got := decode[paymentRequired](t, r).Refused; !strings.Contains(got, tc.why) {
				t.Fatalf("receipt_refused %q, want it to say %q", got, tc.why)
			}
		})
	}
	// A browser with a bad cookie is sent to pay, and nothing is served.
	u, _ := url.Parse(e.Srv.URL + "/reports/")
	var bad *http.Cookie
	for _, ck := range person.Jar.Cookies(u) {
		if strings.HasPrefix(ck.Name, "checkout_receipt_") {
			bad = &http.Cookie{Name: ck.Name, Value: string(flip), Path: "/reports"}
		}
	}
	if bad == nil {
		t.Fatalf("the person who paid has no receipt cookie for /reports")
	}
	browser := e.Client()
	browser.Jar.SetCookies(u, []*http.Cookie{bad})
	if r := e.Get(browser, "/reports/q3.pdf", "Accept", browserAccept); r.Code != http.StatusSeeOther || !strings.Contains(r.Location, "/buy/") {
		t.Fatalf("browser with a tampered cookie: %d %q", r.Code, r.Location)
	}

	// Expired: receipt_ttl after payment, it opens nothing.
	e.Clock.Add(30*24*time.Hour + time.Second)
	if r := open("/reports/q3.pdf", ra.Receipt); r.Code != http.StatusPaymentRequired || !strings.Contains(decode[paymentRequired](t, r).Refused, "expired") {
		t.Fatalf("expired receipt: %d %s", r.Code, r.Body)
	}
	if r := e.Get(prog, pr.ReceiptURL); r.Code != http.StatusGone {
		t.Fatalf("receipt_url after the receipt expired: %d %s", r.Code, r.Body)
	}
}

// forgedFor signs a receipt for an order id as the site would: the format
// of SPEC §4.4.
func forgedFor(e *handlerstest.Env, id, pricePath string, exp time.Time) string {
	return id + "." + e.Secret.Token("receipt", "shop\n"+pricePath+"\n"+id, exp)
}

func TestPaywallRefundRevokesTheReceipt(t *testing.T) {
	e, fs := paywalled(t)
	c := e.Client()
	first := e.Get(c, "/downloads/ebook.pdf", "Accept", browserAccept)
	payAt(t, e, c, first.Location)
	if r := e.Get(c, "/downloads/ebook.pdf", "Accept", browserAccept); r.Code != http.StatusOK {
		t.Fatalf("before the refund: %d", r.Code)
	}
	os, _ := e.Store.List(context.Background(), store.ListFilter{Site: "shop"})
	if _, _, err := e.Site().Refund(context.Background(), os[0].ID, handlers.RefundRequest{}); err != nil {
		t.Fatal(err)
	}
	before := fs.count()
	if r := e.Get(c, "/downloads/ebook.pdf", "Accept", browserAccept); r.Code != http.StatusSeeOther || fs.count() != before {
		t.Fatalf("after the refund: %d, upstream reached %v; want 303 to pay and nothing served", r.Code, fs.count() != before)
	}
	if r := e.Get(c, "/downloads/ebook.pdf"); !strings.Contains(decode[paymentRequired](t, r).Refused, "refunded") {
		t.Fatalf("program after the refund: %d %s", r.Code, r.Body)
	}
	if types := e.CallbackTypes(); strings.Join(types, ",") != "order.paid,order.refunded" {
		t.Fatalf("callbacks %v", types)
	}
}

// TestPaywallPartialRefundKeepsTheReceipt: part of a sandbox payment
// refunded leaves the order paid, and its receipt opening the file; the
// shop hears of each refund; refunding the rest revokes the receipt.
func TestPaywallPartialRefundKeepsTheReceipt(t *testing.T) {
	e, _ := paywalled(t)
	c := e.Client()
	first := e.Get(c, "/downloads/ebook.pdf", "Accept", browserAccept)
	payAt(t, e, c, first.Location)
	os, _ := e.Store.List(context.Background(), store.ListFilter{Site: "shop"})
	o, _, err := e.Site().Refund(context.Background(), os[0].ID, handlers.RefundRequest{Amount: money.MustParse("4.00", "USD")})
	if err != nil || o.Status != order.Paid || !o.Refunded().Equal(money.MustParse("4.00", "USD")) {
		t.Fatalf("partial refund: %v, %s with %s refunded", err, o.Status, o.Refunded())
	}
	if r := e.Get(c, "/downloads/ebook.pdf", "Accept", browserAccept); r.Code != http.StatusOK {
		t.Fatalf("after a partial refund: %d, want the file", r.Code)
	}
	if _, _, err := e.Site().Refund(context.Background(), os[0].ID, handlers.RefundRequest{Amount: money.MustParse("6.00", "USD")}); !errors.Is(err, handlers.ErrRefundTooLarge) {
		t.Fatalf("refunding 6.00 of the 5.99 left: %v", err)
	}
	if o, _, err = e.Site().Refund(context.Background(), os[0].ID, handlers.RefundRequest{}); err != nil || o.Status != order.Refunded {
		t.Fatalf("refunding the rest: %v %+v", err, o)
	}
	if r := e.Get(c, "/downloads/ebook.pdf", "Accept", browserAccept); r.Code != http.StatusSeeOther {
		t.Fatalf("after the whole refund: %d, want 303 to pay", r.Code)
	}
	if types := e.CallbackTypes(); strings.Join(types, ",") != "order.paid,order.refunded,order.refunded" {
		t.Fatalf("callbacks %v, want order.paid and two order.refunded", types)
	}
}

// downStore fails every read while down, as a store that cannot be
// reached does.
type downStore struct {
	store.Store
	down atomic.Bool
}

func (d *downStore) Get(ctx context.Context, k order.Key) (*order.Order, error) {
	if d.down.Load() {
		return nil, fmt.Errorf("%w: connection refused", store.ErrUnavailable)
	}
	return d.Store.Get(ctx, k)
}

// paidOnDownStore is a site selling the e-book over a store that can be
// taken down, and a browser that has paid for it (its receipt not yet
// used).
func paidOnDownStore(t *testing.T) (*handlerstest.Env, *fileServer, *downStore, *http.Client) {
	t.Helper()
	var ds *downStore
	e := handlerstest.New(t, func(c *handlers.Config) {
		c.Prices = []handlers.Price{{Path: "/downloads/ebook.pdf", Amount: "9.99", Currency: "USD"}}
		if ds == nil {
			ds = &downStore{Store: c.Store}
		}
		c.Store = ds
	})
	fs := &fileServer{}
	e.SetUpstream(fs)
	c := e.Client()
	first := e.Get(c, "/downloads/ebook.pdf", "Accept", browserAccept)
	payAt(t, e, c, first.Location)
	return e, fs, ds, c
}

func TestPaywallFailsClosedWhenTheStoreIsDown(t *testing.T) {
	e, fs, ds, c := paidOnDownStore(t)
	ds.down.Store(true)
	before := fs.count()
	r := e.Get(c, "/downloads/ebook.pdf", "Accept", browserAccept)
	if r.Code != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" || fs.count() != before {
		t.Fatalf("store down: %d, upstream reached %v; want 503 and nothing served", r.Code, fs.count() != before)
	}
	ds.down.Store(false)
	if r := e.Get(c, "/downloads/ebook.pdf", "Accept", browserAccept); r.Code != http.StatusOK {
		t.Fatalf("store back: %d", r.Code)
	}
}

func TestPaywallCrawlersStoreNothing(t *testing.T) {
	e, fs := paywalled(t)
	c := e.Client()
	var payURLs []string
	for i := range 50 {
		accept := []string{browserAccept, "*/*", "", "application/json", "text/html;q=0"}[i%5]
		r := e.Get(c, "/reports/"+fmt.Sprint(i)+".pdf", "Accept", accept, "User-Agent", "Googlebot/2.1")
		if r.Code != http.StatusSeeOther && r.Code != http.StatusPaymentRequired {
			t.Fatalf("crawler hit: %d", r.Code)
		}
		if r.Code == http.StatusSeeOther {
			payURLs = append(payURLs, r.Location)
		} else {
			payURLs = append(payURLs, decode[paymentRequired](t, r).PayURL)
		}
		if i%5 == 4 && r.Code != http.StatusPaymentRequired {
			t.Fatalf("Accept text/html;q=0 is not a browser: %d", r.Code)
		}
	}
	// A crawler following the links reads the pay pages too.
	for _, u := range payURLs {
		if r := e.Get(c, u, "Accept", browserAccept); r.Code != http.StatusOK {
			t.Fatalf("pay_url: %d", r.Code)
		}
	}
	if n := orderCount(t, e); n != 0 || fs.count() != 0 {
		t.Fatalf("%d orders stored, %d requests served; want none", n, fs.count())
	}
}

func TestPaywallPayURLIsSignedAndExpires(t *testing.T) {
	e, _ := paywalled(t)
	c := e.Client()
	first := e.Get(c, "/downloads/ebook.pdf", "Accept", browserAccept)
	u, _ := url.Parse(first.Location)
	q := u.Query()
	q.Set("path", "/reports/q3.pdf")
	u.RawQuery = q.Encode()
	if r := e.Get(c, u.String(), "Accept", browserAccept); r.Code != http.StatusNotFound {
		t.Fatalf("pay_url with another path: %d, want 404", r.Code)
	}
	page := e.Get(c, first.Location, "Accept", browserAccept)
	csrf := handlerstest.CSRFOf(t, page.Body)
	if r := e.Post(c, first.Location, url.Values{"csrf": {csrf}, "provider": {"nosuch"}}, "Origin", e.Srv.URL); r.Code != http.StatusBadRequest {
		t.Fatalf("unknown provider: %d", r.Code)
	}
	if r := e.Post(c, first.Location, url.Values{"csrf": {"x"}, "provider": {"sandbox"}}, "Origin", e.Srv.URL); r.Code != http.StatusForbidden {
		t.Fatalf("bad csrf: %d", r.Code)
	}
	e.Clock.Add(25 * time.Hour)
	if r := e.Get(c, first.Location, "Accept", browserAccept); r.Code != http.StatusGone {
		t.Fatalf("pay_url a day later: %d, want 410", r.Code)
	}
	if n := orderCount(t, e); n != 0 {
		t.Fatalf("%d orders, want none", n)
	}
	// The same purchase posted twice is one order.
	e.Clock.Add(-25 * time.Hour)
	for range 2 {
		page := e.Get(c, first.Location, "Accept", browserAccept)
		if page.Code == http.StatusOK {
			e.Post(c, first.Location, url.Values{"csrf": {handlerstest.CSRFOf(t, page.Body)}, "provider": {"sandbox"}}, "Origin", e.Srv.URL)
		}
	}
	if n := orderCount(t, e); n != 1 {
		t.Fatalf("%d orders for one purchase, want 1", n)
	}
}

// TestPaywallReceiptBelievedForASecond: a receipt found valid is not read
// from the store again for a second. A change on this instance or told by
// the change feed (another instance's refund) revokes it at once; a change
// the feed missed, or a store gone unreadable, within that second.
func TestPaywallReceiptBelievedForASecond(t *testing.T) {
	e, _, ds, c := paidOnDownStore(t)
	get := func() int { return e.Get(c, "/downloads/ebook.pdf", "Accept", browserAccept).Code }
	if code := get(); code != http.StatusOK {
		t.Fatalf("with the receipt: %d", code)
	}

	// The store becomes unreadable: within the second the receipt still
	// opens; after it, nothing does.
	ds.down.Store(true)
	if code := get(); code != http.StatusOK {
		t.Fatalf("store down, receipt checked just now: %d", code)
	}
	e.Clock.Add(time.Second)
	if code := get(); code != http.StatusServiceUnavailable {
		t.Fatalf("store down for a second: %d, want 503", code)
	}
	ds.down.Store(false)
	if code := get(); code != http.StatusOK {
		t.Fatalf("store back: %d", code)
	}

	// Another instance over the same store refunds the order.
	cfg := e.Cfg
	cfg.Providers = []provider.Provider{&sandbox.Sandbox{}}
	other, err := handlers.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	os, _ := e.Store.List(context.Background(), store.ListFilter{Site: "shop"})
	refunded, _, err := other.Refund(context.Background(), os[0].ID, handlers.RefundRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if code := get(); code != http.StatusOK {
		t.Fatalf("refunded elsewhere, not yet told, within the second: %d", code)
	}
	// The change feed tells this instance: revoked at once.
	var refs []string
	for _, a := range refunded.Attempts {
		refs = append(refs, a.Ref)
	}
	e.Site().Changed(refs)
	if code := get(); code != http.StatusSeeOther {
		t.Fatalf("refunded elsewhere and told: %d, want 303 to pay", code)
	}
}

// rawGet sends GET target as written (no client normalizes it) and
// returns the status.
func rawGet(t *testing.T, srvURL, target string, hdr ...string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srvURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET " + target + " HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n"
	for i := 0; i+1 < len(hdr); i += 2 {
		req += hdr[i] + ": " + hdr[i+1] + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestPaywallEverySpellingIsPriced: a server behind the checkout may read
// a path in more ways than one (case-insensitively, undecoded, with path
// parameters, as Windows names files); none of them reaches it unpaid.
func TestPaywallEverySpellingIsPriced(t *testing.T) {
	e, fs := paywalled(t)
	for _, target := range []string{
		"/reports/..%2Fq3.pdf", "/reports/%2e%2e%2Fq3.pdf", "/reports/..%2fq3.pdf", "//reports/q3.pdf", "///downloads/ebook.pdf",
		"/Downloads/ebook.pdf", "/DOWNLOADS/EBOOK.PDF", "/REPORTS/q3.pdf",
		"/downloads/ebook.pdf.", "/downloads/ebook.pdf%20", "/downloads/ebook.pdf;x=1", "/downloads;x/ebook.pdf",
		"/reports%5Cq3.pdf", "/x/..%5Creports/q3.pdf", "/downloads//ebook.pdf", "/downloads/./ebook.pdf", "/x/../downloads/ebook.pdf",
		"/reports", "/reports/", "/reports/.", "/Reports;a=b/2026/q1.pdf",
		"/downloads%5Cx%2F..%2F..%5C..%5Cebook.pdf", "/reports%5Cq3.pdf%2F..%2F..%5C..%5Cq3.pdf",
		"/report%C5%BF/q3.pdf", "/download%C5%BF/ebook.pdf",
		"/downloads/ebook.pdf.gz", "/downloads/ebook.pdf.BR", "/downloads/ebook.pdf/x", "/downloads/ebook.pdf/",
	} {
		for _, accept := range []string{"*/*", browserAccept} {
			before := fs.count()
			code := rawGet(t, e.Srv.URL, target, "Accept", accept)
			if fs.count() != before || (code != http.StatusPaymentRequired && code != http.StatusSeeOther) {
				t.Errorf("GET %s (Accept %s): %d, upstream reached: %v; want it priced", target, accept, code, fs.count() != before)
			}
		}
	}
	if n := orderCount(t, e); n != 0 {
		t.Fatalf("%d orders stored", n)
	}
	// Paths merely like a priced one are not priced.
	for _, target := range []string{"/downloads/ebook.pdfx", "/reportsx/q3.pdf", "/downloads/ebook", "/report/q3.pdf", "/downloads/ebook.pdf.txt", "/downloads/", "/downloads/other.pdf"} {
		if code := rawGet(t, e.Srv.URL, target); code != http.StatusOK {
			t.Errorf("GET %s: %d, want the upstream's 200", target, code)
		}
	}
}

// TestPaywallBuyerComesBackToTheFile: after paying, the browser is sent to
// the path it asked for, spelled as the price spells it, and its receipt
// cookie comes with every spelling of that path.
func TestPaywallBuyerComesBackToTheFile(t *testing.T) {
	e, fs := paywalled(t,
		handlers.Price{Path: "/downloads/ebook(1).pdf", Amount: "9.99", Currency: "USD"},
		handlers.Price{Path: "/books/o'reilly/*", Amount: "5", Currency: "USD"},
		handlers.Price{Path: "/docs/my book.pdf", Amount: "2", Currency: "USD"},
		handlers.Price{Path: "/reports/*", Amount: "25", Currency: "EUR"},
	)
	for _, tc := range []struct {
		asked, back string   // as the browser asked, and where it is sent after paying
		opens       []string // spellings the receipt then opens
	}{
		{"/downloads/ebook(1).pdf", "/downloads/ebook(1).pdf", []string{"/downloads/ebook(1).pdf", "/downloads/ebook%281%29.pdf"}},
		{"/Downloads/EBOOK(1).PDF", "/downloads/ebook(1).pdf", []string{"/downloads/ebook(1).pdf"}},
		{"/books/o%27reilly/go.pdf", "/books/o'reilly/go.pdf", []string{"/books/o'reilly/go.pdf", "/books/o%27reilly/go.pdf", "/books/o'reilly/"}},
		{"/docs/my%20book.pdf", "/docs/my%20book.pdf", []string{"/docs/my%20book.pdf"}},
		{"/reports/what%3F.pdf", "/reports/what%3F.pdf", []string{"/reports/what%3F.pdf"}},
		{"/reports/100%25.pdf", "/reports/100%25.pdf", []string{"/reports/100%25.pdf"}},
		{"/reports/a%23b.pdf", "/reports/a%23b.pdf", []string{"/reports/a%23b.pdf"}},
		{"/reports/..%2Fq3.pdf", "/reports", []string{"/reports/q3.pdf"}},
		{"/reports/a%3Bb.pdf", "/reports/a;b.pdf", []string{"/reports/a;b.pdf"}},
		{"/reports/caf%E9.pdf", "/reports/caf%E9.pdf", []string{"/reports/caf%E9.pdf"}},
		{"/reports/v2./x.pdf", "/reports/v2./x.pdf", []string{"/reports/v2./x.pdf"}},
	} {
		t.Run(tc.asked, func(t *testing.T) {
			c := e.Client()
			first := e.Do(c, rawRequest(e, tc.asked, "Accept", browserAccept))
			if first.Code != http.StatusSeeOther {
				t.Fatalf("asked: %d", first.Code)
			}
			back := payAt(t, e, c, first.Location)
			if back.Code != http.StatusSeeOther || back.Location != e.Srv.URL+tc.back {
				t.Fatalf("after paying: %d %q, want 303 to %s", back.Code, back.Location, tc.back)
			}
			for _, p := range tc.opens {
				before := fs.count()
				if r := e.Do(c, rawRequest(e, p, "Accept", browserAccept)); r.Code != http.StatusOK || fs.count() != before+1 {
					t.Errorf("%s after paying: %d %q", p, r.Code, r.Location)
				}
			}
		})
	}
}

// rawRequest is a GET of target on the site with the path exactly as
// written (not one starting with //, which the client would send as an
// absolute URL).
func rawRequest(e *handlerstest.Env, target string, hdr ...string) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, e.Srv.URL+"/", nil)
	req.URL.Opaque = target
	if p, err := url.Parse(target); err == nil {
		req.URL.Path, req.URL.RawPath = p.Path, p.RawPath
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return req
}

// TestPaywallReceiptOnlyForTheBuyer: links of a paid purchase (its pay_url,
// its pay page) opened in another browser show it paid and hand out no
// receipt; pay_url does not lead to receipt_url.
func TestPaywallReceiptOnlyForTheBuyer(t *testing.T) {
	e, _ := paywalled(t)
	buyer := e.Client()
	payURL, sb := browserChoosesSandbox(t, e, buyer, "/downloads/ebook.pdf")
	ret := e.PaySandbox(buyer, sb, "paid")
	payPage := "/_checkout/pay/" + handlerstest.RefOf(sb)
	for _, link := range []string{payURL, payPage, ret.Location} {
		friend := e.Client()
		r := e.Get(friend, link, "Accept", browserAccept)
		for r.Code == http.StatusSeeOther && strings.Contains(r.Location, "/_checkout/") {
			r = e.Get(friend, r.Location, "Accept", browserAccept)
		}
		if r.Code != http.StatusOK || !strings.Contains(r.Body, "Already paid") || strings.Contains(r.Header.Get("Set-Cookie"), "checkout_receipt_") {
			t.Fatalf("a shared link of a paid purchase, %s, in another browser: %d %q\n%s", link, r.Code, r.Header.Get("Set-Cookie"), r.Body)
		}
		if got := e.Get(friend, "/downloads/ebook.pdf", "Accept", browserAccept); got.Code != http.StatusSeeOther {
			t.Fatalf("the other browser opened the file: %d", got.Code)
		}
	}
	if r := e.Get(buyer, ret.Location, "Accept", browserAccept); r.Code != http.StatusSeeOther || r.Location != e.Srv.URL+"/downloads/ebook.pdf" {
		t.Fatalf("the buyer's own return: %d %q", r.Code, r.Location)
	}
	// A program's pay_url does not give its receipt_url away.
	pr := decode[paymentRequired](t, e.Get(e.Client(), "/downloads/ebook.pdf"))
	guessed := strings.Replace(pr.PayURL, "/buy/", "/receipt/", 1)
	if r := e.Get(e.Client(), guessed); r.Code != http.StatusNotFound {
		t.Fatalf("receipt_url made from pay_url: %d, want 404", r.Code)
	}
	if r := e.Get(e.Client(), strings.Replace(payURL, "/buy/", "/receipt/", 1)); r.Code != http.StatusNotFound {
		t.Fatalf("receipt_url of a browser's purchase: %d, want 404", r.Code)
	}
}

func TestPaywallOddRequests(t *testing.T) {
	e, fs := paywalled(t)
	c := e.Client()
	// A huge path is refused, and nothing is made of it.
	long := "/reports/" + strings.Repeat("a", 2000)
	if r := e.Get(c, long); r.Code != http.StatusRequestURITooLong {
		t.Fatalf("a 2 KB priced path: %d, want 414", r.Code)
	}
	// The receipt never reaches the upstream, not even on an unpriced
	// path its cookie is sent with; the upstream's own credentials do.
	first := e.Get(c, "/downloads/ebook.pdf", "Accept", browserAccept)
	payAt(t, e, c, first.Location)
	if r := e.Get(c, "/downloads/ebook.pdf/other", "Cookie", "session=s1"); r.Code != http.StatusOK {
		t.Fatalf("unpriced sub-path: %d", r.Code)
	}
	if got := fs.last().Header.Get("Cookie"); strings.Contains(got, "checkout_receipt") || !strings.Contains(got, "session=s1") {
		t.Fatalf("the upstream got Cookie %q", got)
	}
	pr := decode[paymentRequired](t, e.Get(e.Client(), "/reports/q3.pdf"))
	payAt(t, e, e.Client(), pr.PayURL)
	receipt := decode[receiptAnswer](t, e.Get(e.Client(), pr.ReceiptURL)).Receipt
	req, _ := http.NewRequest(http.MethodGet, e.Srv.URL+"/reports/q3.pdf", nil)
	req.Header.Add("Authorization", "Bearer "+receipt)
	req.Header.Add("Authorization", "Basic dXBzdHJlYW06b3du")
	if r := e.Do(e.Client(), req); r.Code != http.StatusOK {
		t.Fatalf("two Authorization lines: %d", r.Code)
	}
	if got := fs.last().Header.Values("Authorization"); len(got) != 1 || got[0] != "Basic dXBzdHJlYW06b3du" {
		t.Fatalf("the upstream got Authorization %q, want its own Basic line only", got)
	}
}

// TestPaywallIndexFiles: Caddy's file_server answers a directory with its
// index file, so a price on one covers the other.
func TestPaywallIndexFiles(t *testing.T) {
	root := t.TempDir()
	for name, body := range map[string]string{"docs/index.html": "PAID DOCS", "guide/index.html": "PAID GUIDE", "free/index.html": "free"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := handlerstest.New(t, func(c *handlers.Config) {
		c.Prices = []handlers.Price{{Path: "/docs/index.html", Amount: "2", Currency: "USD"}, {Path: "/guide", Amount: "3", Currency: "USD"}}
	})
	e.SetUpstream(http.FileServer(http.Dir(root)))
	for _, p := range []string{"/docs/index.html", "/docs/", "/docs", "/DOCS/INDEX.HTML", "/guide/", "/guide", "/guide/index.html", "/guide/index.txt"} {
		if r := e.Get(e.Client(), p); r.Code != http.StatusPaymentRequired || strings.Contains(r.Body, "PAID") {
			t.Errorf("GET %s: %d %q, want 402", p, r.Code, r.Body)
		}
	}
	if r := e.Get(e.Client(), "/free/"); r.Code != http.StatusOK || r.Body != "free" {
		t.Errorf("an unpriced directory: %d %q", r.Code, r.Body)
	}
	// Paid, the directory opens too.
	c := e.Client()
	first := e.Get(c, "/docs/", "Accept", browserAccept)
	payAt(t, e, c, first.Location)
	if r := e.Get(c, "/docs/", "Accept", browserAccept); r.Code != http.StatusOK || r.Body != "PAID DOCS" {
		t.Errorf("GET /docs/ after paying: %d %q", r.Code, r.Body)
	}
	// Go's file server answers its index file's own name with a redirect
	// to the directory: the request got through to it.
	if r := e.Get(c, "/docs/index.html", "Accept", browserAccept); r.Code != http.StatusMovedPermanently {
		t.Errorf("GET /docs/index.html after paying: %d, want the file server's 301", r.Code)
	}
}

// TestPaywallAmbiguousPathRefused: a path whose readings fall under two
// prices is refused, whatever receipt comes with it: a receipt for the
// cheap one must not open the dear one.
func TestPaywallAmbiguousPathRefused(t *testing.T) {
	e, fs := paywalled(t,
		handlers.Price{Path: "/samples/*", Amount: "0.50", Currency: "USD"},
		handlers.Price{Path: "/reports/*", Amount: "25", Currency: "EUR"})
	cheap, err := handlerstest.BuyReceipt(e.Srv.URL, "/samples/a.pdf")
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/samples/x%5C..%5C..%5Creports%5Cq3.pdf", "/reports/..%2F..%2Fsamples/x", "/samples/..%2Freports/q3.pdf"} {
		before := fs.count()
		if code := rawGet(t, e.Srv.URL, target, "Authorization", "Bearer "+cheap); code != http.StatusBadRequest || fs.count() != before {
			t.Errorf("GET %s with the cheap receipt: %d, upstream reached %v; want 400", target, code, fs.count() != before)
		}
	}
	if code := rawGet(t, e.Srv.URL, "/samples/a.pdf", "Authorization", "Bearer "+cheap); code != http.StatusOK {
		t.Fatalf("the cheap receipt on its own path: %d", code)
	}
}

// TestPaywallHeldPaymentSettlesLater: a payment held for days (a konbini
// slip, the sandbox's Pay later) and settled after the buyer left still
// gives the buyer the receipt, and coming back through the path finds
// the purchase rather than offering to pay again.
func TestPaywallHeldPaymentSettlesLater(t *testing.T) {
	for _, comeBack := range []string{"return", "path"} {
		t.Run(comeBack, func(t *testing.T) {
			e, fs := paywalled(t)
			c := e.Client()
			_, sb := browserChoosesSandbox(t, e, c, "/downloads/ebook.pdf")
			held := e.PaySandbox(c, sb, "on_hold")
			e.Get(c, held.Location, "Accept", browserAccept) // the processing page
			e.Clock.Add(48 * time.Hour)
			settled := e.PaySandbox(e.Client(), sb, "paid") // the store's webhook, not the buyer
			var back handlerstest.Resp
			if comeBack == "return" {
				back = e.Get(c, settled.Location, "Accept", browserAccept)
			} else {
				again := e.Get(c, "/downloads/ebook.pdf", "Accept", browserAccept)
				back = e.Get(c, again.Location, "Accept", browserAccept)
			}
			if back.Code != http.StatusSeeOther || back.Location != e.Srv.URL+"/downloads/ebook.pdf" {
				t.Fatalf("the buyer after the held payment settled: %d %q\n%s", back.Code, back.Location, back.Body)
			}
			before := fs.count()
			if r := e.Get(c, "/downloads/ebook.pdf", "Accept", browserAccept); r.Code != http.StatusOK || fs.count() != before+1 {
				t.Fatalf("the file: %d", r.Code)
			}
			if n := orderCount(t, e); n != 1 {
				t.Fatalf("%d orders, want 1", n)
			}
		})
	}
	// Coming back through the path while the payment is still held leads
	// to that payment's page, not to a second purchase.
	e, _ := paywalled(t)
	c := e.Client()
	_, sb := browserChoosesSandbox(t, e, c, "/downloads/ebook.pdf")
	e.PaySandbox(c, sb, "on_hold")
	again := e.Get(c, "/downloads/ebook.pdf", "Accept", browserAccept)
	if r := e.Get(c, again.Location, "Accept", browserAccept); r.Code != http.StatusSeeOther || !strings.HasSuffix(r.Location, "/_checkout/pay/"+handlerstest.RefOf(sb)) {
		t.Fatalf("back through the path with a held payment: %d %q", r.Code, r.Location)
	}
}

// TestPaywallPublicURLOnAnotherHost: with public_url naming another host
// name of the site, the purchase happens on that host from the start, so
// the buyer cookie and the receipt cookie are where the buyer returns.
func TestPaywallPublicURLOnAnotherHost(t *testing.T) {
	e, fs := paywalled(t)
	public := strings.Replace(e.Srv.URL, "127.0.0.1", "localhost", 1)
	e.Cfg.PublicURL = public
	e.Reload()
	c := e.Client()
	// A browser: relative Locations resolve against the page they came from.
	cur, _ := url.Parse(e.Srv.URL + "/downloads/ebook.pdf")
	step := func(method string, form url.Values) handlerstest.Resp {
		var r handlerstest.Resp
		if form == nil {
			r = e.Get(c, cur.String(), "Accept", browserAccept)
		} else {
			r = e.Post(c, cur.String(), form, "Origin", cur.Scheme+"://"+cur.Host)
		}
		if r.Location != "" {
			next, _ := url.Parse(r.Location)
			cur = cur.ResolveReference(next)
		}
		return r
	}
	step("GET", nil) // → pay_url on the public host
	if cur.Host != strings.TrimPrefix(public, "http://") {
		t.Fatalf("pay_url on %s, want public_url's host", cur.Host)
	}
	payURL := *cur
	page := step("GET", nil)
	step("POST", url.Values{"csrf": {handlerstest.CSRFOf(t, page.Body)}, "provider": {"sandbox"}})
	sb := step("GET", nil)
	cur2 := *cur
	step("POST", url.Values{"csrf": {handlerstest.CSRFOf(t, sb.Body)}, "outcome": {"paid"}})
	back := step("GET", nil) // the return
	if back.Code != http.StatusSeeOther || cur.String() != public+"/downloads/ebook.pdf" {
		t.Fatalf("after paying (from %s, %s): %d, now at %s", payURL.String(), cur2.String(), back.Code, cur.String())
	}
	before := fs.count()
	if r := step("GET", nil); r.Code != http.StatusOK || fs.count() != before+1 {
		t.Fatalf("the file on the public host: %d", r.Code)
	}
}

func TestPaywallOpenedResponsesStayPrivate(t *testing.T) {
	e, _ := paywalled(t)
	e.SetUpstream(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cc := r.URL.Query().Get("cc"); cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("CDN-Cache-Control", "max-age=600")
		w.Header().Set("Surrogate-Control", "max-age=600")
		w.Header().Set("Access-Control-Allow-Origin", "https://app.example")
		_, _ = io.WriteString(w, "PAID FILE")
	}))
	receipt, err := handlerstest.BuyReceipt(e.Srv.URL, "/downloads/ebook.pdf")
	if err != nil {
		t.Fatal(err)
	}
	for cc, want := range map[string]string{"": "private", "public, max-age=3600": "private, max-age=3600", "no-store": "no-store",
		"private, max-age=60": "private, max-age=60", `public, max-age=3600, private="Set-Cookie"`: "private, max-age=3600",
		"s-maxage=600": "private, s-maxage=600", "Public,Max-Age=5": "private, Max-Age=5"} {
		r := e.Get(e.Client(), "/downloads/ebook.pdf?cc="+url.QueryEscape(cc), "Authorization", "Bearer "+receipt)
		if r.Code != http.StatusOK || r.Header.Get("Cache-Control") != want || r.Header.Get("CDN-Cache-Control") != "" || r.Header.Get("Surrogate-Control") != "" {
			t.Errorf("upstream Cache-Control %q: got %d %q (CDN-Cache-Control %q), want %q", cc, r.Code, r.Header.Get("Cache-Control"), r.Header.Get("CDN-Cache-Control"), want)
		}
	}
	// A CORS preflight reaches the upstream without a receipt.
	req, _ := http.NewRequest(http.MethodOptions, e.Srv.URL+"/downloads/ebook.pdf", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "authorization")
	r := e.Do(e.Client(), req)
	if r.Code != http.StatusOK || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("CORS preflight: %d %v, want the upstream's status and CORS headers", r.Code, r.Header)
	}
	if r.Body != "" || r.Header.Get("Content-Type") != "" {
		t.Fatalf("CORS preflight gave away a body: %q (%s)", r.Body, r.Header.Get("Content-Type"))
	}
}

// TestPaywallBuyerStillServedLongAfter: a buyer who comes back days after
// a held payment settled, or after a payment that arrived late, gets the
// receipt; a program's pay_url opened in a browser that bought the price
// for itself is the program's purchase.
func TestPaywallBuyerStillServedLongAfter(t *testing.T) {
	e, fs := paywalled(t)
	c := e.Client()
	_, sb := browserChoosesSandbox(t, e, c, "/downloads/ebook.pdf")
	held := e.PaySandbox(c, sb, "on_hold")
	e.Get(c, held.Location, "Accept", browserAccept)
	e.Clock.Add(70 * time.Hour)
	e.PaySandbox(e.Client(), sb, "paid")
	e.Clock.Add(50 * time.Hour)
	again := e.Get(c, "/downloads/ebook.pdf", "Accept", browserAccept)
	if r := e.Get(c, again.Location, "Accept", browserAccept); r.Code != http.StatusSeeOther || r.Location != e.Srv.URL+"/downloads/ebook.pdf" {
		t.Fatalf("the buyer two days after the held payment settled: %d %q", r.Code, r.Location)
	}
	before := fs.count()
	if r := e.Get(c, "/downloads/ebook.pdf", "Accept", browserAccept); r.Code != http.StatusOK || fs.count() != before+1 {
		t.Fatalf("the file: %d", r.Code)
	}

	// A late payment: the order expired, then the money came.
	e2, _ := paywalled(t)
	c2 := e2.Client()
	_, sb2 := browserChoosesSandbox(t, e2, c2, "/reports/q3.pdf")
	e2.Clock.Add(2 * time.Hour)
	if _, err := e2.Site().Expire(context.Background(), 100); err != nil {
		t.Fatal(err)
	}
	ref := handlerstest.RefOf(sb2)
	body := fmt.Sprintf(`{"id":"evt_late","type":"payment.paid","ref":%q,"amount":"25.00","currency":"EUR","transaction":"t-late"}`, ref)
	if r := e2.Do(nil, e2.SignedWebhook("evt_late", body)); r.Code != http.StatusOK {
		t.Fatalf("late webhook: %d %s", r.Code, r.Body)
	}
	if o := e2.OrderByRef(ref); o.Status != order.Paid || !o.Late {
		t.Fatalf("order %s late=%v", o.Status, o.Late)
	}
	e2.Clock.Add(72 * time.Hour)
	again = e2.Get(c2, "/reports/q3.pdf", "Accept", browserAccept)
	if r := e2.Get(c2, again.Location, "Accept", browserAccept); r.Code != http.StatusSeeOther || r.Location != e2.Srv.URL+"/reports/q3.pdf" {
		t.Fatalf("the buyer after a late payment: %d %q", r.Code, r.Location)
	}

	// The browser that bought the e-book opens a program's pay_url for it:
	// the program's purchase, not the browser's.
	pr := decode[paymentRequired](t, e.Get(e.Client(), "/downloads/ebook.pdf"))
	if r := e.Get(c, pr.PayURL, "Accept", browserAccept); r.Code != http.StatusOK || !strings.Contains(r.Body, `value="sandbox"`) {
		t.Fatalf("a program's pay_url in the browser that bought for itself: %d %q", r.Code, r.Location)
	}
}
