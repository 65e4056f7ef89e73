package sign_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/sign"
)

// The test vector published with Standard Webhooks (its libraries' "sign"
// test): this secret, id, timestamp and body give this signature.
const (
	vectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTS     = int64(1614265330)
	vectorBody   = `{"test": 2432232314}`
	vectorSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

// otherSecret is a second key: nothing signed with the vector's key may
// verify with it.
const otherSecret = "whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA=="

var vectorTime = time.Unix(vectorTS, 0)

func mustSecret(t testing.TB, s string) sign.Secret {
	t.Helper()
	sec, err := sign.ParseSecret(s)
	if err != nil {
		t.Fatalf("ParseSecret: %v", err)
	}
	return sec
}

func keyOf(t testing.TB, s string) []byte {
	t.Helper()
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// webhookHeaders builds the three headers as a receiving net/http server
// sees them (canonical names).
func webhookHeaders(id, ts, sig string) http.Header {
	h := http.Header{}
	h.Set("Webhook-Id", id)
	h.Set("Webhook-Timestamp", ts)
	h.Set("Webhook-Signature", sig)
	return h
}

func vectorHeaders() http.Header {
	return webhookHeaders(vectorID, strconv.FormatInt(vectorTS, 10), vectorSig)
}

func TestWebhookStandardVector(t *testing.T) {
	s := mustSecret(t, vectorSecret)
	if got := s.Webhook(vectorID, vectorTS, []byte(vectorBody)); got != vectorSig {
		t.Errorf("Webhook(vector) = %s, want %s", got, vectorSig)
	}
	id, err := s.VerifyWebhook(vectorHeaders(), []byte(vectorBody), vectorTime)
	if err != nil || id != vectorID {
		t.Errorf("VerifyWebhook(vector) = %q, %v; want %q", id, err, vectorID)
	}
	if _, err := mustSecret(t, otherSecret).VerifyWebhook(vectorHeaders(), []byte(vectorBody), vectorTime); !errors.Is(err, sign.ErrBadSignature) {
		t.Errorf("vector verified with another secret: %v", err)
	}
}

func TestWebhookRoundTrip(t *testing.T) {
	s := mustSecret(t, sign.NewSecret())
	now := time.Date(2026, 11, 21, 7, 0, 0, 0, time.UTC)
	for _, body := range [][]byte{
		[]byte(`{"type":"order.paid","data":{"order_id":"1234567","amount":"75.00"}}`),
		{},
		[]byte("not json at all \x00\xff"),
		[]byte(strings.Repeat("x", 20000)),
	} {
		h := http.Header{}
		s.SetWebhookHeaders(h, "msg_2Lq8e", now, body)
		// Standard Webhooks names are lower-case, and so they are written.
		if got := h["webhook-timestamp"]; len(got) != 1 || got[0] != strconv.FormatInt(now.Unix(), 10) {
			t.Errorf("webhook-timestamp = %q", got)
		}
		if got := h["webhook-signature"]; len(got) != 1 || !regexp.MustCompile(`^v1,[A-Za-z0-9+/]{43}=$`).MatchString(got[0]) {
			t.Errorf("webhook-signature = %q, want v1,<base64 of 32 bytes>", got)
		}
		if got := h["webhook-id"]; len(got) != 1 || got[0] != "msg_2Lq8e" {
			t.Errorf("webhook-id = %q", got)
		}
		id, err := s.VerifyWebhook(h, body, now)
		if err != nil || id != "msg_2Lq8e" {
			t.Errorf("round trip (lower-case header keys) = %q, %v", id, err)
		}
		// The same message after a trip over the wire, where header names
		// arrive canonicalised.
		h2 := webhookHeaders(h["webhook-id"][0], h["webhook-timestamp"][0], h["webhook-signature"][0])
		if _, err := s.VerifyWebhook(h2, body, now.Add(time.Minute)); err != nil {
			t.Errorf("round trip (canonical header keys): %v", err)
		}
	}
}

func TestWebhookTolerance(t *testing.T) {
	s := mustSecret(t, vectorSecret)
	for _, tc := range []struct {
		skew time.Duration // now minus the signed timestamp
		ok   bool
	}{
		{0, true},
		{299 * time.Second, true}, {-299 * time.Second, true},
		{300 * time.Second, true}, {-300 * time.Second, true},
		{301 * time.Second, false}, {-301 * time.Second, false},
		{72 * time.Hour, false}, {-72 * time.Hour, false},
	} {
		_, err := s.VerifyWebhook(vectorHeaders(), []byte(vectorBody), vectorTime.Add(tc.skew))
		if tc.ok && err != nil {
			t.Errorf("skew %v: %v, want accepted", tc.skew, err)
		}
		if !tc.ok && !errors.Is(err, sign.ErrStale) {
			t.Errorf("skew %v: %v, want ErrStale", tc.skew, err)
		}
	}
	// A timestamp far outside time's range is stale, not a panic.
	for _, ts := range []string{"9223372036854775807", "-9223372036854775808", "0"} {
		h := webhookHeaders(vectorID, ts, vectorSig)
		if _, err := s.VerifyWebhook(h, []byte(vectorBody), vectorTime); !errors.Is(err, sign.ErrStale) {
			t.Errorf("timestamp %s: %v, want ErrStale", ts, err)
		}
	}
}

func TestWebhookRotation(t *testing.T) {
	s := mustSecret(t, vectorSecret)
	good := strings.TrimPrefix(vectorSig, "v1,")
	old := strings.TrimPrefix(mustSecret(t, otherSecret).Webhook(vectorID, vectorTS, []byte(vectorBody)), "v1,")
	bad := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, tc := range []struct {
		name string
		sigs []string // one header line each
		ok   bool
	}{
		{"old-valid-new-valid", []string{"v1," + old + " v1," + good}, true},
		{"new-valid-old-valid", []string{"v1," + good + " v1," + old}, true},
		{"invalid-then-valid", []string{"v1," + bad + " v1," + good}, true},
		{"v1a-unknown-then-valid", []string{"v1a,x v1," + good}, true},
		{"v1a-with-valid-mac-only", []string{"v1a," + good}, false},
		{"v0-valid-looking-only", []string{"v0," + good}, false},
		{"V1-uppercase-only", []string{"V1," + good}, false},
		{"no-version", []string{good}, false},
		{"empty-signature", []string{"v1,"}, false},
		{"only-other-key", []string{"v1," + old}, false},
		{"valid-in-second-header-line", []string{"v1," + bad, "v1," + good}, true},
		{"garbage-then-valid", []string{"%%% ,,, v1,!!! v1," + good}, true},
		{"truncated", []string{"v1," + good[:len(good)-2]}, false},
		{"comma-separated-not-space", []string{"v1," + bad + ",v1," + good}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := webhookHeaders(vectorID, strconv.FormatInt(vectorTS, 10), "")
			h.Del("Webhook-Signature")
			for _, l := range tc.sigs {
				h.Add("Webhook-Signature", l)
			}
			_, err := s.VerifyWebhook(h, []byte(vectorBody), vectorTime)
			if tc.ok && err != nil {
				t.Errorf("%v refused: %v", tc.sigs, err)
			}
			if !tc.ok && !errors.Is(err, sign.ErrBadSignature) {
				t.Errorf("%v: %v, want ErrBadSignature", tc.sigs, err)
			}
		})
	}
}

func TestWebhookMalformedHeaders(t *testing.T) {
	s := mustSecret(t, vectorSecret)
	ts := strconv.FormatInt(vectorTS, 10)
	for _, tc := range []struct {
		name string
		edit func(http.Header)
		want error
	}{
		{"no-id", func(h http.Header) { h.Del("Webhook-Id") }, sign.ErrNoSignature},
		{"no-timestamp", func(h http.Header) { h.Del("Webhook-Timestamp") }, sign.ErrNoSignature},
		{"no-signature", func(h http.Header) { h.Del("Webhook-Signature") }, sign.ErrNoSignature},
		{"none", func(h http.Header) { clear(h) }, sign.ErrNoSignature},
		{"two-timestamps", func(h http.Header) { h.Add("Webhook-Timestamp", ts) }, sign.ErrMalformed},
		{"two-timestamps-differing", func(h http.Header) { h.Add("Webhook-Timestamp", strconv.FormatInt(vectorTS+1, 10)) }, sign.ErrMalformed},
		{"two-ids", func(h http.Header) { h.Add("Webhook-Id", "msg_other") }, sign.ErrMalformed},
		{"empty-id", func(h http.Header) { h.Set("Webhook-Id", "") }, sign.ErrMalformed},
		{"id-with-dot", func(h http.Header) { h.Set("Webhook-Id", "msg.1") }, sign.ErrMalformed},
		{"id-with-newline", func(h http.Header) { h.Set("Webhook-Id", "msg\n1") }, sign.ErrMalformed},
		{"timestamp-not-a-number", func(h http.Header) { h.Set("Webhook-Timestamp", "yesterday") }, sign.ErrMalformed},
		{"timestamp-empty", func(h http.Header) { h.Set("Webhook-Timestamp", "") }, sign.ErrMalformed},
		{"timestamp-float", func(h http.Header) { h.Set("Webhook-Timestamp", ts+".0") }, sign.ErrMalformed},
		{"timestamp-comma-joined", func(h http.Header) { h.Set("Webhook-Timestamp", ts+", "+ts) }, sign.ErrMalformed},
		// Other spellings of the same number are not the bytes that were
		// signed: refused, so that no two header values share a signature.
		{"timestamp-plus-sign", func(h http.Header) { h.Set("Webhook-Timestamp", "+"+ts) }, sign.ErrMalformed},
		{"timestamp-leading-zero", func(h http.Header) { h.Set("Webhook-Timestamp", "0"+ts) }, sign.ErrMalformed},
		{"timestamp-spaces", func(h http.Header) { h.Set("Webhook-Timestamp", " "+ts) }, sign.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := vectorHeaders()
			tc.edit(h)
			if _, err := s.VerifyWebhook(h, []byte(vectorBody), vectorTime); !errors.Is(err, tc.want) {
				t.Errorf("VerifyWebhook = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestWebhookBodyReserialised(t *testing.T) {
	s := mustSecret(t, vectorSecret)
	// The same JSON value, written differently: the signature covers
	// bytes, not meaning.
	var v any
	if err := json.Unmarshal([]byte(vectorBody), &v); err != nil {
		t.Fatal(err)
	}
	compact, _ := json.Marshal(v) // {"test":2432232314}
	for _, body := range []string{
		string(compact),
		`{"test":  2432232314}`,
		`{"test": 2432232314}` + "\n",
		` {"test": 2432232314}`,
		`{"test": 2432232314.0}`,
		`{"test": 2432232314, "extra": 1}`,
		"",
	} {
		if _, err := s.VerifyWebhook(vectorHeaders(), []byte(body), vectorTime); !errors.Is(err, sign.ErrBadSignature) {
			t.Errorf("body %q: %v, want ErrBadSignature", body, err)
		}
	}
}

// mutations yields every single-byte change of s: each byte replaced by
// every other value, each byte deleted, and a byte inserted at each place.
func mutations(s string, yield func(string)) {
	for i := 0; i < len(s); i++ {
		b := []byte(s)
		for v := 0; v < 256; v++ {
			if byte(v) == s[i] {
				continue
			}
			b[i] = byte(v)
			yield(string(b))
		}
		yield(s[:i] + s[i+1:])
	}
	for i := 0; i <= len(s); i++ {
		for _, c := range []byte{'0', '+', ' ', '.', 'a', 0, 0xff} {
			yield(s[:i] + string(c) + s[i:])
		}
	}
}

func TestWebhookSingleByteMutations(t *testing.T) {
	s := mustSecret(t, vectorSecret)
	ts := strconv.FormatInt(vectorTS, 10)
	n := 0
	check := func(what, id, ts, sig, body string) {
		n++
		if _, err := s.VerifyWebhook(webhookHeaders(id, ts, sig), []byte(body), vectorTime.Add(time.Second)); err == nil {
			t.Errorf("mutated %s verified: id=%q ts=%q sig=%q body=%q", what, id, ts, sig, body)
		}
	}
	mutations(vectorBody, func(m string) { check("body", vectorID, ts, vectorSig, m) })
	mutations(vectorID, func(m string) { check("id", m, ts, vectorSig, vectorBody) })
	mutations(ts, func(m string) { check("timestamp", vectorID, m, vectorSig, vectorBody) })
	mutations(vectorSig, func(m string) {
		// A second entry after a space is another signature, and inserting
		// a space at the very end or start leaves the valid one intact.
		if strings.Fields(m)[0] == vectorSig || strings.TrimSpace(m) == vectorSig {
			return
		}
		check("signature", vectorID, ts, m, vectorBody)
	})
	t.Logf("%d mutations refused", n)
}

func TestHeaders(t *testing.T) {
	s := mustSecret(t, vectorSecret)
	now := time.Unix(1795000000, 0)
	f := sign.Fields{Method: "GET", Path: "/orders/1234567/thanks", Order: "1234567", Status: "paid",
		Amount: "75.00", Currency: "USD", Transaction: "pi_3Nx"}
	sig := s.Headers(now, f)

	// SPEC §6.2, computed here from its text.
	m := hmac.New(sha256.New, keyOf(t, vectorSecret))
	m.Write([]byte("1795000000\nGET\n/orders/1234567/thanks\n1234567\npaid\n75.00\nUSD\npi_3Nx"))
	if want := "t=1795000000,v1=" + hex.EncodeToString(m.Sum(nil)); sig != want {
		t.Errorf("Headers = %s, want %s", sig, want)
	}
	if err := s.VerifyHeaders(sig, f, now, time.Minute); err != nil {
		t.Errorf("VerifyHeaders round trip: %v", err)
	}
	if err := mustSecret(t, otherSecret).VerifyHeaders(sig, f, now, time.Minute); !errors.Is(err, sign.ErrBadSignature) {
		t.Errorf("verified with another secret: %v", err)
	}

	// Every field is covered.
	edits := map[string]func(*sign.Fields){
		"Method":      func(f *sign.Fields) { f.Method = "POST" },
		"Path":        func(f *sign.Fields) { f.Path = "/orders/1234568/thanks" },
		"Order":       func(f *sign.Fields) { f.Order = "1234568" },
		"Status":      func(f *sign.Fields) { f.Status = "pending" },
		"Amount":      func(f *sign.Fields) { f.Amount = "7.50" },
		"Currency":    func(f *sign.Fields) { f.Currency = "JPY" },
		"Transaction": func(f *sign.Fields) { f.Transaction = "" },
	}
	seen := map[string]string{sig: "original"}
	for name, edit := range edits {
		g := f
		edit(&g)
		if err := s.VerifyHeaders(sig, g, now, time.Minute); !errors.Is(err, sign.ErrBadSignature) {
			t.Errorf("%s changed, the old signature: %v, want ErrBadSignature", name, err)
		}
		other := s.Headers(now, g)
		if prev, dup := seen[other]; dup {
			t.Errorf("changing %s gives the same signature as %s", name, prev)
		}
		seen[other] = name
	}
	later := s.Headers(now.Add(time.Second), f)
	if later == sig {
		t.Error("the timestamp does not change the signature")
	}
	// Swapping in another timestamp with the old MAC fails.
	forged := "t=1795000001," + strings.SplitN(sig, ",", 2)[1]
	if err := s.VerifyHeaders(forged, f, now, time.Minute); !errors.Is(err, sign.ErrBadSignature) {
		t.Errorf("moved timestamp: %v", err)
	}

	// Tolerance, both directions.
	for _, tc := range []struct {
		skew time.Duration
		ok   bool
	}{{59 * time.Second, true}, {-59 * time.Second, true}, {61 * time.Second, false}, {-61 * time.Second, false}} {
		err := s.VerifyHeaders(sig, f, now.Add(tc.skew), time.Minute)
		if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, sign.ErrStale)) {
			t.Errorf("skew %v: %v", tc.skew, err)
		}
	}

	for _, bad := range []string{"", "v1=" + strings.Repeat("0", 64), "t=1795000000", "t=x,v1=00", "t=1795000000,v1=zz", "t=1795000000,v1="} {
		if err := s.VerifyHeaders(bad, f, now, time.Minute); !errors.Is(err, sign.ErrMalformed) {
			t.Errorf("VerifyHeaders(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"abcXYZ019":   "abcXYZ019",
		"-._~":        "-._~",
		"a b":         "a%20b",
		"a+b":         "a%2Bb",
		"é":           "%C3%A9",
		"注文":          "%E6%B3%A8%E6%96%87",
		"/?#[]@":      "%2F%3F%23%5B%5D%40",
		"!$&'()*,;=":  "%21%24%26%27%28%29%2A%2C%3B%3D",
		"%":           "%25",
		"\x00\n\xff":  "%00%0A%FF",
		"75.00":       "75.00",
		"":            "",
		"0xBTC":       "0xBTC",
		"hello world": "hello%20world",
	} {
		if got := sign.Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCanonical(t *testing.T) {
	for _, tc := range []struct {
		q    url.Values
		want string
	}{
		{url.Values{"order": {"1234567"}, "amount": {"75.00"}, "currency": {"USD"}, "exp": {"1795000000"}},
			"amount=75.00&currency=USD&exp=1795000000&order=1234567"},
		{url.Values{"order": {"1"}, "sig": {"abc"}, "description": {"Two books + a pen ~ 50% off"}},
			"description=Two%20books%20%2B%20a%20pen%20~%2050%25%20off&order=1"},
		{url.Values{"description": {"Café 注文"}}, "description=Caf%C3%A9%20%E6%B3%A8%E6%96%87"},
		{url.Values{"b": {"2", "1"}, "a": {""}, "a b": {"x"}}, "a=&a%20b=x&b=1&b=2"},
		{url.Values{"email": {"a+b@example.com"}}, "email=a%2Bb%40example.com"},
		{url.Values{}, ""},
	} {
		if got := sign.Canonical(tc.q); got != tc.want {
			t.Errorf("Canonical(%v) = %q, want %q", tc.q, got, tc.want)
		}
	}
}

func linkQuery() url.Values {
	return url.Values{
		"order":       {"1234567"},
		"amount":      {"75.00"},
		"currency":    {"USD"},
		"description": {"Café order + gift wrap ~ “fast”"},
		"email":       {"a+b@example.com"},
		"provider":    {"stripe"},
	}
}

func TestLinkRoundTrip(t *testing.T) {
	s := mustSecret(t, vectorSecret)
	exp := time.Unix(1795000000, 0)
	raw := s.SignLink(linkQuery(), exp)

	// SPEC §4.2 computed here from its text.
	canon := "amount=75.00&currency=USD&description=Caf%C3%A9%20order%20%2B%20gift%20wrap%20~%20%E2%80%9Cfast%E2%80%9D" +
		"&email=a%2Bb%40example.com&exp=1795000000&order=1234567&provider=stripe"
	m := hmac.New(sha256.New, keyOf(t, vectorSecret))
	m.Write([]byte(canon))
	if want := canon + "&sig=" + hex.EncodeToString(m.Sum(nil)); raw != want {
		t.Errorf("SignLink =\n%s\nwant\n%s", raw, want)
	}

	q, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := q.Get("description"); got != linkQuery().Get("description") {
		t.Errorf("description came back as %q", got)
	}
	if err := s.VerifyLink(q, exp.Add(-time.Second)); err != nil {
		t.Errorf("VerifyLink round trip: %v", err)
	}
	// The same link in a full URL, parameters in another order.
	u, _ := url.Parse("https://shop.example.com/_checkout/start?sig=" + q.Get("sig") + "&" + strings.Split(raw, "&sig=")[0])
	if err := s.VerifyLink(u.Query(), exp.Add(-time.Hour)); err != nil {
		t.Errorf("VerifyLink of a reordered URL: %v", err)
	}
	if err := mustSecret(t, otherSecret).VerifyLink(q, exp.Add(-time.Second)); !errors.Is(err, sign.ErrBadSignature) {
		t.Errorf("verified with another secret: %v", err)
	}
	// SignLink does not modify its argument, and ignores a sig in it.
	in := linkQuery()
	in.Set("sig", "00")
	if s.SignLink(in, exp) != raw || in.Get("sig") != "00" || in.Has("exp") {
		t.Error("SignLink depends on or changes the sig/exp of its input")
	}
}

func TestLinkRefused(t *testing.T) {
	s := mustSecret(t, vectorSecret)
	exp := time.Unix(1795000000, 0)
	before := exp.Add(-time.Minute)
	signed := func() url.Values {
		q, err := url.ParseQuery(s.SignLink(linkQuery(), exp))
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	for _, tc := range []struct {
		name string
		edit func(url.Values)
		now  time.Time
		want error
	}{
		{"amount-changed", func(q url.Values) { q.Set("amount", "0.01") }, before, sign.ErrBadSignature},
		{"currency-changed", func(q url.Values) { q.Set("currency", "JPY") }, before, sign.ErrBadSignature},
		{"order-changed", func(q url.Values) { q.Set("order", "1234568") }, before, sign.ErrBadSignature},
		{"exp-extended", func(q url.Values) { q.Set("exp", "1895000000") }, before, sign.ErrBadSignature},
		{"param-added", func(q url.Values) { q.Set("provider2", "x") }, before, sign.ErrBadSignature},
		{"param-repeated", func(q url.Values) { q.Add("amount", "0.01") }, before, sign.ErrBadSignature},
		{"param-removed", func(q url.Values) { q.Del("description") }, before, sign.ErrBadSignature},
		{"sig-changed", func(q url.Values) { q.Set("sig", strings.Repeat("0", 64)) }, before, sign.ErrBadSignature},
		{"sig-truncated", func(q url.Values) { q.Set("sig", q.Get("sig")[:62]) }, before, sign.ErrBadSignature},
		{"expired-exactly", func(url.Values) {}, exp, sign.ErrExpired},
		{"expired-later", func(url.Values) {}, exp.Add(24 * time.Hour), sign.ErrExpired},
		{"no-sig", func(q url.Values) { q.Del("sig") }, before, sign.ErrNoSignature},
		{"two-sigs", func(q url.Values) { q.Add("sig", q.Get("sig")) }, before, sign.ErrMalformed},
		{"two-exps", func(q url.Values) { q.Add("exp", q.Get("exp")) }, before, sign.ErrMalformed},
		{"no-exp", func(q url.Values) { q.Del("exp") }, before, sign.ErrMalformed},
		{"sig-not-hex", func(q url.Values) { q.Set("sig", "zz") }, before, sign.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := signed()
			tc.edit(q)
			if err := s.VerifyLink(q, tc.now); !errors.Is(err, tc.want) {
				t.Errorf("VerifyLink = %v, want %v", err, tc.want)
			}
		})
	}
	// An exp that is not a number, properly signed: malformed, not a panic.
	q := linkQuery()
	q.Set("exp", "soon")
	q.Set("sig", s.Link(q))
	if err := s.VerifyLink(q, before); !errors.Is(err, sign.ErrMalformed) {
		t.Errorf("signed exp=soon: %v, want ErrMalformed", err)
	}
}

func TestToken(t *testing.T) {
	s := mustSecret(t, vectorSecret)
	exp := time.Unix(1795000000, 0)
	before := exp.Add(-time.Second)
	tok := s.Token("return", "ref-abc", exp)
	if !regexp.MustCompile(`^1795000000\.[A-Za-z0-9_-]{24}$`).MatchString(tok) {
		t.Errorf("Token = %q, want <exp>.<24 URL-safe characters>", tok)
	}
	if err := s.VerifyToken(tok, "return", "ref-abc", before); err != nil {
		t.Errorf("VerifyToken round trip: %v", err)
	}
	for _, tc := range []struct {
		name, tok, purpose, subject string
		now                         time.Time
		want                        error
	}{
		{"wrong-purpose", tok, "csrf", "ref-abc", before, sign.ErrBadSignature},
		{"wrong-subject", tok, "return", "ref-abd", before, sign.ErrBadSignature},
		{"empty-subject", tok, "return", "", before, sign.ErrBadSignature},
		{"purpose-subject-swapped", tok, "ref-abc", "return", before, sign.ErrBadSignature},
		{"exp-changed", "1895000000" + tok[10:], "return", "ref-abc", before, sign.ErrBadSignature},
		{"expired-exactly", tok, "return", "ref-abc", exp, sign.ErrExpired},
		{"expired-later", tok, "return", "ref-abc", exp.Add(time.Hour), sign.ErrExpired},
		{"other-secret", mustSecret(t, otherSecret).Token("return", "ref-abc", exp), "return", "ref-abc", before, sign.ErrBadSignature},
		{"no-dot", "1795000000", "return", "ref-abc", before, sign.ErrMalformed},
		{"empty", "", "return", "ref-abc", before, sign.ErrMalformed},
		{"exp-not-number", "soon" + tok[10:], "return", "ref-abc", before, sign.ErrMalformed},
		{"mac-not-base64url", tok[:11] + "!!!!", "return", "ref-abc", before, sign.ErrMalformed},
		{"mac-truncated", tok[:len(tok)-4], "return", "ref-abc", before, sign.ErrBadSignature},
	} {
		if err := s.VerifyToken(tc.tok, tc.purpose, tc.subject, tc.now); !errors.Is(err, tc.want) {
			t.Errorf("%s: VerifyToken = %v, want %v", tc.name, err, tc.want)
		}
	}
	mutations(tok, func(m string) {
		if s.VerifyToken(m, "return", "ref-abc", before) == nil {
			t.Errorf("mutated token %q verified", m)
		}
	})
}

func TestParseSecret(t *testing.T) {
	for _, n := range []int{24, 32, 64} {
		raw := "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, n))
		if _, err := sign.ParseSecret(raw); err != nil {
			t.Errorf("a %d-byte secret: %v", n, err)
		}
	}
	fresh := sign.NewSecret()
	if s, err := sign.ParseSecret(fresh); err != nil || s.IsZero() {
		t.Errorf("NewSecret() does not parse: %v", err)
	}
	if fresh == sign.NewSecret() {
		t.Error("NewSecret returned the same secret twice")
	}
	if k := keyOf(t, fresh); len(k) != 32 {
		t.Errorf("NewSecret key is %d bytes, want 32", len(k))
	}
	var zero sign.Secret
	if !zero.IsZero() {
		t.Error("the zero Secret is not IsZero")
	}

	for _, bad := range []string{
		"",
		"sk_live_51HqSECRETVALUEdonotlog",
		"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",        // the base64 without its prefix
		"WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  // wrong case
		" whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", // leading space
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa",    // 27 bytes of base64: bad length
		"whsec_c2hvcnQtc2VjcmV0LXZhbHVl",          // valid base64, 18 bytes
		"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 23)),
		"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 65)),
		"whsec_" + base64.URLEncoding.EncodeToString([]byte("\xfb\xff\xfe secret bytes that are url-safe")),
		"whsec_not base64 but SECRET-ish words",
		"whsec_",
	} {
		_, err := sign.ParseSecret(bad)
		if err == nil {
			t.Errorf("ParseSecret(%q) accepted", bad)
			continue
		}
		msg := err.Error()
		if bad != "" && strings.Contains(msg, bad) {
			t.Errorf("ParseSecret error %q contains the secret %q", msg, bad)
		}
		rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(bad), "whsec_"))
		for i := 0; i+8 <= len(rest); i++ {
			if strings.Contains(msg, rest[i:i+8]) {
				t.Errorf("ParseSecret error %q contains part of the secret (%q)", msg, rest[i:i+8])
				break
			}
		}
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	raw := vectorSecret
	s := mustSecret(t, raw)
	key := keyOf(t, raw)
	forbidden := []string{
		raw, strings.TrimPrefix(raw, "whsec_"), hex.EncodeToString(key), fmt.Sprintf("%X", key),
		fmt.Sprint(key), fmt.Sprintf("%v", key[:4]), fmt.Sprintf("%d", key[:4]), string(key),
		fmt.Sprintf("%x", key[:4]), fmt.Sprintf("%q", key[:4]),
	}
	type config struct {
		Name   string
		Secret sign.Secret
		Ptr    *sign.Secret
	}
	// fmt cannot call String on unexported fields: it prints their
	// contents, as for a site handler whose config holds the secret.
	type handler struct {
		name string
		cfg  config
		sec  sign.Secret
	}
	c := config{Name: "shop", Secret: s, Ptr: &s}
	hd := handler{name: "shop", cfg: c, sec: s}
	outputs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		outputs[verb] = fmt.Sprintf(verb, s)
		outputs[verb+" pointer"] = fmt.Sprintf(verb, &s)
		outputs[verb+" in a struct"] = fmt.Sprintf(verb, c)
		outputs[verb+" in unexported fields"] = fmt.Sprintf(verb, hd)
		outputs[verb+" in unexported fields, pointer"] = fmt.Sprintf(verb, &hd)
	}
	outputs["Sprint"] = fmt.Sprint(s)
	outputs["Sprintln"] = fmt.Sprintln(s, &s)
	b, _ := json.Marshal(c)
	outputs["json"] = string(b)
	for name, out := range outputs {
		for _, f := range forbidden {
			if strings.Contains(out, f) {
				t.Errorf("%s shows the key: %s", name, out)
				break
			}
		}
	}
	if got := fmt.Sprintf("%v", s); got != "whsec_(redacted)" {
		t.Errorf("%%v = %q, want whsec_(redacted)", got)
	}
}

// FuzzVerifyWebhook feeds arbitrary headers and bodies to VerifyWebhook:
// it must never panic, never accept anything under a key the input was
// not signed with, and accept under the signing key only when a v1 entry
// carries the true MAC.
func FuzzVerifyWebhook(f *testing.F) {
	ts := strconv.FormatInt(vectorTS, 10)
	f.Add(vectorID, ts, vectorSig, []byte(vectorBody), uint8(0))
	f.Add(vectorID, ts, "v1a,x "+vectorSig, []byte(vectorBody), uint8(1))
	f.Add(vectorID, ts, "v0,"+vectorSig[3:], []byte(vectorBody), uint8(2))
	f.Add(vectorID, ts, vectorSig, []byte(vectorBody), uint8(3))
	f.Add("", "", "", []byte{}, uint8(4))
	f.Add("msg.1", "+"+ts, "v1,====", []byte("\x00\xff"), uint8(0))
	f.Add(vectorID, "9223372036854775807", "v1,"+strings.Repeat("A", 44), []byte(vectorBody), uint8(0))
	signer := mustSecret(f, vectorSecret)
	other := mustSecret(f, otherSecret)
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte, shape uint8) {
		h := http.Header{}
		switch shape % 5 {
		case 0: // as net/http delivers them
			h = webhookHeaders(id, ts, sig)
		case 1: // as SetWebhookHeaders writes them
			h["webhook-id"], h["webhook-timestamp"], h["webhook-signature"] = []string{id}, []string{ts}, []string{sig}
		case 2: // several signature lines
			h = webhookHeaders(id, ts, sig)
			h.Add("Webhook-Signature", sig+" v1,AAAA")
		case 3: // duplicate id and timestamp
			h = webhookHeaders(id, ts, sig)
			h.Add("Webhook-Id", id)
			h.Add("Webhook-Timestamp", ts)
		case 4: // a header missing
			h.Set("Webhook-Signature", sig)
			h.Set("Webhook-Id", id)
		}
		now := vectorTime
		if n, err := strconv.ParseInt(ts, 10, 64); err == nil && n > -1<<40 && n < 1<<40 {
			now = time.Unix(n, 0) // inside the tolerance, so the MAC is what decides
		}
		if gotID, err := other.VerifyWebhook(h, body, now); err == nil {
			t.Fatalf("verified under a key it was not signed with: id=%q ts=%q sig=%q", gotID, ts, sig)
		}
		gotID, err := signer.VerifyWebhook(h, body, now)
		if err != nil {
			return
		}
		if gotID != id || shape%5 == 3 || shape%5 == 4 {
			t.Fatalf("accepted shape %d with id %q (header id %q)", shape%5, gotID, id)
		}
		n, perr := strconv.ParseInt(ts, 10, 64)
		if perr != nil || strconv.FormatInt(n, 10) != ts {
			t.Fatalf("accepted a non-canonical timestamp %q", ts)
		}
		want := signer.Webhook(id, n, body)
		found := false
		for _, line := range append(h.Values("Webhook-Signature"), h["webhook-signature"]...) {
			for _, e := range strings.Fields(line) {
				if e == want {
					found = true
				}
			}
		}
		if !found {
			t.Fatalf("accepted signature %q, which does not carry the MAC %s", sig, want)
		}
	})
}

// FuzzVerifyLink feeds arbitrary query strings to VerifyLink: no panic, no
// acceptance under a foreign key, and whatever parameters the query holds,
// signing them and parsing the result verifies.
func FuzzVerifyLink(f *testing.F) {
	s := mustSecret(f, vectorSecret)
	other := mustSecret(f, otherSecret)
	exp := time.Unix(1795000000, 0)
	f.Add(s.SignLink(linkQuery(), exp))
	f.Add("order=1&amount=75.00&currency=USD&exp=1795000000&sig=00")
	f.Add("sig=&sig=&exp=")
	f.Add("a=%zz&exp=1&sig=0")
	f.Add("=&==&%20=+&exp=1795000000&sig=" + strings.Repeat("a", 64))
	f.Add("description=%E2%80%9C+%2B~&exp=-1&sig=x")
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw) // a partial parse is still input
		now := exp.Add(-time.Hour)
		if err := other.VerifyLink(q, now); err == nil {
			t.Fatalf("%q verified under a foreign key", raw)
		}
		_ = s.VerifyLink(q, now)
		_ = sign.Canonical(q)

		signed := s.SignLink(q, exp)
		back, err := url.ParseQuery(signed)
		if err != nil {
			t.Fatalf("SignLink output %q does not parse: %v", signed, err)
		}
		if err := s.VerifyLink(back, now); err != nil {
			t.Fatalf("SignLink(%q) = %q does not verify: %v", raw, signed, err)
		}
		if err := other.VerifyLink(back, now); err == nil {
			t.Fatalf("SignLink(%q) verifies under a foreign key", raw)
		}
	})
}

func TestSecretEqual(t *testing.T) {
	s := mustSecret(t, vectorSecret)
	if !s.Equal(vectorSecret, time.Now()) {
		t.Error("a secret is not Equal to its own text")
	}
	for _, other := range []string{otherSecret, "", "whsec_", strings.TrimPrefix(vectorSecret, "whsec_"), vectorSecret + "x"} {
		if s.Equal(other, time.Now()) {
			t.Errorf("Equal(%q) = true", other)
		}
	}
	var zero sign.Secret
	if zero.Equal(vectorSecret, time.Now()) {
		t.Error("the zero Secret is Equal to a real one")
	}
}

// A rotation: while the previous secret's window lasts, everything it
// signed (links, tokens, shop headers, webhooks, the bearer) verifies, as
// does everything the current one signs; new signatures are the current
// secret's; callbacks carry both signatures, so a shop verifying with
// either secret accepts them. After the window the previous one verifies
// nothing and callbacks carry one signature.
func TestRotationVerifiesBothSecretsUntilTheEnd(t *testing.T) {
	cur, prev := mustSecret(t, otherSecret), mustSecret(t, vectorSecret)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	until := now.Add(7 * 24 * time.Hour)
	s := cur.WithPrevious(prev, until)
	after := until.Add(time.Second)

	f := sign.Fields{Method: "GET", Path: "/thanks", Order: "1", Status: "paid", Amount: "5.00", Currency: "USD"}
	q := url.Values{"order": {"1"}, "amount": {"5.00"}, "currency": {"USD"}}
	signedBy := map[string]sign.Secret{"previous": prev, "current": cur}
	for name, k := range signedBy {
		link, _ := url.ParseQuery(k.SignLink(q, until.Add(time.Hour)))
		tok := k.Token("return", "ref1", until.Add(time.Hour))
		for _, at := range []time.Time{now, until.Add(-time.Second), after} {
			want := name == "current" || at.Before(until)
			h := http.Header{}
			k.SetWebhookHeaders(h, "msg_1", at, []byte(`{}`))
			checks := map[string]error{
				"link":    s.VerifyLink(link, at),
				"token":   s.VerifyToken(tok, "return", "ref1", at),
				"headers": s.VerifyHeaders(k.Headers(at, f), f, at, time.Minute),
			}
			_, checks["webhook"] = s.VerifyWebhook(h, []byte(`{}`), at)
			for what, err := range checks {
				if (err == nil) != want {
					t.Errorf("%s signed by the %s secret, at %s: %v; want accepted %v", what, name, at.Format(time.RFC3339), err, want)
				}
			}
			if got := s.Equal(map[string]string{"previous": vectorSecret, "current": otherSecret}[name], at); got != want {
				t.Errorf("the %s secret as bearer at %s: %v, want %v", name, at.Format(time.RFC3339), got, want)
			}
		}
	}

	// What the rotating secret signs is the current secret's.
	if got, want := s.SignLink(q, until), cur.SignLink(q, until); got != want {
		t.Errorf("a new link is not signed with the current secret")
	}
	if prev.VerifyToken(s.Token("return", "ref1", until), "return", "ref1", now) == nil {
		t.Errorf("a new token verifies with the previous secret")
	}
	// Callbacks: both signatures in the window, so either verifier takes
	// them; the current one's only after it.
	h := http.Header{}
	s.SetWebhookHeaders(h, "msg_2", now, []byte(`{"a":1}`))
	if n := len(strings.Fields(h["webhook-signature"][0])); n != 2 {
		t.Fatalf("callback in the window has %d signatures, want 2", n)
	}
	for name, k := range signedBy {
		if _, err := k.VerifyWebhook(h, []byte(`{"a":1}`), now); err != nil {
			t.Errorf("a shop verifying with the %s secret refuses a callback in the window: %v", name, err)
		}
	}
	// Shop headers carry one v1 value, the current secret's, in the
	// window too: success pages written for one keep working.
	sig := s.Headers(now, f)
	if strings.Count(sig, ",v1=") != 1 || cur.VerifyHeaders(sig, f, now, time.Minute) != nil || prev.VerifyHeaders(sig, f, now, time.Minute) == nil {
		t.Errorf("shop headers in the window %q: want one v1 value, the current secret's", sig)
	}
	// A header with two v1 values verifies when either matches.
	two := sig + ",v1=" + strings.Repeat("0", 64)
	if err := cur.VerifyHeaders(two, f, now, time.Minute); err != nil {
		t.Errorf("a header with a second v1 value: %v", err)
	}
	h = http.Header{}
	s.SetWebhookHeaders(h, "msg_3", after, []byte(`{"a":1}`))
	if n := len(strings.Fields(h["webhook-signature"][0])); n != 1 {
		t.Fatalf("callback after the window has %d signatures, want 1", n)
	}
	if _, err := prev.VerifyWebhook(h, []byte(`{"a":1}`), after); err == nil {
		t.Errorf("a callback after the window verifies with the previous secret")
	}
	// No end: the previous secret verifies for as long as it is configured.
	open := cur.WithPrevious(prev, time.Time{})
	if err := open.VerifyToken(prev.Token("p", "s", after.Add(1000*time.Hour)), "p", "s", after.Add(999*time.Hour)); err != nil {
		t.Errorf("a previous secret without an end refused: %v", err)
	}
}
