package hdkey_test

import (
	"crypto/pbkdf2"
	"crypto/sha512"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/caddy-checkout/checkout/providers/erc20/hdkey"
)

// The BIP-39 test mnemonic that wallets and tools use as a fixture. Its
// first Ethereum address, at m/44'/60'/0'/0/0, is widely published.
const (
	abandonMnemonic = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
	abandonAddress0 = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
)

// bip39Seed is BIP-39's mnemonic-to-seed step: PBKDF2-HMAC-SHA512, 2048
// rounds, salt "mnemonic" plus the passphrase. The mnemonic is ASCII, so
// BIP-39's NFKD normalization changes nothing.
func bip39Seed(t testing.TB, mnemonic, passphrase string) []byte {
	t.Helper()
	seed, err := pbkdf2.Key(sha512.New, mnemonic, []byte("mnemonic"+passphrase), 2048, 64)
	if err != nil {
		t.Fatal(err)
	}
	return seed
}

// The whole path a merchant's setup takes: the wallet derives the account
// chain privately and exports its xpub; the server parses that xpub and
// derives addresses from it, which must be the wallet's own addresses.
func TestAbandonMnemonicAddresses(t *testing.T) {
	account := derive(t, bip39Seed(t, abandonMnemonic, ""), "m/44'/60'/0'/0")
	xpub := account.xpub()
	t.Logf("xpub at m/44'/60'/0'/0: %s", xpub)
	if xpub != hdkey.TestXpub {
		t.Fatalf("xpub %s, want hdkey.TestXpub %s", xpub, hdkey.TestXpub)
	}

	k := mustParse(t, hdkey.TestXpub)
	if k.Depth() != 4 {
		t.Errorf("depth %d, want 4", k.Depth())
	}
	got, err := hdkey.Address(k, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got != common.HexToAddress(abandonAddress0) {
		t.Errorf("address 0 = %s, want %s", got, abandonAddress0)
	}

	// For further indexes, the address the wallet would compute from the
	// child's private key, through go-ethereum, must be the one derived
	// from the xpub.
	for i := range uint32(5) {
		child := account.child(t, i)
		key := child.key.Bytes()
		priv, err := crypto.ToECDSA(key[:])
		if err != nil {
			t.Fatal(err)
		}
		want := crypto.PubkeyToAddress(priv.PublicKey)
		got, err := hdkey.Address(k, i)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("address %d = %s, wallet has %s", i, got, want)
		}
		t.Logf("address %d: %s", i, got)
	}
}
