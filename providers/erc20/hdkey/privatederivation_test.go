// Private BIP-32 derivation, for tests only: the package itself never holds a
// private key, but its tests need one to produce an account xpub from a seed
// (the path to an Ethereum account runs through hardened steps that no public
// key can take) and to check public derivation against private derivation.
// It follows BIP-32's "Master key generation" and CKDpriv, and is itself
// checked against every key BIP-32's test vectors list.

package hdkey_test

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

const (
	versionXpub = 0x0488B21E
	versionXprv = 0x0488ADE4
	versionTpub = 0x043587CF
	hardened    = 1 << 31
)

type privateNode struct {
	key         secp256k1.ModNScalar
	chainCode   [32]byte
	depth       uint8
	parentFP    [4]byte
	childNumber uint32
}

func masterNode(t testing.TB, seed []byte) privateNode {
	t.Helper()
	mac := hmac.New(sha512.New, []byte("Bitcoin seed"))
	mac.Write(seed)
	sum := mac.Sum(nil)
	var n privateNode
	if overflow := n.key.SetByteSlice(sum[:32]); overflow || n.key.IsZero() {
		t.Fatal("seed gives an invalid master key")
	}
	copy(n.chainCode[:], sum[32:])
	return n
}

func (n privateNode) publicKey() []byte {
	b := n.key.Bytes()
	return secp256k1.PrivKeyFromBytes(b[:]).PubKey().SerializeCompressed()
}

// child is CKDpriv. The BIP-32 vectors and the paths used here never hit an
// invalid child, so one fails the test rather than being skipped.
func (n privateNode) child(t testing.TB, i uint32) privateNode {
	t.Helper()
	mac := hmac.New(sha512.New, n.chainCode[:])
	if i >= hardened {
		key := n.key.Bytes()
		mac.Write([]byte{0})
		mac.Write(key[:])
	} else {
		mac.Write(n.publicKey())
	}
	mac.Write(binary.BigEndian.AppendUint32(nil, i))
	sum := mac.Sum(nil)

	c := privateNode{depth: n.depth + 1, childNumber: i}
	if overflow := c.key.SetByteSlice(sum[:32]); overflow {
		t.Fatalf("child %d: IL is not below the group order", i)
	}
	c.key.Add(&n.key)
	if c.key.IsZero() {
		t.Fatalf("child %d: key is zero", i)
	}
	copy(c.chainCode[:], sum[32:])
	id := hash160(n.publicKey())
	copy(c.parentFP[:], id[:4])
	return c
}

// derive follows a path written as in BIP-32's test vectors, "m/0H/1/2H",
// with ' accepted for H.
func derive(t testing.TB, seed []byte, path string) privateNode {
	t.Helper()
	parts := strings.Split(path, "/")
	if parts[0] != "m" {
		t.Fatalf("path %q does not start at m", path)
	}
	n := masterNode(t, seed)
	for _, p := range parts[1:] {
		var offset uint32
		if s, ok := strings.CutSuffix(p, "H"); ok {
			p, offset = s, hardened
		} else if s, ok := strings.CutSuffix(p, "'"); ok {
			p, offset = s, hardened
		}
		i, err := strconv.ParseUint(p, 10, 31)
		if err != nil {
			t.Fatalf("path %q: %v", path, err)
		}
		n = n.child(t, uint32(i)+offset)
	}
	return n
}

func (n privateNode) serialize(version uint32, key []byte) string {
	b := binary.BigEndian.AppendUint32(nil, version)
	b = append(b, n.depth)
	b = append(b, n.parentFP[:]...)
	b = binary.BigEndian.AppendUint32(b, n.childNumber)
	b = append(b, n.chainCode[:]...)
	b = append(b, key...)
	return base58CheckEncode(b)
}

func (n privateNode) xpub() string { return n.serialize(versionXpub, n.publicKey()) }

func (n privateNode) xprv() string {
	key := n.key.Bytes()
	return n.serialize(versionXprv, append([]byte{0}, key[:]...))
}
