// Package demoshop is the small shop of `caddy checkout demo` and of the
// end-to-end tests: it writes no payment code. Its Buy button answers with
// X-Checkout-* headers, its thank-you page trusts only verified signed
// headers, and it records the signed callbacks it receives.
package demoshop

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/caddy-checkout/checkout/sign"
)

// Product is something the demo shop sells.
type Product struct {
	ID, Name, Price, Currency string
}

// Products is the demo catalogue.
var Products = []Product{
	{"mug", "Caddy mug", "12.50", "USD"},
	{"tee", "Gopher T-shirt", "25.00", "USD"},
	{"tea", "Sencha tea, 100 g", "1800", "JPY"},
}

// Download is the file the demo sells without any shop code: Caddy's
// checkout prices its path (`price`), and the shop only serves it.
const (
	DownloadPath  = "/downloads/guide.txt"
	DownloadPrice = "3.00"
	DownloadName  = "The shop owner's guide"
)

// Callback is a verified callback the shop received.
type Callback struct {
	ID   string
	Body string
}

// Shop is the demo shop. It is safe for concurrent use.
type Shop struct {
	secret sign.Secret
	now    func() time.Time

	mu        sync.Mutex
	next      int
	status    map[string]string // order id → status from callbacks
	callbacks []Callback
	seen      map[string]bool // webhook-ids, to deduplicate retries
	fail      bool            // the callback endpoint answers 500 (the shop is "down")
}

// New makes a shop that verifies with secret (a whsec_ string).
func New(secret string) (*Shop, error) {
	s, err := sign.ParseSecret(secret)
	if err != nil {
		return nil, err
	}
	return &Shop{secret: s, now: time.Now, status: map[string]string{}, seen: map[string]bool{}}, nil
}

// Callbacks returns the verified callbacks received so far, in order.
func (s *Shop) Callbacks() []Callback {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Callback(nil), s.callbacks...)
}

// SetClock sets the clock the shop checks signatures' timestamps with,
// so that tests that move the checkout's clock by days keep the two in
// step, as two servers with synchronised clocks are.
func (s *Shop) SetClock(now func() time.Time) {
	s.mu.Lock()
	s.now = now
	s.mu.Unlock()
}

// SetFail makes the callback endpoint fail (true) or work (false).
func (s *Shop) SetFail(v bool) {
	s.mu.Lock()
	s.fail = v
	s.mu.Unlock()
}

// ServeHTTP routes the shop's pages.
func (s *Shop) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/" && r.Method == http.MethodGet:
		s.home(w)
	case r.URL.Path == "/buy" && r.Method == http.MethodPost:
		s.buy(w, r)
	case r.URL.Path == "/payments/webhook" && r.Method == http.MethodPost:
		s.callback(w, r)
	case strings.HasPrefix(r.URL.Path, "/orders/") && strings.HasSuffix(r.URL.Path, "/thanks"):
		s.thanks(w, r)
	case r.URL.Path == DownloadPath:
		s.download(w, r)
	case r.URL.Path == "/cart":
		page(w, "Cart", template.HTML(`<p>Your order was not paid. <a href="/">Back to the shop</a></p>`))
	case r.URL.Path == "/echo":
		// Tests: show which X-Checkout-* headers reached the shop.
		var names []string
		for k := range r.Header {
			if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(k, "_", "-")), "x-checkout-") {
				names = append(names, k+"="+strings.Join(r.Header[k], ","))
			}
		}
		sort.Strings(names)
		fmt.Fprint(w, strings.Join(names, "\n"))
	default:
		http.NotFound(w, r)
	}
}

func (s *Shop) home(w http.ResponseWriter) {
	var b strings.Builder
	b.WriteString(`<p>A shop with no payment code: "Buy" answers with X-Checkout-* headers and caddy-checkout takes it from there.</p><ul>`)
	for _, p := range Products {
		fmt.Fprintf(&b, `<li>%s: %s %s <form method="post" action="/buy"><input type="hidden" name="product" value="%s"><button>Buy</button></form></li>`,
			template.HTMLEscapeString(p.Name), p.Price, p.Currency, p.ID)
	}
	fmt.Fprintf(&b, `</ul><h2>A paid download</h2><p>No shop code at all: Caddy's <code>price</code> line sells this path, and the shop only serves the file.</p><ul><li>%s: %s USD <a href="%s">Download</a></li>`,
		template.HTMLEscapeString(DownloadName), DownloadPrice, DownloadPath)
	b.WriteString(`</ul><h2>Orders (from signed callbacks)</h2><ul>`)
	s.mu.Lock()
	ids := make([]string, 0, len(s.status))
	for id := range s.status {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		fmt.Fprintf(&b, "<li>%s: %s</li>", template.HTMLEscapeString(id), template.HTMLEscapeString(s.status[id]))
	}
	s.mu.Unlock()
	b.WriteString("</ul>")
	page(w, "Demo shop", template.HTML(b.String()))
}

func (s *Shop) buy(w http.ResponseWriter, r *http.Request) {
	var prod *Product
	for i := range Products {
		if Products[i].ID == r.FormValue("product") {
			prod = &Products[i]
		}
	}
	if prod == nil {
		http.Error(w, "no such product", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.next++
	id := fmt.Sprintf("demo-%d-%d", s.now().Unix()%100000, s.next)
	s.status[id] = "awaiting payment"
	s.mu.Unlock()
	h := w.Header()
	h.Set("X-Checkout-Order", id)
	h.Set("X-Checkout-Amount", prod.Price)
	h.Set("X-Checkout-Currency", prod.Currency)
	h.Set("X-Checkout-Description", strings.ReplaceAll(prod.Name, " ", "%20"))
	// The body is what the shop would show without caddy-checkout; the
	// plugin replaces the whole response.
	fmt.Fprint(w, "payment required")
}

// download serves the paid file. Caddy lets only paid requests through;
// the shop checks the signed headers anyway, as a careful upstream would.
func (s *Shop) download(w http.ResponseWriter, r *http.Request) {
	f := sign.Fields{Method: r.Method, Path: r.URL.EscapedPath(), Order: r.Header.Get("X-Checkout-Order"),
		Status: r.Header.Get("X-Checkout-Status"), Amount: r.Header.Get("X-Checkout-Amount"),
		Currency: r.Header.Get("X-Checkout-Currency"), Transaction: r.Header.Get("X-Checkout-Transaction")}
	if s.secret.VerifyHeaders(r.Header.Get("X-Checkout-Signature"), f, s.now(), 5*time.Minute) != nil || f.Status != "paid" {
		http.Error(w, "not paid", http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "%s\n\nPaid with order %s (%s %s). Your receipt opens this file again until it expires.\n",
		DownloadName, f.Order, f.Amount, f.Currency)
}

func (s *Shop) thanks(w http.ResponseWriter, r *http.Request) {
	f := sign.Fields{
		Method:      r.Method,
		Path:        r.URL.EscapedPath(),
		Order:       r.Header.Get("X-Checkout-Order"),
		Status:      r.Header.Get("X-Checkout-Status"),
		Amount:      r.Header.Get("X-Checkout-Amount"),
		Currency:    r.Header.Get("X-Checkout-Currency"),
		Transaction: r.Header.Get("X-Checkout-Transaction"),
	}
	sig := r.Header.Get("X-Checkout-Signature")
	if sig == "" || s.secret.VerifyHeaders(sig, f, s.now(), 5*time.Minute) != nil || f.Status != "paid" {
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/orders/"), "/thanks")
		s.mu.Lock()
		st := s.status[id]
		s.mu.Unlock()
		if strings.HasPrefix(st, "paid") {
			// Paid before (verified then, or by a signed callback): a reload shows it.
			page(w, "Thank you", template.HTML(fmt.Sprintf(`<p id="result">Order %s is <strong>paid</strong>.</p><p><a href="/">Back to the shop</a></p>`, template.HTMLEscapeString(id))))
			return
		}
		// A missing or bad signature means "not paid", whatever else is sent.
		page(w, "Not paid", template.HTML(`<p id="result">We have no verified payment for this order.</p><p><a href="/">Back to the shop</a></p>`))
		return
	}
	s.mu.Lock()
	s.status[f.Order] = "paid (verified headers)"
	s.mu.Unlock()
	page(w, "Thank you", template.HTML(fmt.Sprintf(`<p id="result">Order %s is <strong>paid</strong>: %s %s (transaction %s).</p><p><a href="/">Back to the shop</a></p>`,
		template.HTMLEscapeString(f.Order), template.HTMLEscapeString(f.Amount), template.HTMLEscapeString(f.Currency), template.HTMLEscapeString(f.Transaction))))
}

func (s *Shop) callback(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read error", http.StatusBadRequest)
		return
	}
	id, err := s.secret.VerifyWebhook(r.Header, body, s.now())
	if err != nil {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		http.Error(w, "shop is down", http.StatusInternalServerError)
		return
	}
	if !s.seen[id] {
		s.seen[id] = true
		s.callbacks = append(s.callbacks, Callback{ID: id, Body: string(body)})
		var cb struct {
			Data struct {
				OrderID string `json:"order_id"`
				Status  string `json:"status"`
			} `json:"data"`
		}
		if json.Unmarshal(body, &cb) == nil && cb.Data.OrderID != "" {
			s.status[cb.Data.OrderID] = cb.Data.Status + " (signed callback)"
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func page(w http.ResponseWriter, title string, body template.HTML) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>%s</title></head><body><h1>%s</h1>%s</body></html>`,
		template.HTMLEscapeString(title), template.HTMLEscapeString(title), body)
}
