package payments_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/payments"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/store/bolt"
)

// personalProvider keeps a customer's slip code in the attempt's provider data
// and names it personal.
type personalProvider struct{ gateProvider }

func (*personalProvider) Personal(key string) (string, bool) { return "", key == "slip_code" }

// TestRetainErasesWhatIsDueAndKeepsWhatIsNeeded: a pass erases the orders
// final for longer than RetainPersonal, oldest first and at most limit:
// their e-mail, the shop's metadata but the keys the site keeps, and the
// provider data the provider names; the payment id, amounts and status
// stay. Orders final more recently, and open ones, keep their data; with
// RetainPersonal 0 nothing is erased.
func TestRetainErasesWhatIsDueAndKeepsWhatIsNeeded(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "checkout.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var mu sync.Mutex
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	p := &personalProvider{gateProvider{name: "slip"}}
	site := func(retain time.Duration) *payments.Site {
		s, err := payments.New(payments.Config{Site: "shop", Expire: time.Hour, Providers: []provider.Provider{p}, Store: st, Now: clock,
			Callback:       "http://127.0.0.1:9/hook",
			RetainPersonal: retain, KeepMetadata: func(_ *order.Order, k string) bool { return k == "price" }})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := site(24 * time.Hour)
	pay := func(id string, at time.Time) {
		t.Helper()
		set(at)
		k := order.Key{Site: "shop", ID: id}
		_, err := st.Update(ctx, k, func(*order.Order) (*order.Order, []store.Delivery, error) {
			o, err := order.New(order.Intake{Key: k, Amount: money.MustParse("9.00", "USD"), Email: "c@example.com",
				Metadata: map[string]string{"name": "C", "price": "/e.pdf"}}, at, time.Hour)
			if err != nil {
				return nil, nil, err
			}
			a := o.Current()
			a.Provider, a.StartedAt, a.ProviderData = "slip", at, map[string]string{"slip_code": "1234-5678", "slip_payment": "pay_1"}
			return o, nil, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		o, _ := st.Get(ctx, k)
		if _, out, err := s.Apply(ctx, order.ByWebhook, provider.Finding{Ref: o.Current().Ref, Status: order.Paid,
			Paid: o.Amount, Transaction: "pay_1", EventID: "evt-" + id, From: "slip"}); err != nil || !out.Changed {
			t.Fatalf("paying %s: %v %+v", id, err, out)
		}
	}
	t0 := now
	pay("old-1", t0)
	// old-1's order.paid callback was delivered; its body keeps the
	// shop's metadata until retention.
	ds, err := st.Deliveries(ctx, store.DeliveryFilter{Site: "shop", OrderID: "old-1"})
	if err != nil || len(ds) != 1 || !strings.Contains(string(ds[0].Body), `"name":"C"`) {
		t.Fatalf("old-1's callbacks: %v %v", ds, err)
	}
	ds[0].State = store.DeliveryDelivered
	if err := st.SaveDelivery(ctx, ds[0]); err != nil {
		t.Fatal(err)
	}
	pay("old-2", t0.Add(time.Hour))
	pay("new", t0.Add(30*time.Hour))
	set(t0.Add(26 * time.Hour))
	if n, err := site(0).Retain(ctx, 100); err != nil || n != 0 {
		t.Fatalf("with retain_personal off: %d, %v", n, err)
	}
	if n, err := s.Retain(ctx, 1); err != nil || n != 1 {
		t.Fatalf("first pass (limit 1): %d, %v", n, err)
	}
	if n, err := s.Retain(ctx, 100); err != nil || n != 1 {
		t.Fatalf("second pass: %d, %v; want the other order due", n, err)
	}
	for _, id := range []string{"old-1", "old-2"} {
		o, _ := st.Get(ctx, order.Key{Site: "shop", ID: id})
		a := o.Current()
		if o.Email != "" || o.Metadata["name"] != "" || o.Metadata["price"] != "/e.pdf" || a.ProviderData["slip_code"] != "" ||
			a.ProviderData["slip_payment"] != "pay_1" || o.Status != order.Paid || o.Transaction != "pay_1" ||
			!slices.Equal(o.Erased, []string{"email", "metadata.name", "provider_data.slip_code"}) {
			t.Errorf("%s after retention: %+v %+v", id, o, a)
		}
	}
	if d, _ := st.Delivery(ctx, ds[0].ID); strings.Contains(string(d.Body), `"name"`) || !strings.Contains(string(d.Body), `"price":"/e.pdf"`) ||
		d.State != store.DeliveryDelivered {
		t.Errorf("old-1's delivered callback after retention: %s %s; want the metadata but price erased", d.State, d.Body)
	}
	if ds, _ := st.Deliveries(ctx, store.DeliveryFilter{Site: "shop", OrderID: "old-2"}); len(ds) != 1 || !strings.Contains(string(ds[0].Body), `"name":"C"`) {
		t.Errorf("old-2's callback still to be sent lost its body: %v", ds)
	}
	if o, _ := st.Get(ctx, order.Key{Site: "shop", ID: "new"}); o.Email == "" || !o.ErasedAt.IsZero() {
		t.Errorf("an order final for less than retain_personal was erased: %+v", o)
	}
	if n, err := s.Retain(ctx, 100); err != nil || n != 0 {
		t.Fatalf("a pass with nothing due: %d, %v", n, err)
	}
}

var _ provider.Personal = (*personalProvider)(nil)
