package stripe

import (
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// FuzzVerify: a Stripe-Signature passes only when it holds, for its own
// timestamp within the tolerance, the v1 HMAC that the secret makes of the
// body: no header or body makes a forgery pass, or panics.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"evt_1","type":"checkout.session.completed"}`)
	f.Add(signed(body, testSecret, now), body)
	f.Add("t=1800000000,v1=00", body)
	f.Add("t=,v1=", []byte{})
	f.Add("t=1800000000,v1=zz,v0=aa,x", body)
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		if verify(header, body, testSecret, now) != nil {
			return
		}
		var ts int64 = -1
		for part := range strings.SplitSeq(header, ",") {
			if v, ok := strings.CutPrefix(part, "t="); ok {
				ts, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		want := hex.EncodeToString(webhook.ComputeSignature(time.Unix(ts, 0), body, testSecret))
		if ts < now.Unix()-300 || ts > now.Unix()+300 || !strings.Contains(strings.ToLower(header), "v1="+want) {
			t.Fatalf("verify accepted %q for %q", header, body)
		}
	})
}
