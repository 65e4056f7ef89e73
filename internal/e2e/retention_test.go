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

	announce := func(id string) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+base+"/_checkout/api/orders", strings.NewReader(
			`{"order_id":"`+id+`","amount":"12.00","currency":"USD","email":"ada@example.com","metadata":{"customer_name":"Ada Lovelace"}}`))
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("Content-Type", "application/json")
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		var v struct {
			PayURL string `json:"pay_url"`
		}
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != http.StatusCreated || json.Unmarshal(b, &v) != nil || v.PayURL == "" {
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
	if after.Email != "" || len(after.Metadata) != 0 || !slices.Equal(after.Erased, []string{"email", "metadata.customer_name"}) {
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
	// The list of orders shows the erasure too.
	var list []struct {
		OrderID string   `json:"order_id"`
		Erased  []string `json:"erased"`
	}
	adminGet(t, admin, "/checkout/orders?status=paid", &list)
	if len(list) != 1 || len(list[0].Erased) != 2 {
		t.Errorf("admin list after retention: %+v", list)
	}
}
