package hdkey_test

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/caddy-checkout/checkout/providers/erc20/hdkey"
)

func TestBase58(t *testing.T) {
	for _, tc := range []struct{ hex, text string }{
		{"", ""},
		{"00", "1"},
		{hex.EncodeToString([]byte("Hello World!")), "2NEpo7TZRRrLZSi2U"},
		// Leading zero bytes survive as leading '1's.
		{"00000000287fb4cd", "1111233QC4"},
	} {
		b, _ := hex.DecodeString(tc.hex)
		if got := hdkey.Base58Encode(b); got != tc.text {
			t.Errorf("encode %s = %q, want %q", tc.hex, got, tc.text)
		}
		got, err := hdkey.Base58Decode(tc.text)
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("decode %q = %x, %v; want %s", tc.text, got, err, tc.hex)
		}
	}
}

func TestBase58RoundTrip(t *testing.T) {
	// Every length up to a serialized key plus checksum, with and without
	// leading zeros.
	for n := range 83 {
		for _, lead := range []int{0, 1, 3} {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(i*37 + n)
			}
			for i := 0; i < lead && i < n; i++ {
				b[i] = 0
			}
			got, err := hdkey.Base58Decode(hdkey.Base58Encode(b))
			if err != nil || !bytes.Equal(got, b) {
				t.Fatalf("round trip of %x = %x, %v", b, got, err)
			}
		}
	}
}

func TestBase58CheckRejects(t *testing.T) {
	good := hdkey.Base58CheckEncode([]byte("payload"))
	if _, err := hdkey.Base58CheckDecode(good); err != nil {
		t.Fatalf("decoding a good string: %v", err)
	}
	for name, s := range map[string]string{
		"flipped character":        good[:3] + string(good[3]^1) + good[4:],
		"truncated":                good[:len(good)-1],
		"zero (0) is not base58":   good[:3] + "0" + good[4:],
		"too short for a checksum": "1",
	} {
		if _, err := hdkey.Base58CheckDecode(s); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}
