// Base58Check, the text form of a serialized extended key: the Bitcoin base58
// alphabet over the payload followed by the first four bytes of its double
// SHA-256. It is written here rather than imported because it is a few dozen
// lines and the module has no base58 dependency to lean on.

package hdkey

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
)

// The alphabet leaves out 0, O, I and l so that a key copied by hand
// cannot be misread.
const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// base58Digit maps an ASCII byte to its digit value, or 0xff for a byte
// outside the alphabet.
var base58Digit = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := range len(base58Alphabet) {
		t[base58Alphabet[i]] = byte(i)
	}
	return t
}()

var errBadChecksum = errors.New("checksum does not match (the key was mistyped or truncated)")

// base58Encode treats b as a big-endian number and writes it in base 58;
// each leading zero byte becomes a leading '1', since the number alone
// would lose them.
func base58Encode(b []byte) string {
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	// log(256)/log(58) < 1.37, so this many digits always suffice.
	digits := make([]byte, 0, (len(b)-zeros)*137/100+1)
	for _, v := range b[zeros:] {
		carry := int(v)
		for i := range digits {
			carry += int(digits[i]) << 8
			digits[i] = byte(carry % 58)
			carry /= 58
		}
		for carry > 0 {
			digits = append(digits, byte(carry%58))
			carry /= 58
		}
	}
	out := make([]byte, zeros+len(digits))
	for i := range zeros {
		out[i] = '1'
	}
	// digits is least significant first.
	for i, d := range digits {
		out[len(out)-1-i] = base58Alphabet[d]
	}
	return string(out)
}

// base58Decode reverses base58Encode. Its error names the position of a bad
// character but never the character or the text around it, because the text
// may be a private key pasted by mistake.
func base58Decode(s string) ([]byte, error) {
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	// log(58)/log(256) < 0.74.
	num := make([]byte, 0, (len(s)-zeros)*74/100+1)
	for pos := zeros; pos < len(s); pos++ {
		d := base58Digit[s[pos]]
		if d == 0xff {
			return nil, fmt.Errorf("character %d is not in the base58 alphabet", pos+1)
		}
		carry := int(d)
		for i := range num {
			carry += int(num[i]) * 58
			num[i] = byte(carry)
			carry >>= 8
		}
		for carry > 0 {
			num = append(num, byte(carry))
			carry >>= 8
		}
	}
	out := make([]byte, zeros+len(num))
	for i, v := range num {
		out[len(out)-1-i] = v
	}
	return out, nil
}

func base58Checksum(payload []byte) []byte {
	first := sha256.Sum256(payload)
	second := sha256.Sum256(first[:])
	return second[:4]
}

// base58CheckEncode appends the checksum to payload and encodes the result.
func base58CheckEncode(payload []byte) string {
	full := make([]byte, 0, len(payload)+4)
	full = append(full, payload...)
	full = append(full, base58Checksum(payload)...)
	return base58Encode(full)
}

// base58CheckDecode decodes s and returns the payload once its checksum is
// verified.
func base58CheckDecode(s string) ([]byte, error) {
	full, err := base58Decode(s)
	if err != nil {
		return nil, err
	}
	if len(full) < 4 {
		return nil, errBadChecksum
	}
	payload, sum := full[:len(full)-4], full[len(full)-4:]
	if !bytes.Equal(base58Checksum(payload), sum) {
		return nil, errBadChecksum
	}
	return payload, nil
}
