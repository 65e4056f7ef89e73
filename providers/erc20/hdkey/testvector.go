// A known account key for tests, here and in the packages that build on this
// one (the erc20 provider's tests can take addresses from it without a
// wallet).

package hdkey

// TestXpub is the extended public key at m/44'/60'/0'/0 (the external chain
// of the first Ethereum account) of the well-known BIP-39 test mnemonic
// "abandon abandon abandon abandon abandon abandon abandon abandon abandon
// abandon abandon about" with an empty passphrase. Child 0 is
// 0x9858EfFD232B4033E47d90003D41EC34EcaEda94. Anyone can derive its private
// keys from that mnemonic, so it is for tests only: never configure it to
// receive real payments.
const TestXpub = "xpub6EF8jXqFeFEW5bwMU7RpQtHkzE4KJxcqJtvkCjJumzW8CPpacXkb92ek4WzLQXjL93HycJwTPUAcuNxCqFPKKU5m5Z2Vq4nCyh5CyPeBFFr"
