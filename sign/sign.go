// Package sign holds every HMAC of caddy-checkout: Standard Webhooks
// signatures on callbacks (and on the sandbox's own webhooks), the
// signature over the headers given to the shop, signed links, and the
// short tokens of return URLs and forms. All of them are keyed with the
// bytes of the site's whsec_ secret.
package sign

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Secret is a site secret: "whsec_" followed by base64 of 24-64 random
// bytes. Its String never shows the key.
//
// During a rotation it also holds the previous secret (WithPrevious):
// everything is signed with the current one, and what was signed with
// either verifies until the previous one's end. Callbacks carry both
// signatures meanwhile, so that a shop can switch its verifier at any
// time in the window.
//
// The keys sit behind funcs: fmt cannot call String on a Secret held in
// an unexported field (a handler's config, say) and prints the field's
// contents instead, which for a func is an address, never the key's bytes
// (a pointer would be followed, for %s and %q at least).
type Secret struct {
	key   func() []byte
	prev  func() []byte // the previous secret, during a rotation
	until time.Time     // the previous secret's end; zero: none
}

// WithPrevious returns s that also verifies what prev signed, until the
// given time (zero: for as long as it is configured).
func (s Secret) WithPrevious(prev Secret, until time.Time) Secret {
	s.prev, s.until = prev.key, until
	return s
}

// Rotating reports whether a previous secret still verifies at now.
func (s Secret) Rotating(now time.Time) bool {
	return s.prev != nil && (s.until.IsZero() || now.Before(s.until))
}

// verifiers are the secrets that verify at now: the current one, then
// the previous one during its window.
func (s Secret) verifiers(now time.Time) []Secret {
	if s.Rotating(now) {
		return []Secret{{key: s.key}, {key: s.prev}}
	}
	return []Secret{{key: s.key}}
}

// bytes is the key; nil for the zero Secret.
func (s Secret) bytes() []byte {
	if s.key == nil {
		return nil
	}
	return s.key()
}

const secretPrefix = "whsec_"

// ParseSecret reads a whsec_ secret. The error never contains the value.
func ParseSecret(s string) (Secret, error) {
	rest, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return Secret{}, errors.New("secret must start with whsec_ (make one with: caddy checkout secret)")
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return Secret{}, errors.New("secret: the part after whsec_ is not valid base64")
	}
	if len(key) < 24 || len(key) > 64 {
		return Secret{}, fmt.Errorf("secret: key must be 24-64 bytes, this one is %d", len(key))
	}
	return Secret{key: func() []byte { return key }}, nil
}

// NewSecret makes a fresh 32-byte secret.
func NewSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return secretPrefix + base64.StdEncoding.EncodeToString(b)
}

// IsZero reports whether the secret is unset.
func (s Secret) IsZero() bool { return len(s.bytes()) == 0 }

// String hides the key so that a secret can never reach a log by accident.
func (s Secret) String() string { return "whsec_(redacted)" }

// GoString hides the key from %#v too.
func (s Secret) GoString() string { return s.String() }

func (s Secret) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, s.bytes())
	for i, p := range parts {
		if i > 0 {
			m.Write([]byte{'\n'})
		}
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

// Errors of verification. They say what was wrong without echoing input.
var (
	ErrNoSignature  = errors.New("signature missing")
	ErrBadSignature = errors.New("signature does not verify")
	ErrStale        = errors.New("signature timestamp outside the tolerance")
	ErrMalformed    = errors.New("signature header malformed")
	ErrExpired      = errors.New("link expired")
)

// Tolerance is the Standard Webhooks timestamp window, in both directions.
const Tolerance = 5 * time.Minute

// Webhook returns the Standard Webhooks v1 signature ("v1,<base64>") of a
// message: HMAC-SHA256 over "id.timestamp.body".
func (s Secret) Webhook(id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, s.bytes())
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// SetWebhookHeaders sets webhook-id, webhook-timestamp and
// webhook-signature on h for body. During a rotation the signature header
// holds the current secret's signature and then the previous one's,
// separated by a space, as Standard Webhooks allows.
func (s Secret) SetWebhookHeaders(h http.Header, id string, now time.Time, body []byte) {
	ts := now.Unix()
	h["webhook-id"] = []string{id}
	h["webhook-timestamp"] = []string{strconv.FormatInt(ts, 10)}
	sigs := make([]string, 0, 2)
	for _, k := range s.verifiers(now) {
		sigs = append(sigs, k.Webhook(id, ts, body))
	}
	h["webhook-signature"] = []string{strings.Join(sigs, " ")}
}

func header(h http.Header, name string) []string {
	if v, ok := h[name]; ok {
		return v
	}
	return h.Values(name)
}

// VerifyWebhook checks Standard Webhooks headers on a raw body: exactly one
// id and timestamp, the timestamp within Tolerance of now, and any v1
// signature matching (several during secret rotation). It returns the
// message id.
func (s Secret) VerifyWebhook(h http.Header, body []byte, now time.Time) (string, error) {
	ids, tss, sigs := header(h, "webhook-id"), header(h, "webhook-timestamp"), header(h, "webhook-signature")
	if len(ids) == 0 || len(tss) == 0 || len(sigs) == 0 {
		return "", ErrNoSignature
	}
	if len(ids) != 1 || len(tss) != 1 || ids[0] == "" || strings.ContainsAny(ids[0], ".\r\n") {
		return "", ErrMalformed
	}
	ts, err := strconv.ParseInt(tss[0], 10, 64)
	if err != nil || strconv.FormatInt(ts, 10) != tss[0] {
		// "+1614265330" or "01614265330" are not the bytes that were
		// signed; accepting them would let two headers share a signature.
		return "", ErrMalformed
	}
	d := now.Sub(time.Unix(ts, 0))
	if d > Tolerance || d < -Tolerance {
		return "", ErrStale
	}
	var wantMACs [][]byte
	for _, k := range s.verifiers(now) {
		mac, _ := base64.StdEncoding.DecodeString(k.Webhook(ids[0], ts, body)[3:])
		wantMACs = append(wantMACs, mac)
	}
	for _, line := range sigs {
		for _, f := range strings.Fields(line) {
			ver, sig, ok := strings.Cut(f, ",")
			if !ok || ver != "v1" {
				continue // unknown schemes are ignored, never trusted
			}
			// Strict: unused low bits in the last character must be zero,
			// so one MAC has one spelling.
			got, err := base64.StdEncoding.Strict().DecodeString(sig)
			if err != nil {
				continue
			}
			for _, want := range wantMACs {
				if hmac.Equal(got, want) {
					return ids[0], nil
				}
			}
		}
	}
	return "", ErrBadSignature
}

// Fields are the values covered by the X-Checkout-Signature header, in the
// order of SPEC §6.2.
type Fields struct {
	Method, Path, Order, Status, Amount, Currency, Transaction string
}

// Headers returns "t=<unix>,v1=<hex>" for the shop headers of SPEC §6.2,
// signed with the current secret only, also during a rotation: success
// pages written for one v1 value (the README's snippets before rotation
// came) would refuse a header with two, so a shop accepts either secret
// in its own code for the window (README, "Rotating the secret").
func (s Secret) Headers(t time.Time, f Fields) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := s.mac(ts, f.Method, f.Path, f.Order, f.Status, f.Amount, f.Currency, f.Transaction)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac)
}

// VerifyHeaders checks a header signature as a shop would; tests and the
// demo shop use it. Any of its v1 values may match, as the README's
// snippets allow.
func (s Secret) VerifyHeaders(sig string, f Fields, now time.Time, tolerance time.Duration) error {
	var ts string
	var v1s [][]byte
	for _, part := range strings.Split(sig, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			got, err := hex.DecodeString(v)
			if err != nil || len(got) != sha256.Size {
				return ErrMalformed
			}
			v1s = append(v1s, got)
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(v1s) == 0 {
		return ErrMalformed
	}
	if d := now.Sub(time.Unix(t, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	for _, k := range s.verifiers(now) {
		want := k.mac(ts, f.Method, f.Path, f.Order, f.Status, f.Amount, f.Currency, f.Transaction)
		for _, got := range v1s {
			if hmac.Equal(got, want) {
				return nil
			}
		}
	}
	return ErrBadSignature
}

// Escape percent-encodes s as RFC 3986 does: everything but ALPHA, DIGIT
// and "-._~".
func Escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// Canonical is the signed form of a link's query: every parameter but sig,
// keys sorted (values too, for repeated keys), RFC 3986 encoded, joined
// with & and =.
func Canonical(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		if k != "sig" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vs := append([]string(nil), q[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			parts = append(parts, Escape(k)+"="+Escape(v))
		}
	}
	return strings.Join(parts, "&")
}

// Link returns the hex sig of a link query (SPEC §4.2).
func (s Secret) Link(q url.Values) string {
	m := hmac.New(sha256.New, s.bytes())
	m.Write([]byte(Canonical(q)))
	return hex.EncodeToString(m.Sum(nil))
}

// SignLink returns q with exp and sig added, as the canonical query string.
func (s Secret) SignLink(q url.Values, exp time.Time) string {
	q = cloneValues(q)
	q.Set("exp", strconv.FormatInt(exp.Unix(), 10))
	q.Del("sig")
	return Canonical(q) + "&sig=" + s.Link(q)
}

func cloneValues(q url.Values) url.Values {
	c := make(url.Values, len(q))
	for k, v := range q {
		c[k] = append([]string(nil), v...)
	}
	return c
}

// VerifyLink checks a signed link's sig and exp.
func (s Secret) VerifyLink(q url.Values, now time.Time) error {
	sigs := q["sig"]
	if len(sigs) == 0 {
		return ErrNoSignature
	}
	if len(sigs) != 1 || len(q["exp"]) != 1 {
		return ErrMalformed
	}
	got, err := hex.DecodeString(sigs[0])
	if err != nil {
		return ErrMalformed
	}
	if !slices.ContainsFunc(s.verifiers(now), func(k Secret) bool {
		want, _ := hex.DecodeString(k.Link(q))
		return hmac.Equal(got, want)
	}) {
		return ErrBadSignature
	}
	exp, err := strconv.ParseInt(q.Get("exp"), 10, 64)
	if err != nil {
		return ErrMalformed
	}
	if !now.Before(time.Unix(exp, 0)) {
		return ErrExpired
	}
	return nil
}

// Token makes a URL-safe token that binds purpose and subject until exp:
// "<unix exp>.<base64url mac>". The subject is not in the token; the
// verifier must know it (an order reference, for instance).
func (s Secret) Token(purpose, subject string, exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 10)
	return e + "." + base64.RawURLEncoding.EncodeToString(s.mac("token", purpose, subject, e)[:18])
}

// VerifyToken checks a Token for purpose and subject at now.
func (s Secret) VerifyToken(tok, purpose, subject string, now time.Time) error {
	e, mac, ok := strings.Cut(tok, ".")
	if !ok {
		return ErrMalformed
	}
	exp, err := strconv.ParseInt(e, 10, 64)
	if err != nil {
		return ErrMalformed
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil {
		return ErrMalformed
	}
	if !slices.ContainsFunc(s.verifiers(now), func(k Secret) bool { return hmac.Equal(got, k.mac("token", purpose, subject, e)[:18]) }) {
		return ErrBadSignature
	}
	if !now.Before(time.Unix(exp, 0)) {
		return ErrExpired
	}
	return nil
}

// Equal reports, in constant time, whether str is this secret written out
// (the server API's bearer token), or the previous one during its window
// at now.
func (s Secret) Equal(str string, now time.Time) bool {
	other, err := ParseSecret(str)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(s.verifiers(now), func(k Secret) bool { return hmac.Equal(k.bytes(), other.bytes()) })
}

// SameKey reports whether two secrets have the same current key.
func (s Secret) SameKey(other Secret) bool { return hmac.Equal(s.bytes(), other.bytes()) }
