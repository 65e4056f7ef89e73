package hdkey_test

import (
	"strings"
	"testing"

	"github.com/caddy-checkout/checkout/providers/erc20/hdkey"
)

// FuzzParse: an extended public key that parses writes back as itself;
// anything else is refused with an error that quotes none of it (it may
// be a private key pasted in the wrong place).
func FuzzParse(f *testing.F) {
	f.Add(hdkey.TestXpub)
	f.Add("xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi")
	f.Add("tpub")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := hdkey.Parse(s)
		if err == nil {
			if k.String() != s {
				t.Fatalf("%q parsed and wrote back as %q", s, k.String())
			}
			if _, err := k.Child(0); err != nil && k.Depth() < 255 {
				t.Fatalf("no child 0: %v", err)
			}
			return
		}
		for i := 0; i+8 <= len(s); i++ {
			if strings.Contains(err.Error(), s[i:i+8]) {
				t.Fatalf("error %q quotes the input", err)
			}
		}
	})
}
