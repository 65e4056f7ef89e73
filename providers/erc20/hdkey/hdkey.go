// Package hdkey derives Ethereum receiving addresses from a BIP-32 extended
// public key, so that a payment server can give every payment attempt an
// address of its own while the private keys stay in the merchant's wallet.
//
// The server is configured with the account's external chain, for example the
// xpub a wallet exports for m/44'/60'/0'/0, and asks for child 0, 1, 2, ...
// Only public derivation exists here, and only of non-hardened children,
// because that is all an extended public key allows; Parse refuses an
// extended private key so that one cannot end up in a server's config by
// mistake.
package hdkey

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// MaxIndex is the largest child index Child accepts. Indexes from 2^31 up
// are hardened children, which need the parent's private key.
const MaxIndex = 1<<31 - 1

// Version bytes from BIP-32's serialization format. The private ones are
// known only to recognise, and refuse, a private key.
const (
	versionMainnetPublic  = 0x0488B21E // "xpub"
	versionTestnetPublic  = 0x043587CF // "tpub"
	versionMainnetPrivate = 0x0488ADE4 // "xprv"
	versionTestnetPrivate = 0x04358394 // "tprv"
)

// serializedLen is version(4) depth(1) parent fingerprint(4) child number(4)
// chain code(32) key(33).
const serializedLen = 78

// ErrInvalidChild is returned by Child for an index whose derivation falls
// outside the curve's group (probability below 2^-127). BIP-32 says to skip
// such an index and use the next one, so a caller handing out indexes should
// test for this error with errors.Is and move on to i+1.
var ErrInvalidChild = errors.New("this child index yields no valid key; BIP-32 says to use the next index")

// errPrivateKey never includes the input, since the input is a secret.
var errPrivateKey = errors.New("extended public key: an extended private key was given; " +
	"export the account's extended public key (xpub, or tpub on a testnet) from the wallet instead, " +
	"so that the server never holds a key that can spend")

// ExtendedKey is a BIP-32 extended public key: a secp256k1 public key with
// the chain code that lets it derive children, and the position in the tree
// that its serialization records. It is immutable, so one value may be used
// by any number of goroutines at once.
type ExtendedKey struct {
	version     uint32
	depth       uint8
	parentFP    [4]byte
	childNumber uint32
	chainCode   [32]byte
	// compressed is the key as serialized; point is the same key parsed once,
	// because decompressing it costs a field square root on every use.
	compressed [33]byte
	point      *secp256k1.PublicKey
}

// Parse reads a base58check extended public key: an "xpub" (mainnet) or a
// "tpub" (testnet). It refuses private keys and every malformed key listed
// as invalid by BIP-32's test vector 5. No error it returns quotes s,
// because s may be a private key pasted in the wrong place.
func Parse(s string) (*ExtendedKey, error) {
	// Checked on the text before decoding, so that a mistyped private key
	// (whose checksum fails) is still recognised as one. SLIP-132's
	// variants (yprv, zprv, ...) all render with this suffix too.
	if len(s) >= 4 && s[1:4] == "prv" {
		return nil, errPrivateKey
	}
	payload, err := base58CheckDecode(s)
	if err != nil {
		return nil, fmt.Errorf("extended public key: %w", err)
	}
	if len(payload) != serializedLen {
		return nil, fmt.Errorf("extended public key: decodes to %d bytes, want %d (the key is truncated or is not a BIP-32 key)",
			len(payload), serializedLen)
	}

	k := &ExtendedKey{
		version:     binary.BigEndian.Uint32(payload[0:4]),
		depth:       payload[4],
		childNumber: binary.BigEndian.Uint32(payload[9:13]),
	}
	copy(k.parentFP[:], payload[5:9])
	copy(k.chainCode[:], payload[13:45])
	copy(k.compressed[:], payload[45:78])

	switch k.version {
	case versionMainnetPublic, versionTestnetPublic:
	case versionMainnetPrivate, versionTestnetPrivate:
		return nil, errPrivateKey
	default:
		return nil, fmt.Errorf("extended public key: unknown version 0x%08x; want an xpub (mainnet) or a tpub (testnet)", k.version)
	}

	// A master key (depth 0) has no parent; anything else claiming depth 0
	// has been tampered with or badly made.
	if k.depth == 0 && k.parentFP != [4]byte{} {
		return nil, errors.New("extended public key: depth is 0 (a master key) but the parent fingerprint is not zero")
	}
	if k.depth == 0 && k.childNumber != 0 {
		return nil, errors.New("extended public key: depth is 0 (a master key) but the child index is not zero")
	}

	switch k.compressed[0] {
	case 0x02, 0x03:
	case 0x00:
		// BIP-32 serializes a private key as 0x00 followed by 32 bytes.
		return nil, errPrivateKey
	default:
		return nil, fmt.Errorf("extended public key: key data starts with 0x%02x, want a compressed public key (0x02 or 0x03)", k.compressed[0])
	}
	// secp256k1's own error would quote the coordinate; say it plainly.
	if k.point, err = secp256k1.ParsePubKey(k.compressed[:]); err != nil {
		return nil, errors.New("extended public key: key data is not a point on the secp256k1 curve")
	}
	return k, nil
}

// Depth is the key's distance from the master key: 0 for the master, 4 for
// an account chain at m/44'/60'/0'/0.
func (k *ExtendedKey) Depth() uint8 { return k.depth }

// Child derives the public child at index i (BIP-32's CKDpub). Indexes above
// MaxIndex are hardened and need the private key, so they are refused. With
// probability below 2^-127 an index has no child; Child then returns an error
// wrapping ErrInvalidChild and the caller should use i+1.
func (k *ExtendedKey) Child(i uint32) (*ExtendedKey, error) {
	if i > MaxIndex {
		return nil, fmt.Errorf("deriving child %d: index is hardened (2^31 or more), which needs the private key; public derivation takes 0 to %d",
			i, MaxIndex)
	}
	if k.depth == 255 {
		return nil, errors.New("deriving child: the key is at depth 255, the deepest BIP-32 can serialize")
	}

	// I = HMAC-SHA512(key = chain code, data = serP(K) || ser32(i)).
	mac := hmac.New(sha512.New, k.chainCode[:])
	mac.Write(k.compressed[:])
	var index [4]byte
	binary.BigEndian.PutUint32(index[:], i)
	mac.Write(index[:])
	sum := mac.Sum(nil)

	point, err := addTweak(k.point, sum[:32])
	if err != nil {
		return nil, fmt.Errorf("deriving child %d: %w", i, err)
	}
	child := &ExtendedKey{
		version:     k.version,
		depth:       k.depth + 1,
		childNumber: i,
		point:       point,
	}
	id := hash160(k.compressed[:])
	copy(child.parentFP[:], id[:4])
	copy(child.chainCode[:], sum[32:])
	copy(child.compressed[:], point.SerializeCompressed())
	return child, nil
}

// addTweak returns point(il) + parent, or ErrInvalidChild when il, read as a
// 256-bit number, is not below the group order or the sum is the point at
// infinity: the two cases BIP-32 declares invalid.
func addTweak(parent *secp256k1.PublicKey, il []byte) (*secp256k1.PublicKey, error) {
	var tweak secp256k1.ModNScalar
	if overflow := tweak.SetByteSlice(il); overflow {
		return nil, ErrInvalidChild
	}
	var tweakPoint, parentPoint, sum secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(&tweak, &tweakPoint)
	parent.AsJacobian(&parentPoint)
	secp256k1.AddNonConst(&tweakPoint, &parentPoint, &sum)
	if sum.Z.IsZero() || (sum.X.IsZero() && sum.Y.IsZero()) {
		return nil, ErrInvalidChild
	}
	sum.ToAffine()
	return secp256k1.NewPublicKey(&sum.X, &sum.Y), nil
}

// Address is the Ethereum address of the key: the last 20 bytes of the
// Keccak-256 of the uncompressed public key without its 0x04 prefix, the
// same as go-ethereum's crypto.PubkeyToAddress.
func (k *ExtendedKey) Address() common.Address {
	uncompressed := k.point.SerializeUncompressed()
	return common.BytesToAddress(crypto.Keccak256(uncompressed[1:])[12:])
}

// String is the key's base58check serialization, the form Parse reads.
func (k *ExtendedKey) String() string {
	payload := make([]byte, 0, serializedLen)
	payload = binary.BigEndian.AppendUint32(payload, k.version)
	payload = append(payload, k.depth)
	payload = append(payload, k.parentFP[:]...)
	payload = binary.BigEndian.AppendUint32(payload, k.childNumber)
	payload = append(payload, k.chainCode[:]...)
	payload = append(payload, k.compressed[:]...)
	return base58CheckEncode(payload)
}

// Address derives child i of k and returns its Ethereum address: the
// receiving address for payment attempt i when k is an account's external
// chain. An error is ErrInvalidChild (use i+1) or a hardened index.
func Address(k *ExtendedKey, i uint32) (common.Address, error) {
	child, err := k.Child(i)
	if err != nil {
		return common.Address{}, err
	}
	return child.Address(), nil
}
