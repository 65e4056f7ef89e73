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
	b.WriteString(`<p class="note">"Buy" answers with X-Checkout-* headers, and caddy-checkout takes it from there.</p><ul class="products">`)
	for _, p := range Products {
		fmt.Fprintf(&b, `<li><span class="name">%s</span><span class="price">%s %s</span><form method="post" action="/buy"><input type="hidden" name="product" value="%s"><button>Buy</button></form></li>`,
			template.HTMLEscapeString(p.Name), p.Price, p.Currency, p.ID)
	}
	fmt.Fprintf(&b, `</ul><h2>A paid download</h2><p class="note">No shop code at all: Caddy's <code>price</code> line sells this path, and the shop only serves the file.</p><ul class="products"><li><span class="name">%s</span><span class="price">%s USD</span><a class="button" href="%s">Download</a></li>`,
		template.HTMLEscapeString(DownloadName), DownloadPrice, DownloadPath)
	b.WriteString(`</ul><h2>Orders (from signed callbacks)</h2>`)
	s.mu.Lock()
	ids := make([]string, 0, len(s.status))
	for id := range s.status {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(ids) == 0 {
		b.WriteString(`<p class="note">None yet: buy something.</p>`)
	} else {
		b.WriteString(`<ul class="orders">`)
		for _, id := range ids {
			fmt.Fprintf(&b, "<li>%s: %s</li>", template.HTMLEscapeString(id), template.HTMLEscapeString(s.status[id]))
		}
		b.WriteString("</ul>")
	}
	s.mu.Unlock()
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
	fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%s · Gopher Goods</title><style>%s</style></head>
<body><header><a class="logo" href="/">Gopher Goods</a><span class="tag">a demo shop with no payment code</span></header>
<main><h1>%s</h1>%s</main>
<footer>Payments by caddy-checkout in front of this shop. Sandbox: no real money moves.</footer></body></html>`,
		template.HTMLEscapeString(title), shopStyle, template.HTMLEscapeString(title), body)
}

// shopStyle makes the demo look like a small shop rather than a test page.
const shopStyle = `
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;background:#f6f8fa}
header{display:flex;align-items:baseline;gap:1rem;padding:1rem 2rem;background:#fff;border-bottom:1px solid #d0d7de}
.logo{font-weight:700;font-size:1.25rem;color:#0b6e4f;text-decoration:none}
.tag{color:#656d76;font-size:.9rem}
main{max-width:60rem;margin:0 auto;padding:1.5rem 2rem}
h1{font-size:1.6rem;margin:.5rem 0 1rem}
h2{font-size:1.2rem;margin:2rem 0 .75rem}
ul.products{list-style:none;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(14rem,1fr));gap:1rem}
ul.products li{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:1rem;display:flex;flex-direction:column;gap:.5rem}
.name{font-weight:600}
.price{font-size:1.2rem;color:#0b6e4f;font-variant-numeric:tabular-nums}
button,.button{align-self:flex-start;background:#0b6e4f;color:#fff;border:0;border-radius:6px;padding:.5rem 1.25rem;font:inherit;font-weight:600;cursor:pointer;text-decoration:none}
button:hover,.button:hover{background:#095c42}
ul.orders{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:.5rem 1rem .5rem 2rem}
p.note{color:#656d76}
footer{max-width:60rem;margin:2rem auto;padding:0 2rem;color:#656d76;font-size:.85rem}
`
