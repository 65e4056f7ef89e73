// The order message's wire format (SPEC §5.1). The original VoucherSCI.php
// is not public, so this is the format this product sends and documents:
// the order info as UTF-8 JSON, encrypted with 3DES (EDE3) in CBC mode with
// PKCS#7 padding and a random 8-byte IV, keyed with the first 24 bytes of
// SHA-256 of the secret the customer is shown, and sent as base64(IV ||
// ciphertext) in <x xmlns="jabber:message:voucher-safe#web-vsc">.
package vouchersafe

import (
	"bytes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// Namespace is the XML namespace of the order info element.
const Namespace = "jabber:message:voucher-safe#web-vsc"

// Secret lengths the seed allows (hex digits).
const (
	MinSecretLength     = 8
	MaxSecretLength     = 24
	DefaultSecretLength = 12
)

// OrderInfo is what the customer's client is told to pay.
type OrderInfo struct {
	Payee    string            `json:"payee"`    // the merchant safe, such as mymerchantsafe-1234@vouchi.com
	Amount   string            `json:"amount"`   // decimal, in Currency's units: "19.95"
	Currency string            `json:"currency"` // one of the seed's units: "CAD"
	Issuer   string            `json:"issuer"`   // "VI-USV"
	Subject  string            `json:"subject"`  // the message's subject
	Baggage  map[string]string `json:"baggage"`  // at most 3 pairs; orderId = our attempt reference
}

// NewSecret is a fresh secret of n lowercase hex digits from crypto/rand
// (the seed's pickSecret took an MD5 prefix; any random hex does).
func NewSecret(n int) (string, error) {
	if n < MinSecretLength || n > MaxSecretLength {
		return "", fmt.Errorf("secret_length %d: want %d to %d hex digits", n, MinSecretLength, MaxSecretLength)
	}
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b)[:n], nil
}

func key(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:24]
}

// Encrypt seals the order info under secret: base64(IV || ciphertext).
func Encrypt(info OrderInfo, secret string) (string, error) {
	plain, err := json.Marshal(info)
	if err != nil {
		return "", err
	}
	block, err := des.NewTripleDESCipher(key(secret))
	if err != nil {
		return "", err
	}
	pad := des.BlockSize - len(plain)%des.BlockSize
	plain = append(plain, bytes.Repeat([]byte{byte(pad)}, pad)...)
	out := make([]byte, des.BlockSize+len(plain))
	iv := out[:des.BlockSize]
	if _, err := rand.Read(iv); err != nil {
		return "", err
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out[des.BlockSize:], plain)
	return base64.StdEncoding.EncodeToString(out), nil
}

// ErrBadCode is a message that does not open with the code given.
var ErrBadCode = errors.New("the order message does not open with this code")

// Decrypt opens a message made by Encrypt, as a customer's client does.
func Decrypt(data, secret string) (OrderInfo, error) {
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil || len(raw) < 2*des.BlockSize || len(raw)%des.BlockSize != 0 {
		return OrderInfo{}, fmt.Errorf("%w: not base64 of IV and whole 3DES blocks", ErrBadCode)
	}
	block, err := des.NewTripleDESCipher(key(secret))
	if err != nil {
		return OrderInfo{}, err
	}
	plain := make([]byte, len(raw)-des.BlockSize)
	cipher.NewCBCDecrypter(block, raw[:des.BlockSize]).CryptBlocks(plain, raw[des.BlockSize:])
	pad := int(plain[len(plain)-1])
	if pad == 0 || pad > des.BlockSize || !bytes.Equal(plain[len(plain)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		return OrderInfo{}, ErrBadCode
	}
	var info OrderInfo
	if err := json.Unmarshal(plain[:len(plain)-pad], &info); err != nil {
		return OrderInfo{}, ErrBadCode
	}
	return info, nil
}
