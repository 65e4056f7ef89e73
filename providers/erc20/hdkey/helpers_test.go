// Helpers of the black-box tests in package hdkey_test: base58check and
// HASH160 from btcd, to build keys byte by byte.

package hdkey_test

import (
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// base58CheckEncode is BIP-32's serialization: base58 of the payload and
// the first 4 bytes of its double SHA-256.
func base58CheckEncode(payload []byte) string {
	return base58.Encode(append(payload[:len(payload):len(payload)], chainhash.DoubleHashB(payload)[:4]...))
}

// base58CheckDecode is the payload of a well-formed serialization.
func base58CheckDecode(s string) ([]byte, error) {
	raw := base58.Decode(s)
	if len(raw) < 4 {
		return nil, base58.ErrChecksum
	}
	return raw[:len(raw)-4], nil
}

var hash160 = btcutil.Hash160
