package komoju

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// FuzzVerify: X-Komoju-Signature passes only as the hex HMAC-SHA256 of the
// body under the secret, whatever is sent.
func FuzzVerify(f *testing.F) {
	const secret = "Secretkomojuhook"
	body := []byte(`{"id":"evt_1","type":"payment.captured"}`)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	f.Add(hex.EncodeToString(m.Sum(nil)), body)
	f.Add("zz", body)
	f.Add("", []byte{})
	f.Fuzz(func(t *testing.T, sig string, body []byte) {
		if verify(sig, body, secret) != nil {
			return
		}
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		if !strings.EqualFold(strings.TrimSpace(sig), hex.EncodeToString(m.Sum(nil))) {
			t.Fatalf("verify accepted %q", sig)
		}
	})
}
