// Hooks that let the black-box tests in package hdkey_test reach the pieces
// with published test vectors of their own (RIPEMD-160, base58) and the
// invalid-child cases that no real index can be made to hit.

package hdkey

var (
	RIPEMD160         = ripemd160
	Hash160           = hash160
	Base58Encode      = base58Encode
	Base58Decode      = base58Decode
	Base58CheckEncode = base58CheckEncode
	Base58CheckDecode = base58CheckDecode
	AddTweak          = addTweak
)
