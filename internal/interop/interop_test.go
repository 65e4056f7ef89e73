package interop_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/sign"
)

// tool finds a program the check needs. Without it the test is skipped,
// except in CI (CI=true), where a missing tool is a failure.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed; the cross-language signature check needs it in CI", name)
		}
		t.Skipf("%s is not installed; skipping the cross-language signature check", name)
	}
	return p
}

// run feeds cases as JSON to a verifier and reads its verdicts.
func run(t *testing.T, dir string, cases any, name string, args ...string) map[string]verdict {
	t.Helper()
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	var vs []verdict
	if err := json.Unmarshal(out, &vs); err != nil {
		t.Fatalf("%s printed %q: %v", filepath.Base(name), out, err)
	}
	m := map[string]verdict{}
	for _, v := range vs {
		m[v.Name] = v
	}
	return m
}

type verdict struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error"`
}

// webhookCase is one signed message and whether every verifier must
// accept it.
type webhookCase struct {
	Kind    string            `json:"kind"`
	Name    string            `json:"name"`
	Secret  string            `json:"secret"`
	Headers map[string]string `json:"headers"`
	BodyB64 string            `json:"body_b64"`
	Now     int64             `json:"now"`
	want    bool
	body    []byte
}

func webhookCases(t *testing.T, secret, other string, now time.Time) []webhookCase {
	t.Helper()
	s, err := sign.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	o, err := sign.ParseSecret(other)
	if err != nil {
		t.Fatal(err)
	}
	paid := []byte(`{"type":"order.paid","timestamp":"2026-11-21T07:00:00Z",` +
		`"data":{"order_id":"1234567","status":"paid","amount":"75.00","currency":"USD","provider":"cyclos",` +
		`"transaction":"tx-98","attempt":1,"paid_at":"2026-11-21T06:59:58Z","late":false,"metadata":{}}}`)
	pending := []byte(`{"type":"order.pending","data":{"order_id":"注文-7","description":"Café crème ~ 2 × ☕","amount":"1200","currency":"JPY"}}`)

	var cases []webhookCase
	add := func(name string, want bool, body []byte, h http.Header) {
		hs := map[string]string{}
		for k, v := range h {
			hs[strings.ToLower(k)] = strings.Join(v, " ")
		}
		cases = append(cases, webhookCase{Kind: "webhook", Name: name, Secret: secret, Headers: hs,
			BodyB64: base64.StdEncoding.EncodeToString(body), Now: now.Unix(), want: want, body: body})
	}
	signed := func(by sign.Secret, id string, at time.Time, body []byte) http.Header {
		h := http.Header{}
		by.SetWebhookHeaders(h, id, at, body)
		return h
	}

	add("paid", true, paid, signed(s, "msg_2Lq8eXd1", now, paid))
	add("pending-utf8", true, pending, signed(s, "msg_2Lq8eXd2", now, pending))
	add("empty-body", true, []byte{}, signed(s, "msg_2Lq8eXd3", now, nil))
	add("a-minute-old", true, paid, signed(s, "msg_2Lq8eXd4", now.Add(-time.Minute), paid))

	// Rotation: the old key's signature first, then ours.
	h := signed(s, "msg_2Lq8eXd5", now, paid)
	h["webhook-signature"] = []string{o.Webhook("msg_2Lq8eXd5", now.Unix(), paid) + " " + h["webhook-signature"][0]}
	add("rotation-two-signatures", true, paid, h)

	tampered := bytes.Replace(paid, []byte(`"75.00"`), []byte(`"0.75"`), 1)
	add("tampered-body", false, tampered, signed(s, "msg_2Lq8eXd6", now, paid))
	reserialised := bytes.ReplaceAll(paid, []byte(`":`), []byte(`": `))
	add("reserialised-body", false, reserialised, signed(s, "msg_2Lq8eXd7", now, paid))
	add("wrong-secret", false, paid, signed(o, "msg_2Lq8eXd8", now, paid))
	h = signed(s, "msg_2Lq8eXd9", now, paid)
	h["webhook-id"] = []string{"msg_2Lq8eXdX"}
	add("tampered-id", false, paid, h)
	add("stale", false, paid, signed(s, "msg_2Lq8eXe0", now.Add(-10*time.Minute), paid))
	h = signed(s, "msg_2Lq8eXe1", now, paid)
	h["webhook-signature"] = []string{"v0," + strings.TrimPrefix(h["webhook-signature"][0], "v1,")}
	add("downgrade-v0-only", false, paid, h)
	return cases
}

// checkVerdicts compares a verifier's verdicts with what each case wants.
func checkVerdicts[C any](t *testing.T, who string, cases []C, name func(C) string, want func(C) bool, got map[string]verdict) {
	t.Helper()
	for _, c := range cases {
		v, ok := got[name(c)]
		switch {
		case !ok:
			t.Errorf("%s gave no verdict for %s", who, name(c))
		case v.OK != want(c):
			t.Errorf("%s: %s: ok=%v (%s), want ok=%v", who, name(c), v.OK, v.Error, want(c))
		}
	}
}

func TestStandardWebhooksNPM(t *testing.T) {
	node := tool(t, "node")
	npm := tool(t, "npm")
	dir, err := filepath.Abs("node")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "standardwebhooks", "package.json")); err != nil {
		// Install exactly what package-lock.json pins.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("installing the standardwebhooks npm package (npm ci in %s) failed: %v\n%s\n"+
				"The check needs the npm registry; run `npm ci` there by hand to see why.", dir, err, out)
		}
	}

	now := time.Now()
	cases := webhookCases(t, sign.NewSecret(), sign.NewSecret(), now)
	got := run(t, dir, cases, node, "verify.js")
	checkVerdicts(t, "standardwebhooks (npm)", cases, func(c webhookCase) string { return c.Name }, func(c webhookCase) bool { return c.want }, got)
	checkOurs(t, cases, now)
}

// checkOurs runs our own verifier over the same cases: all three must agree.
func checkOurs(t *testing.T, cases []webhookCase, now time.Time) {
	t.Helper()
	for _, c := range cases {
		s, _ := sign.ParseSecret(c.Secret)
		h := http.Header{}
		for k, v := range c.Headers {
			h.Set(k, v)
		}
		if _, err := s.VerifyWebhook(h, c.body, now); (err == nil) != c.want {
			t.Errorf("sign.VerifyWebhook: %s: %v, want ok=%v", c.Name, err, c.want)
		}
	}
}

type headersCase struct {
	Kind      string            `json:"kind"`
	Name      string            `json:"name"`
	Secret    string            `json:"secret"`
	Signature string            `json:"signature"`
	Fields    map[string]string `json:"fields"`
	Now       int64             `json:"now"`
	Tolerance int64             `json:"tolerance"`
	want      bool
}

type linkCase struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Secret string `json:"secret"`
	Query  string `json:"query"`
	Now    int64  `json:"now"`
	want   bool
}

func fieldMap(f sign.Fields) map[string]string {
	return map[string]string{"method": f.Method, "path": f.Path, "order": f.Order, "status": f.Status,
		"amount": f.Amount, "currency": f.Currency, "transaction": f.Transaction}
}

func TestPythonVerifier(t *testing.T) {
	python := tool(t, "python3")
	secret, other := sign.NewSecret(), sign.NewSecret()
	s, _ := sign.ParseSecret(secret)
	o, _ := sign.ParseSecret(other)
	now := time.Now()

	t.Run("standard-webhooks", func(t *testing.T) {
		cases := webhookCases(t, secret, other, now)
		got := run(t, ".", cases, python, "verify.py")
		checkVerdicts(t, "verify.py", cases, func(c webhookCase) string { return c.Name }, func(c webhookCase) bool { return c.want }, got)
		checkOurs(t, cases, now)
	})

	t.Run("header-signature", func(t *testing.T) {
		f := sign.Fields{Method: "GET", Path: "/orders/1234567/thanks", Order: "1234567", Status: "paid",
			Amount: "75.00", Currency: "USD", Transaction: "pi_3Nx"}
		unpaid := sign.Fields{Method: "GET", Path: "/orders/9/thanks", Order: "9", Status: "failed", Amount: "1200", Currency: "JPY"}
		var cases []headersCase
		add := func(name string, want bool, sig string, f sign.Fields) {
			cases = append(cases, headersCase{Kind: "headers", Name: name, Secret: secret, Signature: sig,
				Fields: fieldMap(f), Now: now.Unix(), Tolerance: 300, want: want})
		}
		add("paid", true, s.Headers(now, f), f)
		add("failed-no-transaction", true, s.Headers(now, unpaid), unpaid)
		changed := f
		changed.Amount = "0.75"
		add("amount-changed", false, s.Headers(now, f), changed)
		changed = f
		changed.Path = "/orders/1234568/thanks"
		add("path-changed", false, s.Headers(now, f), changed)
		add("wrong-secret", false, o.Headers(now, f), f)
		add("stale", false, s.Headers(now.Add(-10*time.Minute), f), f)

		got := run(t, ".", cases, python, "verify.py")
		checkVerdicts(t, "verify.py", cases, func(c headersCase) string { return c.Name }, func(c headersCase) bool { return c.want }, got)
	})

	t.Run("signed-link", func(t *testing.T) {
		q := url.Values{
			"order":       {"1234567"},
			"amount":      {"75.00"},
			"currency":    {"USD"},
			"description": {"Café order + gift wrap ~ “fast” 注文"},
			"email":       {"a+b@example.com"},
			"provider":    {"sandbox"},
		}
		exp := now.Add(time.Hour)
		var cases []linkCase
		add := func(name string, want bool, query string) {
			cases = append(cases, linkCase{Kind: "link", Name: name, Secret: secret, Query: query, Now: now.Unix(), want: want})
		}
		good := s.SignLink(q, exp)
		add("signed", true, good)
		add("minimal", true, s.SignLink(url.Values{"order": {"1"}, "amount": {"1"}, "currency": {"JPY"}}, exp))
		add("repeated-key", true, s.SignLink(url.Values{"order": {"1"}, "tag": {"b", "a", "c"}}, exp))
		add("tampered-amount", false, strings.Replace(good, "amount=75.00", "amount=0.75", 1))
		add("added-param", false, good+"&provider=stripe")
		add("wrong-secret", false, o.SignLink(q, exp))
		add("expired", false, s.SignLink(q, now.Add(-time.Second)))

		got := run(t, ".", cases, python, "verify.py")
		checkVerdicts(t, "verify.py", cases, func(c linkCase) string { return c.Name }, func(c linkCase) bool { return c.want }, got)
		// And ours agrees.
		for _, c := range cases {
			pq, err := url.ParseQuery(c.Query)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.VerifyLink(pq, now); (err == nil) != c.want {
				t.Errorf("sign.VerifyLink: %s: %v, want ok=%v", c.Name, err, c.want)
			}
		}
	})
}
