package erc20

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/erc20/hdkey"
	"github.com/caddy-checkout/checkout/templates"
)

// siteProvider sets up an erc20 provider of site over shared storage.
func siteProvider(t *testing.T, site string, shared *memData, configure func(*ERC20)) *ERC20 {
	t.Helper()
	e := &ERC20{Confirmations: 1}
	configure(e)
	e.UseChain(newFakeChain(5))
	err := e.Setup(provider.Env{Site: site, Now: time.Now, Data: newMemData(), SharedData: shared, Currencies: new(money.Currencies),
		Lookup: func(context.Context, string) (*order.Order, provider.Payment, error) {
			return nil, provider.Payment{}, nil
		},
		Report: func(context.Context, order.CauseKind, provider.Finding) (*order.Order, error) { return nil, nil },
		Render: func(http.ResponseWriter, *http.Request, int, string, templates.Page) {}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestTwoSitesWithOneXpubNeverShareAnAddress(t *testing.T) {
	shared := newMemData()
	a := siteProvider(t, "one", shared, func(e *ERC20) { e.Xpub = hdkey.TestXpub })
	b := siteProvider(t, "two", shared, func(e *ERC20) { e.Xpub = hdkey.TestXpub })
	seen := map[common.Address]string{}
	for i, p := range []*ERC20{a, b, a, b} {
		addr, err := p.address(context.Background(), "ref"+string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
		if other, dup := seen[addr]; dup {
			t.Fatalf("address %s given to %s and again", addr.Hex(), other)
		}
		seen[addr] = p.env.Site
	}
}

func TestAddressesFileGrowsWithoutReuse(t *testing.T) {
	shared := newMemData()
	path := filepath.Join(t.TempDir(), "addresses.txt")
	list := []string{"0x00000000000000000000000000000000000000a1", "0x00000000000000000000000000000000000000a2"}
	_ = os.WriteFile(path, []byte("# receiving addresses\n"+strings.Join(list, "\n")+"\n"), 0o600)
	p := siteProvider(t, "one", shared, func(e *ERC20) { e.AddressesFile = path })
	for i := range list {
		if _, err := p.address(context.Background(), "r"+string(rune('0'+i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.address(context.Background(), "r9"); err == nil || !strings.Contains(err.Error(), "every address") {
		t.Fatalf("a third attempt with two addresses: %v", err)
	}
	// The operator appends an address and reloads: only the new one is given.
	_ = os.WriteFile(path, []byte(strings.Join(append(list, "0x00000000000000000000000000000000000000a3"), "\n")), 0o600)
	p2 := siteProvider(t, "one", shared, func(e *ERC20) { e.AddressesFile = path })
	addr, err := p2.address(context.Background(), "r9")
	if err != nil || addr != common.HexToAddress("0x00000000000000000000000000000000000000a3") {
		t.Fatalf("after appending: %s, %v", addr.Hex(), err)
	}
}
