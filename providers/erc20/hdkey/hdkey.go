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
	"bytes"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// The BIP-32 arithmetic, base58check and HASH160 (RIPEMD-160 of SHA-256)
// are btcd's (hdkeychain, base58, btcutil); this package adds what a
// payment server needs on top: the refusal of private keys, messages that
// never quote the key, and Ethereum addresses.

// MaxIndex is the largest child index Child accepts. Indexes from 2^31 up
// are hardened children, which need the parent's private key.
const MaxIndex = hdkeychain.HardenedKeyStart - 1

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
	key *hdkeychain.ExtendedKey
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
	// hdkeychain checks the same things with messages of its own; these
	// come first to say which part is wrong and never to mistake a
	// private key for a malformed public one.
	raw := base58.Decode(s)
	if len(raw) == 0 && s != "" {
		return nil, errors.New("extended public key: not base58 (a character outside the base58 alphabet)")
	}
	if len(raw) < 4 || !bytes.Equal(chainhash.DoubleHashB(raw[:len(raw)-4])[:4], raw[len(raw)-4:]) {
		return nil, errors.New("extended public key: bad checksum (a character is mistyped or missing)")
	}
	payload := raw[:len(raw)-4]
	if len(payload) != serializedLen {
		return nil, fmt.Errorf("extended public key: decodes to %d bytes, want %d (the key is truncated or is not a BIP-32 key)",
			len(payload), serializedLen)
	}
	version := uint32(payload[0])<<24 | uint32(payload[1])<<16 | uint32(payload[2])<<8 | uint32(payload[3])
	switch version {
	case versionMainnetPublic, versionTestnetPublic:
	case versionMainnetPrivate, versionTestnetPrivate:
		return nil, errPrivateKey
	default:
		return nil, fmt.Errorf("extended public key: unknown version 0x%08x; want an xpub (mainnet) or a tpub (testnet)", version)
	}
	// A master key (depth 0) has no parent; anything else claiming depth 0
	// has been tampered with or badly made.
	if payload[4] == 0 && !bytes.Equal(payload[5:9], []byte{0, 0, 0, 0}) {
		return nil, errors.New("extended public key: depth is 0 (a master key) but the parent fingerprint is not zero")
	}
	if payload[4] == 0 && !bytes.Equal(payload[9:13], []byte{0, 0, 0, 0}) {
		return nil, errors.New("extended public key: depth is 0 (a master key) but the child index is not zero")
	}
	switch payload[45] {
	case 0x02, 0x03:
	case 0x00:
		// BIP-32 serializes a private key as 0x00 followed by 32 bytes.
		return nil, errPrivateKey
	default:
		return nil, fmt.Errorf("extended public key: key data starts with 0x%02x, want a compressed public key (0x02 or 0x03)", payload[45])
	}
	// secp256k1's own error would quote the coordinate; say it plainly.
	if _, err := btcec.ParsePubKey(payload[45:]); err != nil {
		return nil, errors.New("extended public key: key data is not a point on the secp256k1 curve")
	}
	k, err := hdkeychain.NewKeyFromString(s)
	if err != nil {
		// Not expected after the checks above; its message quotes nothing.
		return nil, fmt.Errorf("extended public key: %v", err)
	}
	if k.IsPrivate() {
		return nil, errPrivateKey
	}
	return &ExtendedKey{key: k}, nil
}

// Depth is the key's distance from the master key: 0 for the master, 4 for
// an account chain at m/44'/60'/0'/0.
func (k *ExtendedKey) Depth() uint8 { return k.key.Depth() }

// Child derives the public child at index i (BIP-32's CKDpub). Indexes above
// MaxIndex are hardened and need the private key, so they are refused. With
// probability below 2^-127 an index has no child; Child then returns an error
// wrapping ErrInvalidChild and the caller should use i+1.
func (k *ExtendedKey) Child(i uint32) (*ExtendedKey, error) {
	if i > MaxIndex {
		return nil, fmt.Errorf("deriving child %d: index is hardened (2^31 or more), which needs the private key; public derivation takes 0 to %d",
			i, MaxIndex)
	}
	if k.key.Depth() == 255 {
		return nil, errors.New("deriving child: the key is at depth 255, the deepest BIP-32 can serialize")
	}
	child, err := k.key.Derive(i)
	switch {
	case errors.Is(err, hdkeychain.ErrInvalidChild):
		return nil, fmt.Errorf("deriving child %d: %w", i, ErrInvalidChild)
	case err != nil:
		return nil, fmt.Errorf("deriving child %d: %v", i, err)
	}
	return &ExtendedKey{key: child}, nil
}

// Address is the Ethereum address of the key: the last 20 bytes of the
// Keccak-256 of the uncompressed public key without its 0x04 prefix.
func (k *ExtendedKey) Address() common.Address {
	pub, err := k.key.ECPubKey()
	if err != nil {
		// Parse checked the point, and derivation only makes valid ones.
		panic(fmt.Sprintf("hdkey: a checked key has no public key: %v", err))
	}
	return crypto.PubkeyToAddress(*pub.ToECDSA())
}

// String is the key's base58check serialization, the form Parse reads.
func (k *ExtendedKey) String() string { return k.key.String() }

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
