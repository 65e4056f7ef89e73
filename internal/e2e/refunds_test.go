package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/internal/komojutest"
	"github.com/caddy-checkout/checkout/internal/stripetest"
)

// refundAnswer is the part of the admin API's order read here.
type refundAnswer struct {
	Replayed       bool   `json:"-"` // answered Idempotent-Replayed: true
	Status         string `json:"status"`
	RefundedAmount *struct {
		Amount string `json:"amount"`
	} `json:"refunded_amount"`
}

func (a refundAnswer) refunded() string {
	if a.RefundedAmount == nil {
		return ""
	}
	return a.RefundedAmount.Amount
}

// adminRefundOf asks the admin API to refund body ("" for none) of an
// order of site "default", under an Idempotency-Key when key is set.
func adminRefundOf(t *testing.T, admin, id, body, key string) (int, refundAnswer, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+admin+"/checkout/orders/default/"+url.PathEscape(id)+"/refund", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, refundAnswer{}, ""
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	a := refundAnswer{Replayed: r.Header.Get("Idempotent-Replayed") == "true"}
	if r.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &a); err != nil {
			t.Errorf("refund answer %s: %v", b, err)
		}
	}
	return r.StatusCode, a, string(b)
}

// refundCallback is an order.refunded callback's data.
type refundCallback struct {
	Type string `json:"type"`
	Data struct {
		Status         string `json:"status"`
		RefundedAmount string `json:"refunded_amount"`
		Refund         *struct {
			Amount  string `json:"amount"`
			Partial bool   `json:"partial"`
		} `json:"refund"`
	} `json:"data"`
}

// partialRefunds takes a paid order of total through the refunds an
// operator makes over the admin API: a partial refund of part, the same
// amount again under an Idempotency-Key (a second refund), another amount
// asked five times at once without a key (one refund), an Idempotency-Key
// sent three times at once and again later (after holds the total
// refunded after each of these four), bad requests and one above what is
// left, then the rest. refundsAt counts the refunds the provider has made
// and the total it has refunded, in its minor units. It checks the order,
// the shop's callbacks and the provider after each step.
func partialRefunds(t *testing.T, site *providerSite, id, part, burst string, after [4]string, rest, total string,
	refundsAt func() (int, int64), minor func(string) int64, settle func()) {
	t.Helper()
	admin := site.admin
	want := []refundCallback{}
	expect := func(refund, refunded, status string, partial bool) {
		t.Helper()
		cb := refundCallback{Type: "order.refunded"}
		cb.Data.Status, cb.Data.RefundedAmount = status, refunded
		cb.Data.Refund = &struct {
			Amount  string `json:"amount"`
			Partial bool   `json:"partial"`
		}{refund, partial}
		want = append(want, cb)
	}
	check := func(step string, refunds int, refunded string) {
		t.Helper()
		settle() // the provider's own refund webhooks have reached the site
		if n, got := refundsAt(); n != refunds || got != minor(refunded) {
			t.Fatalf("%s: the provider made %d refunds of %d in all, want %d of %d", step, n, got, refunds, minor(refunded))
		}
		waitFor(t, 10*time.Second, step+": the shop's callbacks", func() bool { return len(site.shop.Callbacks()) >= 1+len(want) })
		var got []refundCallback
		for _, c := range site.shop.Callbacks()[1:] {
			var cb refundCallback
			if err := json.Unmarshal([]byte(c.Body), &cb); err != nil {
				t.Fatal(err)
			}
			got = append(got, cb)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d callbacks after order.paid, want %d: %+v", step, len(got), len(want), got)
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.Type != w.Type || g.Data.Status != w.Data.Status || g.Data.RefundedAmount != w.Data.RefundedAmount ||
				g.Data.Refund == nil || *g.Data.Refund != *w.Data.Refund {
				t.Errorf("%s: callback %d = %+v %+v, want %+v %+v", step, i+1, g, g.Data.Refund, w, w.Data.Refund)
			}
		}
	}

	code, a, body := adminRefundOf(t, admin, id, `{"amount": "`+part+`"}`, "")
	if code != http.StatusOK || a.Status != "paid" || a.refunded() != after[0] {
		t.Fatalf("first partial refund: %d %s", code, body)
	}
	expect(part, after[0], "paid", true)
	check("first partial refund", 1, after[0])

	// The same amount again without a key, within a minute: taken for a
	// repeat of the first. On purpose, with a key of its own: a second
	// refund.
	code, a, body = adminRefundOf(t, admin, id, `{"amount": "`+part+`"}`, "")
	if code != http.StatusOK || !a.Replayed || a.refunded() != after[0] {
		t.Fatalf("the same amount again without a key: %d %v %s", code, a.Replayed, body)
	}
	code, a, body = adminRefundOf(t, admin, id, `{"amount": "`+part+`"}`, "rma-2")
	if code != http.StatusOK || a.Replayed || a.Status != "paid" || a.refunded() != after[1] {
		t.Fatalf("second partial refund: %d %s", code, body)
	}
	expect(part, after[1], "paid", true)
	check("second partial refund", 2, after[1])

	// Another amount five times at once, without a key: one refund, and
	// four answers saying they repeated it.
	var wg sync.WaitGroup
	answers := make([]refundAnswer, 5)
	codes := make([]int, 5)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], answers[i], _ = adminRefundOf(t, admin, id, `{"amount": "`+burst+`"}`, "")
		}()
	}
	wg.Wait()
	replayed := 0
	for i, c := range codes {
		if c != http.StatusOK || answers[i].refunded() != after[2] {
			t.Fatalf("identical refunds at once: %v %+v", codes, answers)
		}
		if answers[i].Replayed {
			replayed++
		}
	}
	if replayed != 4 {
		t.Errorf("%d of five identical refunds at once said they repeated one, want 4", replayed)
	}
	expect(burst, after[2], "paid", true)
	check("five identical refunds at once", 3, after[2])

	// An Idempotency-Key three times at once, then once more later: one
	// refund, and the later one answers with the order as it is.
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _, _ = adminRefundOf(t, admin, id, `{"amount": "`+burst+`"}`, "refund-42")
		}()
	}
	wg.Wait()
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 200 {
		t.Fatalf("one Idempotency-Key at once: %v", codes[:3])
	}
	expect(burst, after[3], "paid", true)
	check("one Idempotency-Key three times at once", 4, after[3])
	if code, a, body = adminRefundOf(t, admin, id, `{"amount": "`+burst+`"}`, "refund-42"); code != http.StatusOK || !a.Replayed || a.refunded() != after[3] {
		t.Fatalf("the Idempotency-Key again later: %d %s", code, body)
	}

	// Bad requests and too much change nothing.
	for _, bad := range []struct {
		body string
		code int
		says string
	}{
		{`{"amount": "abc"}`, 400, "decimal"},
		{`{"amount": "0"}`, 400, "more than zero"},
		{`{"amount": 5}`, 400, "amount"},
		{`{"amount": "1", "currency": "EUR"}`, 400, "amount"},
		{`{"amount": "` + total + `"}`, 409, "left"},
	} {
		if code, _, body := adminRefundOf(t, admin, id, bad.body, ""); code != bad.code || !strings.Contains(body, bad.says) {
			t.Errorf("refund %s: %d %s, want %d saying %q", bad.body, code, body, bad.code, bad.says)
		}
	}
	check("refused requests", 4, after[3])

	// The rest: refunded.
	code, a, body = adminRefundOf(t, admin, id, "", "")
	if code != http.StatusOK || a.Status != "refunded" || a.refunded() != total {
		t.Fatalf("refunding the rest: %d %s", code, body)
	}
	expect(rest, total, "refunded", false)
	check("the rest", 5, total)
	if code, _, body := adminRefundOf(t, admin, id, `{"amount": "`+part+`"}`, ""); code != http.StatusConflict || !strings.Contains(body, "refunded") {
		t.Errorf("a refund of a refunded order: %d %s, want 409", code, body)
	}
}

// TestStripePartialRefundsThroughCaddy: a Stripe payment of 25.00 USD
// refunded in parts through the admin API, then the rest.
func TestStripePartialRefundsThroughCaddy(t *testing.T) {
	fake := stripetest.New(t, stripetest.WithMock(stripetest.StartMock(t)))
	site := stripeSite(t, fake)
	id, cs := payStripe(t, site, fake, "tee", "25.00 USD", 1)
	partialRefunds(t, site, id, "5.00", "2.50", [4]string{"5.00", "10.00", "12.50", "15.00"}, "10.00", "25.00",
		func() (int, int64) {
			n := 0
			for _, ev := range fake.Events() {
				if ev.Type == "refund.created" {
					n++
				}
			}
			s, _ := fake.Session(cs)
			return n, s.AmountRefunded
		},
		func(s string) int64 { return centsOf(t, s) },
		fake.WaitDeliveries)
	if rej := fake.MockRejections(); len(rej) > 0 {
		t.Fatalf("stripe-mock rejected: %v", rej)
	}
}

// payStripe buys product at the demo shop and pays it on the fake
// Stripe's page; it waits for the n-th callback (order.paid) and returns
// the order's id and the Checkout Session's.
func payStripe(t *testing.T, site *providerSite, fake *stripetest.Server, product, paid string, n int) (id, session string) {
	t.Helper()
	c := noRedirectClient()
	r, err := c.PostForm("http://"+site.base+"/buy", url.Values{"product": {product}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	page := r.Header.Get("Location")
	r, err = c.PostForm(page, url.Values{"action": {"pay"}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if final := site.follow(t, c, r.Header.Get("Location")); !strings.Contains(final, "<strong>paid</strong>: "+paid) {
		t.Fatalf("not paid:\n%s", final)
	}
	waitFor(t, 10*time.Second, "the order.paid callback", func() bool { return len(site.shop.Callbacks()) == n })
	session = strings.TrimPrefix(page, fake.URL+"/pay/")
	var orders []struct {
		OrderID  string `json:"order_id"`
		Attempts []struct {
			ProviderRef string `json:"provider_ref"`
		} `json:"attempts"`
	}
	adminGet(t, site.admin, "/checkout/orders?status=paid", &orders)
	for _, o := range orders {
		for _, a := range o.Attempts {
			if a.ProviderRef == session {
				return o.OrderID, session
			}
		}
	}
	t.Fatalf("no paid order holds session %s: %+v", session, orders)
	return "", ""
}

// TestKomojuPartialRefundsThroughCaddy: a KOMOJU card payment of 1,800 JPY
// refunded in parts through the admin API, then the rest; KOMOJU's
// payment.refunded webhooks for each part change nothing more.
func TestKomojuPartialRefundsThroughCaddy(t *testing.T) {
	fake := komojutest.New(t)
	site := komojuSite(t, fake)
	c := noRedirectClient()
	r, err := c.PostForm("http://"+site.base+"/buy", url.Values{"product": {"tea"}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	sess := r.Header.Get("Location")
	r, err = c.PostForm(sess, url.Values{"action": {"credit_card"}, "card": {"4111111111111111"}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if final := site.follow(t, c, r.Header.Get("Location")); !strings.Contains(final, "<strong>paid</strong>") {
		t.Fatalf("not paid:\n%s", final)
	}
	waitFor(t, 10*time.Second, "the order.paid callback", func() bool { return len(site.shop.Callbacks()) == 1 })
	var orders []struct {
		OrderID string `json:"order_id"`
		Amount  struct {
			Amount, Currency string
		} `json:"amount"`
	}
	adminGet(t, site.admin, "/checkout/orders?status=paid", &orders)
	if len(orders) != 1 || orders[0].Amount.Amount != "1800" || orders[0].Amount.Currency != "JPY" {
		t.Fatalf("paid orders: %+v", orders)
	}
	payment := fake.PaymentOf(strings.TrimPrefix(sess, fake.URL+"/sessions/"))
	partialRefunds(t, site, orders[0].OrderID, "300", "200", [4]string{"300", "600", "800", "1000"}, "800", "1800",
		func() (int, int64) { return fake.Refunds(payment) },
		func(s string) int64 { return wholeOf(t, s) },
		func() {})
}

func centsOf(t *testing.T, s string) int64 {
	t.Helper()
	whole, frac, _ := strings.Cut(s, ".")
	return wholeOf(t, whole)*100 + wholeOf(t, (frac + "00")[:2])
}

func wholeOf(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("not a number: %q", s)
		}
		n = n*10 + int64(c-'0')
	}
	return n
}
