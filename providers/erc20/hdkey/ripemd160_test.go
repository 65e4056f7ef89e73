package hdkey_test

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/caddy-checkout/checkout/providers/erc20/hdkey"
)

// The vectors published with RIPEMD-160 by its authors.
func TestRIPEMD160(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "9c1185a5c5e9fc54612808977ee8f548b2258d31"},
		{"a", "0bdc9d2d256b3ee9daae347be6f4dc835a467ffe"},
		{"abc", "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"},
		{"message digest", "5d0689ef49d2fae572b881b123a85ffa21595f36"},
		{"abcdefghijklmnopqrstuvwxyz", "f71c27109c692c1b56bbdceb5b9d2865b3708dbc"},
		// 56 bytes: the padding no longer fits in the block, so a second
		// block is needed.
		{"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "12a053384a9c0c88e405a06c27dcf49ada62eb2b"},
		{"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "b0e20b6e3116640286ed3a87a5713079b21f5189"},
		{strings.Repeat("1234567890", 8), "9b752e45573d4b39f4dbd3323cab82bf63326bfb"},
		{strings.Repeat("a", 1000000), "52783243c1697bdbe16d37f97f68f08325dc1528"},
	} {
		name := tc.in
		if len(name) > 20 {
			name = name[:20] + "..."
		}
		got := hdkey.RIPEMD160([]byte(tc.in))
		if hex.EncodeToString(got[:]) != tc.want {
			t.Errorf("RIPEMD160(%q) = %x, want %s", name, got, tc.want)
		}
	}
}
