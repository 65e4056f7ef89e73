package hdkey_test

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/caddy-checkout/checkout/providers/erc20/hdkey"
)

type chainKeys struct{ path, xpub, xprv string }

// BIP-32's test vectors 1 to 3, each a seed and the keys of a chain of
// descendants, copied from the BIP's "Test Vectors" section.
var bip32Vectors = []struct {
	name  string
	seed  string
	chain []chainKeys
}{
	{
		name: "vector 1",
		seed: "000102030405060708090a0b0c0d0e0f",
		chain: []chainKeys{
			{"m",
				"xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8",
				"xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi"},
			{"m/0H",
				"xpub68Gmy5EdvgibQVfPdqkBBCHxA5htiqg55crXYuXoQRKfDBFA1WEjWgP6LHhwBZeNK1VTsfTFUHCdrfp1bgwQ9xv5ski8PX9rL2dZXvgGDnw",
				"xprv9uHRZZhk6KAJC1avXpDAp4MDc3sQKNxDiPvvkX8Br5ngLNv1TxvUxt4cV1rGL5hj6KCesnDYUhd7oWgT11eZG7XnxHrnYeSvkzY7d2bhkJ7"},
			{"m/0H/1",
				"xpub6ASuArnXKPbfEwhqN6e3mwBcDTgzisQN1wXN9BJcM47sSikHjJf3UFHKkNAWbWMiGj7Wf5uMash7SyYq527Hqck2AxYysAA7xmALppuCkwQ",
				"xprv9wTYmMFdV23N2TdNG573QoEsfRrWKQgWeibmLntzniatZvR9BmLnvSxqu53Kw1UmYPxLgboyZQaXwTCg8MSY3H2EU4pWcQDnRnrVA1xe8fs"},
			{"m/0H/1/2H",
				"xpub6D4BDPcP2GT577Vvch3R8wDkScZWzQzMMUm3PWbmWvVJrZwQY4VUNgqFJPMM3No2dFDFGTsxxpG5uJh7n7epu4trkrX7x7DogT5Uv6fcLW5",
				"xprv9z4pot5VBttmtdRTWfWQmoH1taj2axGVzFqSb8C9xaxKymcFzXBDptWmT7FwuEzG3ryjH4ktypQSAewRiNMjANTtpgP4mLTj34bhnZX7UiM"},
			{"m/0H/1/2H/2",
				"xpub6FHa3pjLCk84BayeJxFW2SP4XRrFd1JYnxeLeU8EqN3vDfZmbqBqaGJAyiLjTAwm6ZLRQUMv1ZACTj37sR62cfN7fe5JnJ7dh8zL4fiyLHV",
				"xprvA2JDeKCSNNZky6uBCviVfJSKyQ1mDYahRjijr5idH2WwLsEd4Hsb2Tyh8RfQMuPh7f7RtyzTtdrbdqqsunu5Mm3wDvUAKRHSC34sJ7in334"},
			{"m/0H/1/2H/2/1000000000",
				"xpub6H1LXWLaKsWFhvm6RVpEL9P4KfRZSW7abD2ttkWP3SSQvnyA8FSVqNTEcYFgJS2UaFcxupHiYkro49S8yGasTvXEYBVPamhGW6cFJodrTHy",
				"xprvA41z7zogVVwxVSgdKUHDy1SKmdb533PjDz7J6N6mV6uS3ze1ai8FHa8kmHScGpWmj4WggLyQjgPie1rFSruoUihUZREPSL39UNdE3BBDu76"},
		},
	},
	{
		name: "vector 2",
		seed: "fffcf9f6f3f0edeae7e4e1dedbd8d5d2cfccc9c6c3c0bdbab7b4b1aeaba8a5a29f9c999693908d8a8784817e7b7875726f6c696663605d5a5754514e4b484542",
		chain: []chainKeys{
			{"m",
				"xpub661MyMwAqRbcFW31YEwpkMuc5THy2PSt5bDMsktWQcFF8syAmRUapSCGu8ED9W6oDMSgv6Zz8idoc4a6mr8BDzTJY47LJhkJ8UB7WEGuduB",
				"xprv9s21ZrQH143K31xYSDQpPDxsXRTUcvj2iNHm5NUtrGiGG5e2DtALGdso3pGz6ssrdK4PFmM8NSpSBHNqPqm55Qn3LqFtT2emdEXVYsCzC2U"},
			{"m/0",
				"xpub69H7F5d8KSRgmmdJg2KhpAK8SR3DjMwAdkxj3ZuxV27CprR9LgpeyGmXUbC6wb7ERfvrnKZjXoUmmDznezpbZb7ap6r1D3tgFxHmwMkQTPH",
				"xprv9vHkqa6EV4sPZHYqZznhT2NPtPCjKuDKGY38FBWLvgaDx45zo9WQRUT3dKYnjwih2yJD9mkrocEZXo1ex8G81dwSM1fwqWpWkeS3v86pgKt"},
			{"m/0/2147483647H",
				"xpub6ASAVgeehLbnwdqV6UKMHVzgqAG8Gr6riv3Fxxpj8ksbH9ebxaEyBLZ85ySDhKiLDBrQSARLq1uNRts8RuJiHjaDMBU4Zn9h8LZNnBC5y4a",
				"xprv9wSp6B7kry3Vj9m1zSnLvN3xH8RdsPP1Mh7fAaR7aRLcQMKTR2vidYEeEg2mUCTAwCd6vnxVrcjfy2kRgVsFawNzmjuHc2YmYRmagcEPdU9"},
			{"m/0/2147483647H/1",
				"xpub6DF8uhdarytz3FWdA8TvFSvvAh8dP3283MY7p2V4SeE2wyWmG5mg5EwVvmdMVCQcoNJxGoWaU9DCWh89LojfZ537wTfunKau47EL2dhHKon",
				"xprv9zFnWC6h2cLgpmSA46vutJzBcfJ8yaJGg8cX1e5StJh45BBciYTRXSd25UEPVuesF9yog62tGAQtHjXajPPdbRCHuWS6T8XA2ECKADdw4Ef"},
			{"m/0/2147483647H/1/2147483646H",
				"xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL",
				"xprvA1RpRA33e1JQ7ifknakTFpgNXPmW2YvmhqLQYMmrj4xJXXWYpDPS3xz7iAxn8L39njGVyuoseXzU6rcxFLJ8HFsTjSyQbLYnMpCqE2VbFWc"},
			{"m/0/2147483647H/1/2147483646H/2",
				"xpub6FnCn6nSzZAw5Tw7cgR9bi15UV96gLZhjDstkXXxvCLsUXBGXPdSnLFbdpq8p9HmGsApME5hQTZ3emM2rnY5agb9rXpVGyy3bdW6EEgAtqt",
				"xprvA2nrNbFZABcdryreWet9Ea4LvTJcGsqrMzxHx98MMrotbir7yrKCEXw7nadnHM8Dq38EGfSh6dqA9QWTyefMLEcBYJUuekgW4BYPJcr9E7j"},
		},
	},
	{
		// Vector 3 is about keeping leading zeros; its only step is
		// hardened, so it checks parsing and serialization here.
		name: "vector 3",
		seed: "4b381541583be4423346c643850da4b320e46a87ae3d2a4e6da11eba819cd4acba45d239319ac14f863b8d5ab5a0d0c64d2e8a1e7d1457df2e5a3c51c73235be",
		chain: []chainKeys{
			{"m",
				"xpub661MyMwAqRbcEZVB4dScxMAdx6d4nFc9nvyvH3v4gJL378CSRZiYmhRoP7mBy6gSPSCYk6SzXPTf3ND1cZAceL7SfJ1Z3GC8vBgp2epUt13",
				"xprv9s21ZrQH143K25QhxbucbDDuQ4naNntJRi4KUfWT7xo4EKsHt2QJDu7KXp1A3u7Bi1j8ph3EGsZ9Xvz9dGuVrtHHs7pXeTzjuxBrCmmhgC6"},
			{"m/0H",
				"xpub68NZiKmJWnxxS6aaHmn81bvJeTESw724CRDs6HbuccFQN9Ku14VQrADWgqbhhTHBaohPX4CjNLf9fq9MYo6oDaPPLPxSb7gwQN3ih19Zm4Y",
				"xprv9uPDJpEQgRQfDcW7BkF7eTya6RPxXeJCqCJGHuCJ4GiRVLzkTXBAJMu2qaMWPrS7AANYqdq6vcBcBUdJCVVFceUvJFjaPdGZ2y9WACViL4L"},
		},
	},
}

func mustParse(t testing.TB, s string) *hdkey.ExtendedKey {
	t.Helper()
	k, err := hdkey.Parse(s)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return k
}

// Every non-hardened step in the vectors, taken from the parent's xpub alone:
// what a watch-only server does. The serialization checks the child's key,
// chain code, depth, index and parent fingerprint at once.
func TestChildMatchesBIP32Vectors(t *testing.T) {
	steps := 0
	for _, v := range bip32Vectors {
		for j := 1; j < len(v.chain); j++ {
			parent, child := v.chain[j-1], v.chain[j]
			last := child.path[strings.LastIndex(child.path, "/")+1:]
			if strings.HasSuffix(last, "H") {
				continue
			}
			steps++
			t.Run(v.name+"/"+child.path, func(t *testing.T) {
				p := mustParse(t, parent.xpub)
				var i uint32
				for _, c := range last {
					i = i*10 + uint32(c-'0')
				}
				c, err := p.Child(i)
				if err != nil {
					t.Fatalf("Child(%d): %v", i, err)
				}
				if got := c.String(); got != child.xpub {
					t.Errorf("Child(%d) = %s\nwant          %s", i, got, child.xpub)
				}
				if c.Depth() != p.Depth()+1 {
					t.Errorf("depth %d, want %d", c.Depth(), p.Depth()+1)
				}
			})
		}
	}
	// Vector 1 has three such steps and vector 2 three.
	if steps != 6 {
		t.Errorf("%d public steps found in the vectors, want 6", steps)
	}
}

// Every xpub in the vectors reads back to itself, and the test's private
// derivation, which the Ethereum test relies on, reproduces every listed key.
func TestVectorsRoundTripAndPrivateDerivation(t *testing.T) {
	for _, v := range bip32Vectors {
		seed, err := hex.DecodeString(v.seed)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range v.chain {
			t.Run(v.name+"/"+c.path, func(t *testing.T) {
				if got := mustParse(t, c.xpub).String(); got != c.xpub {
					t.Errorf("Parse(x).String() = %s, want x", got)
				}
				n := derive(t, seed, c.path)
				if got := n.xpub(); got != c.xpub {
					t.Errorf("private derivation: xpub %s, want %s", got, c.xpub)
				}
				if got := n.xprv(); got != c.xprv {
					t.Errorf("private derivation: xprv differs from the vector's")
				}
			})
		}
	}
}

// BIP-32's test vector 5 lists keys that must be refused. All of those that a
// public-key parser can meet are here, each with a word its error must
// contain, so that a key is refused for its own fault and not by luck of an
// earlier check. The two xprv entries are refused as private keys before
// anything else is looked at; a bad checksum on an xpub is in
// TestParseRefusesMalformed.
func TestParseRefusesBIP32Vector5(t *testing.T) {
	for _, tc := range []struct {
		reason, key, want string
	}{
		{"pubkey version / prvkey mismatch",
			"xpub661MyMwAqRbcEYS8w7XLSVeEsBXy79zSzH1J8vCdxAZningWLdN3zgtU6LBpB85b3D2yc8sfvZU521AAwdZafEz7mnzBBsz4wKY5fTtTQBm",
			"private key"},
		{"prvkey version / pubkey mismatch",
			"xprv9s21ZrQH143K24Mfq5zL5MhWK9hUhhGbd45hLXo2Pq2oqzMMo63oStZzFGTQQD3dC4H2D5GBj7vWvSQaaBv5cxi9gafk7NF3pnBju6dwKvH",
			"private key"},
		{"invalid pubkey prefix 04",
			"xpub661MyMwAqRbcEYS8w7XLSVeEsBXy79zSzH1J8vCdxAZningWLdN3zgtU6Txnt3siSujt9RCVYsx4qHZGc62TG4McvMGcAUjeuwZdduYEvFn",
			"0x04"},
		{"invalid pubkey prefix 01",
			"xpub661MyMwAqRbcEYS8w7XLSVeEsBXy79zSzH1J8vCdxAZningWLdN3zgtU6N8ZMMXctdiCjxTNq964yKkwrkBJJwpzZS4HS2fxvyYUA4q2Xe4",
			"0x01"},
		{"zero depth with non-zero parent fingerprint",
			"xpub661no6RGEX3uJkY4bNnPcw4URcQTrSibUZ4NqJEw5eBkv7ovTwgiT91XX27VbEXGENhYRCf7hyEbWrR3FewATdCEebj6znwMfQkhRYHRLpJ",
			"parent fingerprint"},
		{"zero depth with non-zero index",
			"xpub661MyMwAuDcm6CRQ5N4qiHKrJ39Xe1R1NyfouMKTTWcguwVcfrZJaNvhpebzGerh7gucBvzEQWRugZDuDXjNDRmXzSZe4c7mnTK97pTvGS8",
			"child index"},
		{"unknown extended key version",
			"DMwo58pR1QLEFihHiXPVykYB6fJmsTeHvyTp7hRThAtCX8CvYzgPcn8XnmdfHPmHJiEDXkTiJTVV9rHEBUem2mwVbbNfvT2MTcAqj3nesx8uBf9",
			"unknown version"},
		{"invalid pubkey 020000000000000000000000000000000000000000000000000000000000000007",
			"xpub661MyMwAqRbcEYS8w7XLSVeEsBXy79zSzH1J8vCdxAZningWLdN3zgtU6Q5JXayek4PRsn35jii4veMimro1xefsM58PgBMrvdYre8QyULY",
			"not a point"},
		{"invalid checksum",
			"xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHL",
			"private key"},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			assertRefused(t, tc.key, tc.want)
		})
	}
}

// Malformed public keys that vector 5 has no public example of.
func TestParseRefusesMalformed(t *testing.T) {
	good := mustParse(t, hdkey.TestXpub).String()
	payload, err := base58CheckDecode(good)
	if err != nil {
		t.Fatal(err)
	}
	// Another last character leaves the length alone and breaks the checksum.
	other := "2"
	if good[len(good)-1] == '2' {
		other = "3"
	}
	mistyped := good[:len(good)-1] + other
	for _, tc := range []struct{ name, key, want string }{
		{"empty", "", "checksum"},
		{"xpub checksum", mistyped, "checksum"},
		{"not base58", good[:20] + "0" + good[21:], "base58"},
		{"payload one byte short", base58CheckEncode(payload[:77]), "77 bytes"},
		{"payload one byte long", base58CheckEncode(append(payload[:78:78], 0)), "79 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assertRefused(t, tc.key, tc.want)
		})
	}
}

// A private key in a server's config is the mistake this package exists to
// prevent: it is refused, including mistyped, testnet and SLIP-132 forms, and
// the error quotes none of it.
func TestParseRefusesPrivateKeys(t *testing.T) {
	xprv := bip32Vectors[0].chain[1].xprv
	seed, _ := hex.DecodeString(bip32Vectors[0].seed)
	n := derive(t, seed, "m/0H")
	key := n.key.Bytes()
	tprv := n.serialize(0x04358394, append([]byte{0}, key[:]...))
	for name, s := range map[string]string{
		"xprv":                   xprv,
		"xprv with a typo":       xprv[:30] + "z" + xprv[31:],
		"tprv":                   tprv,
		"zprv-looking":           "z" + xprv[1:],
		"private key data, xpub": n.serialize(versionXpub, append([]byte{0}, key[:]...)),
	} {
		t.Run(name, func(t *testing.T) {
			assertRefused(t, s, "public key")
		})
	}
}

// assertRefused checks that Parse refuses s with an error containing want
// and quoting no run of s long enough to matter.
func assertRefused(t *testing.T, s, want string) {
	t.Helper()
	k, err := hdkey.Parse(s)
	if err == nil {
		t.Fatalf("Parse accepted the key (depth %d)", k.Depth())
	}
	msg := err.Error()
	if !strings.Contains(msg, want) {
		t.Errorf("error %q does not mention %q", msg, want)
	}
	for i := 0; i+8 <= len(s); i++ {
		if strings.Contains(msg, s[i:i+8]) {
			t.Errorf("error %q quotes the input", msg)
			break
		}
	}
}

func TestChildRefusesHardenedIndex(t *testing.T) {
	k := mustParse(t, hdkey.TestXpub)
	for _, i := range []uint32{hardened, hardened + 44, 1<<32 - 1} {
		if _, err := k.Child(i); err == nil || errors.Is(err, hdkey.ErrInvalidChild) {
			t.Errorf("Child(%d) error = %v, want a hardened-index error", i, err)
		}
		if _, err := hdkey.Address(k, i); err == nil {
			t.Errorf("Address(k, %d) succeeded", i)
		}
	}
	if _, err := k.Child(hdkey.MaxIndex); err != nil {
		t.Errorf("Child(MaxIndex): %v", err)
	}
}

func TestChildRefusesBeyondDepth255(t *testing.T) {
	payload, err := base58CheckDecode(hdkey.TestXpub)
	if err != nil {
		t.Fatal(err)
	}
	payload[4] = 255
	k := mustParse(t, base58CheckEncode(payload))
	if _, err := k.Child(0); err == nil {
		t.Error("derived a child at depth 256")
	}
}

// A testnet key parses, keeps its version through derivation, and gives the
// same Ethereum addresses: the network byte is Bitcoin's concern.
func TestTestnetKey(t *testing.T) {
	payload, err := base58CheckDecode(hdkey.TestXpub)
	if err != nil {
		t.Fatal(err)
	}
	payload[0], payload[1], payload[2], payload[3] = 0x04, 0x35, 0x87, 0xCF
	tpub := base58CheckEncode(payload)
	if !strings.HasPrefix(tpub, "tpub") {
		t.Fatalf("testnet serialization %q does not start with tpub", tpub[:4])
	}
	k := mustParse(t, tpub)
	if k.String() != tpub {
		t.Error("tpub does not round-trip")
	}
	c, err := k.Child(7)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.String(), "tpub") {
		t.Error("child of a tpub is not a tpub")
	}
	want, _ := hdkey.Address(mustParse(t, hdkey.TestXpub), 7)
	if c.Address() != want {
		t.Errorf("testnet child address %s, mainnet %s", c.Address(), want)
	}
}

func BenchmarkChildAddress(b *testing.B) {
	k := mustParse(b, hdkey.TestXpub)
	var i uint32
	var sink common.Address
	for b.Loop() {
		a, err := hdkey.Address(k, i)
		if err != nil {
			b.Fatal(err)
		}
		sink = a
		i++
	}
	_ = sink
}
