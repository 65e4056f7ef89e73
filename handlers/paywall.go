// Paywalled routes (SPEC §4.4): a path sold for a price, with no shop
// behind it. A request for the path without a receipt learns the price
// and where to pay and stores nothing; the order is made when someone
// chooses how to pay at pay_url (purchase.go); a paid order gives a
// receipt (a cookie for a browser, a bearer token for a program) that
// opens the path until it expires or the order is refunded.
package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/sign"
	"github.com/caddy-checkout/checkout/store"
)

// Price sells access to a path.
type Price struct {
	// Path is an exact path ("/downloads/ebook.pdf") or a prefix ending
	// in "/*" ("/reports/*": /reports and everything under it), written
	// as it is named on disk, not percent-encoded ("/docs/my book.pdf").
	Path string
	// Amount is a decimal in the currency's major units ("9.99").
	Amount      string
	Currency    string
	Description string
}

// DefaultReceiptTTL is how long a receipt opens its path unless
// configured.
const DefaultReceiptTTL = 30 * 24 * time.Hour

const (
	// paywallIDPrefix starts the order id of every paywall order; the rest
	// is the purchase's random nonce.
	paywallIDPrefix = "paywall-"
	// receiptCookiePrefix starts the name of a price's receipt cookie.
	receiptCookiePrefix = "checkout_receipt_"
	// maxPricedPath bounds the path a purchase records (in the order's
	// metadata and its callbacks).
	maxPricedPath = 1024
	// Metadata keys of a paywall order, also sent to the shop in its
	// callbacks (data.metadata).
	metaPath   = "path"   // the path that was asked for
	metaPrice  = "price"  // the price's path, which the receipt opens
	metaClient = "client" // "browser" (sent back to the path) or "program" (shown the receipt)
)

// price is a Price checked and ready to match.
type price struct {
	Price
	// exact is the cleaned path of an exact price; prefix the cleaned
	// path before "/*" of a prefix price ("/reports").
	exact, prefix string
	segs          int // segments of prefix
	amount        money.Amount
	// id names the price in cookie names; cookie is the name of the
	// receipt cookie: one per price, so that receipts of prices whose
	// cookies share a Path do not replace each other.
	id, cookie string
}

// priceID is 12 hex digits naming a price of a site.
func priceID(site, pricePath string) string {
	sum := sha256.Sum256([]byte(site + "\n" + pricePath))
	return hex.EncodeToString(sum[:6])
}

// root is the price's path without "/*".
func (p *price) root() string { return p.exact + p.prefix }

// dir is the path the price's cookie and return are built on: the root,
// or for an exact price on a directory's index file, the directory.
func (p *price) dir() string {
	if p.exact != "" {
		return indexDir(p.exact)
	}
	return p.prefix
}

// cookiePath is where a browser sends the price's receipt cookie: dir,
// cut before the first segment that a link could spell in more than one
// way (a character other than letters, digits, "-._~"), so that every
// spelling of the path carries it. Cookie paths are compared byte for
// byte and case-sensitively.
func (p *price) cookiePath() string {
	r := p.dir()
	for i := 0; i < len(r); i++ {
		c := r[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/", c) >= 0 {
			continue
		}
		return r[:strings.LastIndexByte(r[:i], '/')+1]
	}
	return r
}

// indexNames are the files servers answer a directory with (Caddy's
// file_server: index.html, index.txt; php_fastcgi: index.php; others):
// an exact price on one also covers its directory, and the other way
// round.
var indexNames = []string{"/index.html", "/index.htm", "/index.txt", "/index.php", "/default.htm", "/default.html"}

// sidecars are the precompressed copies file_server's precompressed
// option serves beside a file: an exact price covers them too.
var sidecars = []string{".gz", ".br", ".zst"}

// indexDir is p without a trailing index file name ("/docs/index.html" →
// "/docs"; "/index.html" → "/").
func indexDir(p string) string {
	for _, n := range indexNames {
		if len(p) >= len(n) && foldEqual(p[len(p)-len(n):], n) {
			if d := p[:len(p)-len(n)]; d != "" {
				return d
			}
			return "/"
		}
	}
	return p
}

// checkPricePaths checks the shape of the prices' paths: each an exact
// path or a prefix ending in /*, outside base_path, and no request path
// matched by two of them.
func checkPricePaths(list []Price, site, base string) ([]*price, error) {
	out := make([]*price, 0, len(list))
	for _, p := range list {
		raw := p.Path
		pr := &price{Price: p}
		if !strings.HasPrefix(raw, "/") || strings.ContainsAny(raw, "?#;\\") || strings.ContainsFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, fmt.Errorf("price %q: want a path such as /downloads/ebook.pdf, or a prefix such as /reports/*", raw)
		}
		if strings.Contains(raw, "%") {
			return nil, fmt.Errorf(`price %q: write the path as its file is named, not percent-encoded (in quotes if it has spaces: "/docs/my book.pdf")`, raw)
		}
		if !utf8.ValidString(raw) || len(raw) > maxPricedPath {
			return nil, fmt.Errorf("price %q: want UTF-8 of at most %d bytes", raw, maxPricedPath)
		}
		if strings.Contains(strings.TrimSuffix(raw, "/*"), "*") {
			return nil, fmt.Errorf("price %q: a * may only end a prefix, as in /reports/*", raw)
		}
		if rest, ok := strings.CutSuffix(raw, "/*"); ok {
			pr.prefix = path.Clean("/" + rest)
			if pr.prefix != "/"+strings.TrimPrefix(rest, "/") || normalizeSegments(pr.prefix) != pr.prefix {
				return nil, fmt.Errorf("price %q: write the path in its plain form (%s/*)", raw, normalizeSegments(pr.prefix))
			}
		} else {
			pr.exact = path.Clean(raw)
			if strings.HasSuffix(raw, "/") {
				return nil, fmt.Errorf("price %q: a path ending in / names a directory: write %s/* to sell what is in it, or %s/index.html for its index page", raw, pr.exact, pr.exact)
			}
			if pr.exact != raw || normalizeSegments(pr.exact) != pr.exact {
				return nil, fmt.Errorf("price %q: write the path in its plain form (%s)", raw, normalizeSegments(pr.exact))
			}
		}
		if pr.prefix == "/" || pr.exact == "/" {
			return nil, fmt.Errorf("price %q: selling the whole site is not supported; price a prefix such as /members/*", raw)
		}
		pr.segs = segments(pr.root())
		if b := path.Clean(base); pr.covers(b) || hasPrefixFold(pr.root(), b) {
			return nil, fmt.Errorf("price %q: overlaps base_path %s, where the checkout's own routes are", raw, base)
		}
		for _, q := range out {
			if q.overlaps(pr) {
				return nil, fmt.Errorf("price %q overlaps price %q: a path may have one price (paths are compared without regard to case)", raw, q.Path)
			}
		}
		if !utf8.ValidString(p.Description) || strings.ContainsAny(p.Description, "\x00\r\n") || len(p.Description) > order.MaxDescriptionLen {
			return nil, fmt.Errorf("price %q: the description must be one line of UTF-8 text, at most %d bytes", raw, order.MaxDescriptionLen)
		}
		pr.id = priceID(site, raw)
		pr.cookie = receiptCookiePrefix + pr.id
		out = append(out, pr)
	}
	return out, nil
}

// covers reports whether the price applies to the normalized path cp.
// Paths are compared without regard to case: servers behind us may
// (Express, ASP.NET, a file server on macOS or Windows), and a price must
// hold for every spelling of its path.
//
// An exact price also covers what servers answer with the same file: the
// path with more segments after it (PHP's path info: /report.php/x runs
// report.php), its precompressed copies (.gz, .br, .zst), and, for a
// directory's index file, the directory (and the other way round).
func (p *price) covers(cp string) bool {
	if p.exact == "" {
		head, _ := splitSegments(cp, p.segs)
		return foldEqual(head, p.prefix)
	}
	e := p.exact
	if head, _ := splitSegments(cp, p.segs); foldEqual(head, e) {
		return true // the path itself, or below it
	}
	if len(cp) > len(e) && isASCII(cp[len(e):]) {
		for _, ext := range sidecars {
			if len(cp) == len(e)+len(ext) && strings.EqualFold(cp[len(e):], ext) && foldEqual(cp[:len(e)], e) {
				return true
			}
		}
	}
	if d := indexDir(cp); d != cp && foldEqual(d, e) {
		return true
	}
	d := indexDir(e)
	return d != e && foldEqual(cp, d)
}

func (p *price) overlaps(q *price) bool {
	return p.covers(q.root()) || q.covers(p.root()) || p.covers(q.dir()) || q.covers(p.dir())
}

// splitSegments cuts the absolute path p after its first n segments:
// ("/a/b/c", 2) is "/a/b" and "/c".
func splitSegments(p string, n int) (head, rest string) {
	seen := 0
	for i := 1; i < len(p); i++ {
		if p[i] == '/' {
			if seen++; seen == n {
				return p[:i], p[i:]
			}
		}
	}
	return p, ""
}

func segments(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// foldEqual compares without regard to case: ASCII case for ASCII
// strings, Unicode case otherwise (a server may fold "ſ" to "s").
func foldEqual(a, b string) bool {
	if isASCII(a) && isASCII(b) {
		return strings.EqualFold(a, b)
	}
	return fold(a) == fold(b)
}

func fold(s string) string { return strings.ToLower(strings.ToUpper(s)) }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func hasPrefixFold(s, prefix string) bool {
	head, _ := splitSegments(s, segments(prefix))
	return foldEqual(head, prefix)
}

// checkPrices parses the prices' amounts once the providers have
// registered their currencies, and refuses a price no provider can take.
func (s *Site) checkPrices() error {
	for _, pr := range s.prices {
		amt, err := s.currencies.Parse(pr.Amount, pr.Currency)
		if err != nil {
			return fmt.Errorf("price %s: %v", pr.Path, err)
		}
		if !slices.ContainsFunc(s.cfg.Providers, func(p provider.Provider) bool { return accepts(p, pr.Currency) }) {
			return fmt.Errorf("price %s: no payment provider of this site takes %s", pr.Path, pr.Currency)
		}
		pr.amount = amt
	}
	return nil
}

// priceOf is the price of a request's path, or nil; and, when only an
// odd reading of the path is priced, the price's own path to send a buyer
// back to (see backPath).
//
// A server behind us may read the path in more ways than one, so every
// reading is tried and any one priced makes the request priced (fail
// closed): the decoded path and the path as sent with only "%2F" kept
// (reverse_proxy forwards "/a/..%2Fb" as is, and some routers act on it
// undecoded), each also with "\" read as "/", and each with path
// parameters (";x") dropped, dot segments resolved, trailing dots and
// spaces of a segment dropped (Windows), and compared without regard to
// case. Readings priced by two different prices make the request
// ambiguous: errAmbiguous.
func (s *Site) priceOf(u *url.URL) (*price, string, error) {
	if len(s.prices) == 0 {
		return nil, "", nil
	}
	var found *price
	decodedPriced := false
	try := func(reading string, decoded bool) error {
		pr := s.priceForm(normalizePath(reading))
		switch {
		case pr == nil:
		case found == nil:
			found, decodedPriced = pr, decoded
		case pr != found:
			return errAmbiguous
		}
		return nil
	}
	readings := func(p string, decoded bool) error {
		if err := try(p, decoded); err != nil {
			return err
		}
		if strings.IndexByte(p, '\\') >= 0 {
			return try(strings.ReplaceAll(p, "\\", "/"), false)
		}
		return nil
	}
	if err := readings(u.Path, true); err != nil {
		return nil, "", err
	}
	if u.RawPath != "" {
		raw, err := unescapeKeepingSlashes(u.RawPath)
		if err != nil {
			return nil, "", errAmbiguous
		}
		if err := readings(raw, false); err != nil {
			return nil, "", err
		}
	}
	if found == nil {
		return nil, "", nil
	}
	if !decodedPriced {
		// Only an odd reading is priced: send the buyer back to the
		// price's own path rather than to this spelling.
		return found, found.root(), nil
	}
	return found, "", nil
}

// backPath is where to send the buyer of pr back to after paying, escaped
// (given priceOf's answer for u).
func backPath(u *url.URL, pr *price, fixed string) string {
	back := fixed
	if back == "" {
		back = pr.root()
		if head, rest := splitSegments(path.Clean(u.Path), segments(pr.dir())); foldEqual(head, pr.dir()) {
			back = pr.dir() + rest
		}
	}
	return escapePath(back)
}

// errAmbiguous: the readings of a request's path are priced differently
// (a receipt for one would open the other), or it cannot be decoded.
var errAmbiguous = errors.New("the path reads as more than one priced path")

func (s *Site) priceForm(cp string) *price {
	if cp == "" {
		return nil
	}
	for _, pr := range s.prices {
		if pr.covers(cp) {
			return pr
		}
	}
	return nil
}

// normalizePath is the cleaned form of an absolute request path: path
// parameters dropped, dot segments resolved, trailing dots and spaces of
// segments dropped. "" for a path that is not absolute.
func normalizePath(p string) string {
	if !strings.HasPrefix(p, "/") {
		return ""
	}
	if strings.IndexByte(p, ';') >= 0 {
		segs := strings.Split(p, "/")
		for i, seg := range segs {
			segs[i], _, _ = strings.Cut(seg, ";")
		}
		p = strings.Join(segs, "/")
	}
	return normalizeSegments(path.Clean(p))
}

// normalizeSegments drops the trailing dots and spaces of each segment of
// a cleaned path, as Windows does with file names.
func normalizeSegments(p string) string {
	if !strings.HasSuffix(p, ".") && !strings.HasSuffix(p, " ") && !strings.Contains(p, "./") && !strings.Contains(p, " /") {
		return p
	}
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		segs[i] = strings.TrimRight(seg, ". ")
	}
	return path.Clean(strings.Join(segs, "/"))
}

// unescapeKeepingSlashes decodes an escaped path but for "%2F", which
// stays as is (inside its segment). It takes one pass.
func unescapeKeepingSlashes(raw string) (string, error) {
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
			return "", errors.New("bad percent-encoding")
		}
		v := unhex(raw[i+1])<<4 | unhex(raw[i+2])
		if v == '/' {
			b.WriteString(raw[i : i+3])
		} else {
			b.WriteByte(v)
		}
		i += 2
	}
	return b.String(), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// escapePath escapes a decoded path for a Location header, leaving what a
// browser would send as it is (letters, digits, "-._~/" and the
// sub-delimiters), so that the request it makes is spelled as the receipt
// cookie's path expects.
func escapePath(p string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"#%<>?`{}\\^|", c) >= 0 {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// --- the priced path ---

// servePriced answers a request for a priced path: passed on with the
// signed paid headers when it carries a valid receipt, else sent to pay
// (a browser) or told the price (a program). Without a receipt it reads
// and writes nothing.
func (s *Site) servePriced(w http.ResponseWriter, r *http.Request, pr *price, back string, next Next) error {
	// back is priceOf's: "" unless only an odd reading was priced.
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		// A CORS preflight carries no credentials: the upstream answers
		// it, so that a page on another origin may then send a receipt;
		// but only its status and CORS headers go back, never a body.
		dropReceiptCookies(r)
		pw := &preflightWriter{w: w, header: http.Header{}}
		if err := next(pw, r); err != nil || pw.status == 0 {
			pw.WriteHeader(http.StatusForbidden)
		}
		return nil
	}
	rc, refused, err := s.receiptOrder(r, pr)
	dropReceiptCookies(r)
	if err != nil {
		// Fail closed: a receipt that cannot be checked opens nothing.
		s.log.Error("checking a receipt", zap.String("site", s.cfg.Site), zap.Error(err))
		w.Header().Set("Retry-After", "5")
		s.refusePriced(w, r, http.StatusServiceUnavailable, "error.unavailable", "receipts cannot be checked right now; try again shortly")
		return nil
	}
	if rc != nil {
		s.setPaidHeaders(r, rc)
		w = &privateWriter{ResponseWriter: w}
		if s.cfg.Intake.Headers {
			return s.proxyWatchingHeaders(w, r, next)
		}
		return next(w, r)
	}
	back = backPath(r.URL, pr, back)
	if len(back) > maxPricedPath {
		w.Header().Set("Cache-Control", "no-store")
		writeAPIError(w, http.StatusRequestURITooLong, fmt.Sprintf("the path is longer than %d bytes", maxPricedPath))
		return nil
	}
	pu := s.newPurchase(back, !wantsHTML(r))
	if wantsHTML(r) {
		// Absolute, on public_url's host: the purchase, the provider's
		// return and the receipt cookie all stay on one host.
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, s.publicURL(r)+s.payURL(pu), http.StatusSeeOther)
		return nil
	}
	writeJSON(w, http.StatusPaymentRequired, paymentRequired{
		Error:       "payment_required",
		Message:     "Payment required: a person pays at pay_url; then GET receipt_url for the receipt and send it in the header Authorization: Bearer followed by the receipt.",
		Amount:      pr.amount.String(),
		Currency:    pr.amount.Currency(),
		Description: pr.Description,
		Path:        pr.Path,
		PayURL:      s.publicURL(r) + s.payURL(pu),
		ReceiptURL:  s.publicURL(r) + s.receiptURL(pu),
		ReceiptTTL:  int64(s.receiptTTL / time.Second),
		Refused:     refused,
	})
	return nil
}

// preflightWriter passes on the upstream's answer to a CORS preflight of
// a priced path: its status and its Access-Control-* and Vary headers,
// nothing else (no body, no error handling of the server's).
type preflightWriter struct {
	w      http.ResponseWriter
	header http.Header
	status int
}

func (p *preflightWriter) Header() http.Header { return p.header }

func (p *preflightWriter) WriteHeader(code int) {
	if p.status != 0 || code < 200 {
		return
	}
	p.status = code
	h := p.w.Header()
	for k, v := range p.header {
		if strings.HasPrefix(k, "Access-Control-") || k == "Vary" {
			h[k] = v
		}
	}
	h.Set("Content-Length", "0")
	h.Set("Cache-Control", "no-store")
	p.w.WriteHeader(code)
}

func (p *preflightWriter) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil // discarded
}

// privateWriter keeps what a receipt opened out of shared caches (a CDN
// in front would otherwise serve one buyer's file to everyone): the
// response's Cache-Control gains "private" unless it is private or
// no-store already, and the headers that speak to CDNs alone (RFC 9213's
// CDN-Cache-Control and its like) are dropped. A header directive that
// runs after this one (Caddy's "header >…") can still undo it.
type privateWriter struct {
	http.ResponseWriter
	done bool
}

// cdnHeaders are cache headers that CDNs obey instead of Cache-Control.
var cdnHeaders = []string{"CDN-Cache-Control", "Cloudflare-CDN-Cache-Control", "Surrogate-Control", "Fastly-Surrogate-Control"}

func (pw *privateWriter) WriteHeader(code int) {
	if !pw.done && code >= 200 {
		pw.done = true
		h := pw.ResponseWriter.Header()
		for _, k := range cdnHeaders {
			h.Del(k)
		}
		if cc, ok := privateCacheControl(h.Values("Cache-Control")); ok {
			h.Set("Cache-Control", cc)
		}
	}
	pw.ResponseWriter.WriteHeader(code)
}

// privateCacheControl is Cache-Control made private: unchanged (false)
// when a bare private or no-store directive is there, else "private"
// before the directives but public.
func privateCacheControl(lines []string) (string, bool) {
	kept := []string{"private"}
	for _, line := range lines {
		for d := range strings.SplitSeq(line, ",") {
			d = strings.TrimSpace(d)
			name := strings.ToLower(d)
			if name == "private" || name == "no-store" {
				return "", false
			}
			if name == "" || name == "public" || strings.HasPrefix(name, "private=") {
				continue
			}
			kept = append(kept, d)
		}
	}
	return strings.Join(kept, ", "), true
}

func (pw *privateWriter) Write(b []byte) (int, error) {
	if !pw.done {
		pw.WriteHeader(http.StatusOK)
	}
	return pw.ResponseWriter.Write(b)
}

func (pw *privateWriter) Flush() {
	if !pw.done {
		pw.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(pw.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the real writer.
func (pw *privateWriter) Unwrap() http.ResponseWriter { return pw.ResponseWriter }

// refusePriced answers a request for a priced path with an error: a page
// in the customer's language for a browser (key), JSON for a program.
func (s *Site) refusePriced(w http.ResponseWriter, r *http.Request, status int, key, msg string) {
	if wantsHTML(r) {
		s.fail(w, r, status, key)
		return
	}
	writeAPIError(w, status, msg)
}

// paymentRequired is the 402 body a program gets.
type paymentRequired struct {
	Error       string `json:"error"`
	Message     string `json:"message"`
	Amount      string `json:"amount"`
	Currency    string `json:"currency"`
	Description string `json:"description,omitempty"`
	Path        string `json:"path"`
	PayURL      string `json:"pay_url"`
	ReceiptURL  string `json:"receipt_url"`
	ReceiptTTL  int64  `json:"receipt_ttl_seconds"`
	// Refused says why a receipt sent with the request opened nothing.
	Refused string `json:"receipt_refused,omitempty"`
}

// wantsHTML reports whether the client takes text/html: a browser, as
// opposed to a program (curl sends */*, which does not count).
func wantsHTML(r *http.Request) bool {
	for _, part := range r.Header.Values("Accept") {
		for v := range strings.SplitSeq(part, ",") {
			typ, params, err := mime.ParseMediaType(strings.TrimSpace(v))
			if err != nil || (typ != "text/html" && typ != "application/xhtml+xml") {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err != nil || f <= 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}

// receiptOrder finds a valid receipt for pr sent with r (Authorization:
// Bearer, or the price's receipt cookie) and removes it from the request,
// which goes on to the upstream. With no valid receipt it returns nil and,
// when one was sent, why it opened nothing. An error means the store could
// not be read.
func (s *Site) receiptOrder(r *http.Request, pr *price) (*receiptEntry, string, error) {
	var candidates []string
	bearer := -1 // the Authorization line that holds a receipt
	for i, v := range r.Header["Authorization"] {
		if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			if tok := strings.TrimSpace(v[7:]); strings.HasPrefix(tok, paywallIDPrefix) {
				candidates, bearer = append(candidates, tok), i
				break
			}
		}
	}
	for _, c := range r.CookiesNamed(pr.cookie) {
		candidates = append(candidates, c.Value)
	}
	refused := ""
	now := s.now()
	for _, tok := range candidates {
		rc := s.receipts.get(tok, pr.Path, now)
		if rc == nil {
			epoch := s.receipts.epoch.Load()
			o, until, why, err := s.openReceipt(r.Context(), pr, tok, now)
			if err != nil {
				return nil, "", err
			}
			if o == nil {
				if refused == "" {
					refused = why
				}
				continue
			}
			rc = s.receipts.put(tok, pr.Path, o, earlier(until, now.Add(receiptFresh)), epoch)
		}
		if bearer >= 0 {
			if lines := r.Header["Authorization"]; len(lines) == 1 {
				delete(r.Header, "Authorization")
			} else {
				r.Header["Authorization"] = slices.Delete(slices.Clone(lines), bearer, bearer+1)
			}
		}
		return rc, "", nil
	}
	return nil, refused, nil
}

// setPaidHeaders gives r the signed headers of SPEC §6.2 for the
// receipt's order. They are made once per receipt, path and second.
func (s *Site) setPaidHeaders(r *http.Request, rc *receiptEntry) {
	now := s.now()
	method, p := r.Method, r.URL.EscapedPath()
	sh := rc.signed.Load()
	if sh == nil || sh.unix != now.Unix() || sh.method != method || sh.path != p {
		sh = &signedHeaders{unix: now.Unix(), method: method, path: p, vals: s.shopHeaders(method, p, rc.o, now)}
		rc.signed.Store(sh)
	}
	setHeaders(r.Header, &sh.vals)
}

// paywallMetadata names the metadata the paywall keeps on its own orders
// (what was asked for and which price it paid): not the customer's, and
// needed for as long as a receipt opens the path, so retain_personal
// keeps it.
func paywallMetadata(o *order.Order, key string) bool {
	return strings.HasPrefix(o.ID, paywallIDPrefix) && (key == metaPath || key == metaPrice || key == metaClient)
}

// receipt is "<order id>.<unix expiry>.<mac>": the order it proves paid and
// when it stops opening the price's path. It holds no secret and nothing
// about the customer; the MAC binds the site and the price's path.
func (s *Site) receipt(pr string, orderID string, exp time.Time) string {
	return orderID + "." + s.cfg.Secret.Token("receipt", s.cfg.Site+"\n"+pr+"\n"+orderID, exp)
}

// openReceipt checks a receipt for pr at now: the signature, the expiry,
// and that its order is still paid (a refund revokes it). It returns the
// order and when the receipt expires, or why it opens nothing.
func (s *Site) openReceipt(ctx context.Context, pr *price, tok string, now time.Time) (o *order.Order, until time.Time, why string, err error) {
	id, rest, ok := strings.Cut(tok, ".")
	if !ok || !strings.HasPrefix(id, paywallIDPrefix) || len(id) > order.MaxIDLen {
		return nil, until, "the receipt is not one of this site's", nil
	}
	switch err := s.cfg.Secret.VerifyToken(rest, "receipt", s.cfg.Site+"\n"+pr.Path+"\n"+id, now); {
	case errors.Is(err, sign.ErrExpired):
		return nil, until, "the receipt has expired", nil
	case err != nil:
		return nil, until, "the receipt is not valid for this path", nil
	}
	exp, _, _ := strings.Cut(rest, ".")
	unix, _ := strconv.ParseInt(exp, 10, 64) // checked by VerifyToken
	o, err = s.cfg.Store.Get(ctx, order.Key{Site: s.cfg.Site, ID: id})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, until, "the receipt's order is unknown", nil
	case err != nil:
		return nil, until, "", err
	case o.Status == order.Refunded:
		return nil, until, "the order was refunded", nil
	case o.Status != order.Paid || o.Metadata[metaPrice] != pr.Path:
		return nil, until, "the receipt's order is not paid", nil
	case !now.Before(o.PaidAt.Add(s.receiptTTL)):
		return nil, until, "the receipt has expired", nil
	}
	return o, earlier(time.Unix(unix, 0), o.PaidAt.Add(s.receiptTTL)), "", nil
}

// dropReceiptCookies removes every receipt cookie from r's Cookie headers,
// keeping the others byte for byte: a receipt is for us, never for the
// upstream (a cookie for /downloads/ebook.pdf also comes with requests for
// /downloads/ebook.pdf/anything).
func dropReceiptCookies(r *http.Request) {
	lines := r.Header["Cookie"]
	changed := false
	for i, line := range lines {
		if !strings.Contains(line, receiptCookiePrefix) {
			continue
		}
		var kept []string
		for part := range strings.SplitSeq(line, ";") {
			k, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if strings.HasPrefix(k, receiptCookiePrefix) {
				changed = true
				continue
			}
			kept = append(kept, strings.TrimSpace(part))
		}
		lines[i] = strings.Join(kept, "; ")
	}
	if changed {
		r.Header["Cookie"] = slices.DeleteFunc(lines, func(l string) bool { return l == "" })
	}
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
