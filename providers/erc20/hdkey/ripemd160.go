// RIPEMD-160, needed for one thing only: a BIP-32 key's fingerprint is the
// first four bytes of RIPEMD160(SHA256(compressed public key)), and a child's
// serialization carries its parent's fingerprint. The standard library has no
// RIPEMD-160 and golang.org/x/crypto is not a dependency of this module, so it
// is written here from Dobbertin, Bosselaers and Preneel, "RIPEMD-160: A
// Strengthened Version of RIPEMD" (1996). Speed does not matter: it runs once
// per derived child on 33 bytes.

package hdkey

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
)

// Word order for the left line (r) and the right line (rr), 16 per round.
var ripemdR = [80]uint8{
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
	7, 4, 13, 1, 10, 6, 15, 3, 12, 0, 9, 5, 2, 14, 11, 8,
	3, 10, 14, 4, 9, 15, 8, 1, 2, 7, 0, 6, 13, 11, 5, 12,
	1, 9, 11, 10, 0, 8, 12, 4, 13, 3, 7, 15, 14, 5, 6, 2,
	4, 0, 5, 9, 7, 12, 2, 10, 14, 1, 3, 8, 11, 6, 15, 13,
}

var ripemdRR = [80]uint8{
	5, 14, 7, 0, 9, 2, 11, 4, 13, 6, 15, 8, 1, 10, 3, 12,
	6, 11, 3, 7, 0, 13, 5, 10, 14, 15, 8, 12, 4, 9, 1, 2,
	15, 5, 1, 3, 7, 14, 6, 9, 11, 8, 12, 2, 10, 0, 4, 13,
	8, 6, 4, 1, 3, 11, 15, 0, 5, 12, 2, 13, 9, 7, 10, 14,
	12, 15, 10, 4, 1, 5, 8, 7, 6, 2, 13, 14, 0, 3, 9, 11,
}

// Left rotation amounts for the left line (s) and the right line (ss).
var ripemdS = [80]uint8{
	11, 14, 15, 12, 5, 8, 7, 9, 11, 13, 14, 15, 6, 7, 9, 8,
	7, 6, 8, 13, 11, 9, 7, 15, 7, 12, 15, 9, 11, 7, 13, 12,
	11, 13, 6, 7, 14, 9, 13, 15, 14, 8, 13, 6, 5, 12, 7, 5,
	11, 12, 14, 15, 14, 15, 9, 8, 9, 14, 5, 6, 8, 6, 5, 12,
	9, 15, 5, 11, 6, 8, 13, 12, 5, 12, 13, 14, 11, 8, 5, 6,
}

var ripemdSS = [80]uint8{
	8, 9, 9, 11, 13, 15, 15, 5, 7, 7, 8, 11, 14, 14, 12, 6,
	9, 13, 15, 7, 12, 8, 9, 11, 7, 7, 12, 7, 6, 15, 13, 11,
	9, 7, 15, 11, 8, 6, 6, 14, 12, 13, 5, 14, 13, 13, 7, 5,
	15, 5, 8, 11, 14, 14, 6, 14, 6, 9, 12, 9, 12, 5, 15, 8,
	8, 5, 12, 9, 12, 5, 14, 6, 8, 13, 6, 5, 15, 13, 11, 11,
}

// Additive constants per round; the right line runs the rounds' boolean
// functions in reverse order, so it has its own constants.
var (
	ripemdK  = [5]uint32{0x00000000, 0x5a827999, 0x6ed9eba1, 0x8f1bbcdc, 0xa953fd4e}
	ripemdKK = [5]uint32{0x50a28be6, 0x5c4dd124, 0x6d703ef3, 0x7a6d76e9, 0x00000000}
)

// ripemdF is the boolean function of round 0..4.
func ripemdF(round int, x, y, z uint32) uint32 {
	switch round {
	case 0:
		return x ^ y ^ z
	case 1:
		return (x & y) | (^x & z)
	case 2:
		return (x | ^y) ^ z
	case 3:
		return (x & z) | (y & ^z)
	default:
		return x ^ (y | ^z)
	}
}

// ripemd160 returns the RIPEMD-160 digest of msg.
func ripemd160(msg []byte) [20]byte {
	h := [5]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0}

	// Padding is MD4's: a 1 bit, zeros up to 56 mod 64 bytes, then the
	// message length in bits as a little-endian 64-bit number.
	padded := make([]byte, 0, len(msg)+72)
	padded = append(padded, msg...)
	padded = append(padded, 0x80)
	for len(padded)%64 != 56 {
		padded = append(padded, 0)
	}
	padded = binary.LittleEndian.AppendUint64(padded, uint64(len(msg))*8)

	var x [16]uint32
	for block := padded; len(block) > 0; block = block[64:] {
		for i := range x {
			x[i] = binary.LittleEndian.Uint32(block[4*i:])
		}
		a, b, c, d, e := h[0], h[1], h[2], h[3], h[4]
		aa, bb, cc, dd, ee := a, b, c, d, e
		for j := range 80 {
			round := j / 16
			t := bits.RotateLeft32(a+ripemdF(round, b, c, d)+x[ripemdR[j]]+ripemdK[round], int(ripemdS[j])) + e
			a, e, d, c, b = e, d, bits.RotateLeft32(c, 10), b, t
			t = bits.RotateLeft32(aa+ripemdF(4-round, bb, cc, dd)+x[ripemdRR[j]]+ripemdKK[round], int(ripemdSS[j])) + ee
			aa, ee, dd, cc, bb = ee, dd, bits.RotateLeft32(cc, 10), bb, t
		}
		// The two lines are combined with a rotation of the chaining words.
		h[0], h[1], h[2], h[3], h[4] = h[1]+c+dd, h[2]+d+ee, h[3]+e+aa, h[4]+a+bb, h[0]+b+cc
	}

	var out [20]byte
	for i, w := range h {
		binary.LittleEndian.PutUint32(out[4*i:], w)
	}
	return out
}

// hash160 is Bitcoin's RIPEMD160(SHA256(b)), which BIP-32 uses as a key's
// identifier.
func hash160(b []byte) [20]byte {
	s := sha256.Sum256(b)
	return ripemd160(s[:])
}
