package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-checkout/checkout/internal/demoshop"
	"github.com/caddy-checkout/checkout/sign"
)

// TestRetentionErasesTheCustomersDataButKeepsTheOrder: with
// retain_personal set, a paid order's e-mail and metadata are erased by
// the background work once it has been final that long; its amount,
// status, transaction and history stay, and the admin API shows what was
// erased. An order still open keeps its customer's data.
func TestRetentionErasesTheCustomersDataButKeepsTheOrder(t *testing.T) {
	secret := sign.NewSecret()
	shop, err := demoshop.New(secret)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(shop)
	t.Cleanup(srv.Close)
	base := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cf := caddyfile(filepath.Join(t.TempDir(), "checkout.db"), admin, base, secret, srv.URL+"/payments/webhook", strings.TrimPrefix(srv.URL, "http://"))
	loadCaddy(t, strings.Replace(cf, "\t\tsandbox\n", "\t\tretain_personal 1s\n\t\tintake headers api\n\t\tsandbox\n", 1))
	t.Cleanup(func() { _ = caddy.Stop() })

	// post announces an order through the server API, under an
	// Idempotency-Key, and returns the answer.
	post := func(id string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+base+"/_checkout/api/orders", strings.NewReader(
			`{"order_id":"`+id+`","amount":"12.00","currency":"USD","email":"ada@example.com","metadata":{"customer_name":"Ada Lovelace"}}`))
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "announce-"+id)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r, string(b)
	}
	announce := func(id string) string {
		t.Helper()
		r, b := post(id)
		var v struct {
			PayURL string `json:"pay_url"`
		}
		if r.StatusCode != http.StatusCreated || json.Unmarshal([]byte(b), &v) != nil || v.PayURL == "" {
			t.Fatalf("announcing %s: %d %s", id, r.StatusCode, b)
		}
		return v.PayURL
	}
	payURL := announce("R-paid")
	announce("R-open")
	payAtPayURL(t, noRedirectClient(), base, payURL)

	type adminOrder struct {
		Status      string            `json:"status"`
		Email       string            `json:"email"`
		Metadata    map[string]string `json:"metadata"`
		Transaction string            `json:"transaction"`
		Amount      struct{ Amount string }
		Erased      []string  `json:"erased"`
		ErasedAt    time.Time `json:"erased_at"`
		History     []struct {
			To    string `json:"to"`
			Cause struct{ Kind string }
			Note  string `json:"note"`
		} `json:"history"`
	}
	get := func(id string) adminOrder {
		t.Helper()
		var o adminOrder
		if code := adminGet(t, admin, "/checkout/orders/default/"+id, &o); code != http.StatusOK {
			t.Fatalf("admin order %s: %d", id, code)
		}
		return o
	}
	before := get("R-paid")
	if before.Status != "paid" || before.Email != "ada@example.com" || before.Metadata["customer_name"] != "Ada Lovelace" {
		t.Fatalf("the paid order before retention: %+v", before)
	}
	// The retention pass runs with the expiry pass, every 15 s.
	var after adminOrder
	waitFor(t, 60*time.Second, "the paid order's customer data to be erased", func() bool {
		after = get("R-paid")
		return !after.ErasedAt.IsZero()
	})
	if after.Email != "" || len(after.Metadata) != 0 || !slices.Equal(after.Erased, []string{"email", "metadata.customer_name", "idempotency_records"}) {
		t.Errorf("after retention: e-mail %q, metadata %v, erased %v; want both erased and listed", after.Email, after.Metadata, after.Erased)
	}
	if after.Status != "paid" || after.Amount.Amount != "12.00" || after.Transaction != before.Transaction || len(after.History) != len(before.History)+1 {
		t.Errorf("retention changed the order itself: %+v, was %+v", after, before)
	}
	if last := after.History[len(after.History)-1]; last.Cause.Kind != "retention" || !strings.Contains(last.Note, "email") {
		t.Errorf("retention's history line: %+v", last)
	}
	if open := get("R-open"); open.Email != "ada@example.com" || !open.ErasedAt.IsZero() {
		t.Errorf("an open order lost its customer's data: %+v", open)
	}
	// The server API's record of the announcing call, whose answer held
	// the e-mail, is forgotten: the same call again is answered anew,
	// from the order as it is now.
	if r, b := post("R-paid"); r.StatusCode != http.StatusOK || r.Header.Get("Idempotent-Replayed") != "" || strings.Contains(b, "ada@example.com") {
		t.Errorf("the announcing call again after retention: %d replayed %q %s", r.StatusCode, r.Header.Get("Idempotent-Replayed"), b)
	}
	if r, b := post("R-open"); r.Header.Get("Idempotent-Replayed") != "true" || !strings.Contains(b, "ada@example.com") {
		t.Errorf("the open order's call again: replayed %q %s, want its stored answer", r.Header.Get("Idempotent-Replayed"), b)
	}
	// The list of orders shows the erasure too.
	var list []struct {
		OrderID string   `json:"order_id"`
		Erased  []string `json:"erased"`
	}
	adminGet(t, admin, "/checkout/orders?status=paid", &list)
	if len(list) != 1 || len(list[0].Erased) != 3 {
		t.Errorf("admin list after retention: %+v", list)
	}
}
