// Package erc20 takes payments in an ERC-20 token (0xBitcoin by default)
// on the pay page: each attempt gets its own receiving address, derived
// from the merchant's extended public key (no private key on the server),
// and a watcher credits the token's Transfer events to it once they have
// the configured number of confirmations.
package erc20

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	ethereum "github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/caddyserver/caddy/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"
	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/providers/erc20/hdkey"
	"github.com/caddy-checkout/checkout/store"
)

// Name is the provider's name in routes and config.
const Name = "erc20"

// Defaults: the 0xBitcoin token on Ethereum mainnet.
const (
	DefaultToken         = "0xB6eD7644C69416d67B522e20bC294A9a9B405B31"
	DefaultSymbol        = "0xBTC"
	DefaultDecimals      = 8
	DefaultChainID       = 1
	DefaultConfirmations = 12
	DefaultPoll          = 15 * time.Second
)

// ERC20 is the ERC-20 provider for one site. Its exported fields are its
// configuration (the JSON twin of the Caddyfile's erc20 block).
type ERC20 struct {
	// RPC is the Ethereum JSON-RPC endpoint (http, https, ws or wss),
	// such as {env.ETH_RPC_URL}.
	RPC string `json:"rpc,omitempty"`

	// Token is the ERC-20 contract. Default: 0xBitcoin on mainnet.
	Token string `json:"token,omitempty"`

	// Symbol is the currency code orders use for this token, and
	// Decimals its number of decimals. Defaults: 0xBTC and 8. They are
	// set here, never read from the contract.
	Symbol   string `json:"symbol,omitempty"`
	Decimals *int   `json:"decimals,omitempty"`

	// ChainID goes into the payment URI (EIP-681). Default: 1.
	ChainID uint64 `json:"chain_id,omitempty"`

	// Xpub is the extended public key (xpub... or tpub...) whose
	// non-hardened children receive the payments, one per attempt, such
	// as the account key m/44'/60'/0'/0 of the merchant's wallet.
	Xpub string `json:"xpub,omitempty"`

	// AddressesFile lists receiving addresses, one per line, used in
	// order instead of an xpub. Each address is given to one attempt only.
	AddressesFile string `json:"addresses_file,omitempty"`

	// Confirmations is how many blocks (the paying one included) make a
	// transfer count. Default: 12.
	Confirmations uint64 `json:"confirmations,omitempty"`

	// Poll is how often the chain is read. Default: 15s.
	Poll caddy.Duration `json:"poll,omitempty"`

	xpub      string // Xpub with placeholders resolved
	key       *hdkey.ExtendedKey
	addresses []common.Address
	token     common.Address
	currency  string
	env       provider.Env
	log       *zap.Logger
	chain     ChainReader
	watcher   *Watcher
	prefix    string // of this provider's data keys
}

var (
	_ provider.Provider   = (*ERC20)(nil)
	_ provider.Setuper    = (*ERC20)(nil)
	_ provider.Checker    = (*ERC20)(nil)
	_ provider.Runner     = (*ERC20)(nil)
	_ provider.Router     = (*ERC20)(nil)
	_ provider.Labeler    = (*ERC20)(nil)
	_ provider.Currencies = (*ERC20)(nil)
	_ provider.BaseRouter = (*ERC20)(nil)
	_ provider.Announcer  = (*ERC20)(nil)
	_ provider.Personal   = (*ERC20)(nil)
)

// Personal implements provider.Personal: the data a 0xBTCpay shop sent
// with the order for its postback is the shop's, as metadata is, and may
// hold its customer's. It becomes "null", as when the shop sent none: the
// key marks the order as a 0xBTCpay one (status.json, postbacks). The
// address paid to and the transaction stay.
func (*ERC20) Personal(key string) (string, bool) { return "null", key == keyOxbtcpayData }

// Name implements provider.Provider.
func (*ERC20) Name() string { return Name }

// Label implements provider.Labeler.
func (e *ERC20) Label(locale string) string {
	if locale == "ja" {
		return e.currency + "（イーサリアム）"
	}
	return e.currency + " (Ethereum)"
}

// Currency is the code orders paid with this token use (the symbol).
func (e *ERC20) Currency() string { return e.currency }

// Accepts implements provider.Currencies: the token only.
func (e *ERC20) Accepts(currency string) bool { return currency == e.currency }

// UseChain sets the chain client instead of dialing RPC (tests, or a
// client shared by several sites). Call it before Setup.
func (e *ERC20) UseChain(c ChainReader) { e.chain = c }

// Setup checks the configuration, registers the token's currency and
// prepares the watcher.
func (e *ERC20) Setup(env provider.Env) error {
	if e.Token == "" {
		e.Token = DefaultToken
	}
	if !common.IsHexAddress(e.Token) {
		return fmt.Errorf("token %q: want the contract's 0x address", e.Token)
	}
	e.token = common.HexToAddress(e.Token)
	if e.Symbol == "" {
		e.Symbol = DefaultSymbol
	}
	decimals := DefaultDecimals
	if e.Decimals != nil {
		decimals = *e.Decimals
	}
	if decimals < 0 || decimals > 36 {
		return fmt.Errorf("decimals %d: want 0 to 36", decimals)
	}
	if err := env.Currencies.Register(e.Symbol, decimals); err != nil {
		return fmt.Errorf("symbol: %v", err)
	}
	e.currency = e.Symbol
	if e.ChainID == 0 {
		e.ChainID = DefaultChainID
	}
	if e.Confirmations == 0 {
		e.Confirmations = DefaultConfirmations
	}
	if e.xpub == "" {
		e.xpub = e.Xpub
	}
	switch {
	case e.xpub != "" && e.AddressesFile != "":
		return errors.New("use xpub or addresses_file, not both")
	case e.xpub != "":
		k, err := hdkey.Parse(e.xpub)
		if err != nil {
			return fmt.Errorf("xpub: %v", err)
		}
		e.key = k
	case e.AddressesFile != "":
		list, err := readAddresses(e.AddressesFile)
		if err != nil {
			return fmt.Errorf("addresses_file: %v", err)
		}
		e.addresses = list
	default:
		return errors.New("xpub (an extended public key) or addresses_file is required")
	}
	if e.chain == nil {
		u, err := url.Parse(e.RPC)
		if e.RPC == "" || err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ws" && u.Scheme != "wss") {
			return errors.New("rpc: want the Ethereum JSON-RPC endpoint, an http(s) or ws(s) URL")
		}
		e.chain = &lazyClient{url: e.RPC}
	}
	if env.Now == nil || env.Lookup == nil || env.Report == nil || env.Render == nil || env.Data == nil || env.SharedData == nil {
		return errors.New("incomplete site environment")
	}
	e.env = env
	e.log = env.Logger
	if e.log == nil {
		e.log = zap.NewNop()
	}
	e.prefix = Name + "/" + strings.ToLower(e.token.Hex()) + "/"
	e.watcher = NewWatcher(e.chain, e.token, e.Confirmations, env.Data, e.prefix, e.credit)
	e.watcher.SetClock(env.Now)
	return nil
}

func readAddresses(path string) ([]common.Address, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var list []common.Address
	seen := map[common.Address]bool{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if !common.IsHexAddress(s) {
			return nil, fmt.Errorf("line %d: not an address", line)
		}
		a := common.HexToAddress(s)
		if seen[a] {
			return nil, fmt.Errorf("line %d: %s is listed twice", line, a.Hex())
		}
		seen[a] = true
		list = append(list, a)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, errors.New("no addresses in the file")
	}
	return list, nil
}

// source names an xpub in data keys, so that another xpub starts its own
// count.
func (e *ERC20) source() string {
	h := sha256.Sum256([]byte(e.key.String()))
	return hex.EncodeToString(h[:8])
}

// address gives the attempt its receiving address: the one it already
// has, else one never given before, recorded durably before it is shown.
// Addresses are claimed in the store's shared space, so two sites with
// the same xpub or list never give out the same one.
func (e *ERC20) address(ctx context.Context, ref string) (common.Address, error) {
	refKey := e.prefix + "ref/" + ref
	if raw, err := e.env.Data.GetData(ctx, refKey); err == nil {
		return common.HexToAddress(string(raw)), nil
	}
	owner := []byte(e.env.Site + "/" + ref)
	claim := func(a common.Address) (bool, error) {
		got, err := e.env.SharedData.PutDataIfAbsent(ctx, Name+"/used/"+a.Hex(), owner)
		return err == nil && string(got) == string(owner), err
	}
	var addr common.Address
	if e.key != nil {
		for {
			i, err := e.env.SharedData.NextSeq(ctx, Name+"/xpub/"+e.source()+"/next")
			if err != nil {
				return addr, err
			}
			if i > hdkey.MaxIndex {
				return addr, errors.New("the xpub has no unused non-hardened children left")
			}
			a, err := hdkey.Address(e.key, uint32(i))
			if errors.Is(err, hdkey.ErrInvalidChild) {
				continue // BIP-32: an invalid child is skipped
			}
			if err != nil {
				return addr, err
			}
			if ok, err := claim(a); err != nil {
				return addr, err
			} else if ok {
				addr = a
				break
			}
		}
	} else {
		found := false
		for _, a := range e.addresses {
			if _, err := e.env.SharedData.GetData(ctx, Name+"/used/"+a.Hex()); err == nil {
				continue // given out before (a cheap read; only a free one is claimed)
			}
			ok, err := claim(a)
			if err != nil {
				return addr, err
			}
			if ok {
				addr, found = a, true
				break
			}
		}
		if !found {
			return addr, errors.New("every address of addresses_file has been used; add new ones to the file")
		}
	}
	stored, err := e.env.Data.PutDataIfAbsent(ctx, refKey, []byte(addr.Hex()))
	if err != nil {
		return addr, err
	}
	addr = common.HexToAddress(string(stored)) // a concurrent start may have won
	return addr, e.watcher.Watch(ctx, addr, ref)
}

// units converts an order amount in the token's currency to base units.
func (e *ERC20) units(a money.Amount) (*big.Int, error) {
	if a.Currency() != e.currency {
		return nil, currencyError{order: a.Currency(), token: e.currency}
	}
	return a.Minor(), nil
}

// currencyError refuses an order in another currency than the token.
type currencyError struct{ order, token string }

func (u currencyError) Error() string {
	return fmt.Sprintf("order in %s, token %s", u.order, u.token)
}

// UserMessage implements provider.UserError.
func (u currencyError) UserMessage(locale string) string {
	if locale == "ja" {
		return fmt.Sprintf("このご注文は%sです。このお支払い方法は%sのみ受け付けます。", u.order, u.token)
	}
	return fmt.Sprintf("This order is in %s; this payment method takes %s only.", u.order, u.token)
}

// Start gives the attempt its address and shows the pay page's part.
func (e *ERC20) Start(ctx context.Context, p provider.Payment) (provider.Start, error) {
	if _, err := e.units(p.Amount); err != nil {
		return provider.Start{}, err
	}
	addr, err := e.address(ctx, p.Ref)
	if err != nil {
		return provider.Start{}, fmt.Errorf("assigning a receiving address: %w", err)
	}
	page, err := e.page(p, addr)
	if err != nil {
		return provider.Start{}, err
	}
	return provider.Start{Page: page, ProviderRef: addr.Hex()}, nil
}

// credit applies a confirmed transfer to its attempt: paid once what has
// arrived covers the amount (more is paid and flagged overpaid), on hold
// with the received amount shown while it does not.
func (e *ERC20) credit(ctx context.Context, c *Credit) error {
	_, p, err := e.env.Lookup(ctx, c.Ref)
	if errors.Is(err, store.ErrNotFound) {
		e.log.Warn("transfer to an address whose attempt is gone", zap.String("address", c.To.Hex()), zap.String("tx", c.TxHash.Hex()))
		return nil
	}
	if err != nil {
		return err // the store failed: credit it on the next poll
	}
	amt, err := e.env.Currencies.FromMinor(c.Amount, e.currency)
	if err != nil {
		return err
	}
	total := amt
	if p.Received.Valid() && p.Received.Currency() == e.currency {
		total = p.Received.Add(amt)
	}
	f := provider.Finding{Ref: c.Ref, ProviderRef: c.To.Hex(), EventID: c.ID(), Paid: total,
		Transaction: c.TxHash.Hex(), AcceptOver: true, Status: order.OnHold,
		Note: fmt.Sprintf("%s %s from %s in block %d", amt, e.currency, c.From.Hex(), c.Block)}
	if total.Cmp(p.Amount) >= 0 {
		f.Status = order.Paid
	}
	_, err = e.env.Report(ctx, order.ByWatcher, f)
	if errors.Is(err, order.ErrUnknownRef) {
		// Not an attempt of this provider (any more): said once, loudly,
		// and dropped, so that one such transfer never holds up the
		// credits of every later one.
		e.log.Error("a confirmed transfer reached an address whose attempt this provider cannot pay; the money arrived but no order was credited: look the transaction up and settle it by hand",
			zap.String("address", c.To.Hex()), zap.String("tx", c.TxHash.Hex()), zap.String("amount", amt.String()))
		return nil
	}
	return err
}

// Check reports nothing: the watcher reports transfers as it finds them.
// (The reconciler and expiry ask before ending an order; a transfer not
// yet confirmed must not stop an expiry, and a late one is paid late.)
func (e *ERC20) Check(context.Context, provider.Payment) (provider.Finding, error) {
	return provider.Finding{}, nil
}

// Run loads the watcher's state and polls the chain until ctx ends.
func (e *ERC20) Run(ctx context.Context) error {
	if err := e.watcher.Load(ctx); err != nil {
		return err
	}
	poll := time.Duration(e.Poll)
	if poll <= 0 {
		poll = DefaultPoll
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	if l, ok := e.chain.(*lazyClient); ok {
		defer l.close()
	}
	for {
		if _, err := e.PollOnce(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("reading the chain", zap.String("token", e.token.Hex()), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// PollOnce runs one poll of the watcher.
func (e *ERC20) PollOnce(ctx context.Context) (PollResult, error) {
	return e.watcher.Poll(ctx)
}

// lazyClient dials the node on first use, so that loading a config (or
// only validating it) opens no connection; Run closes it.
type lazyClient struct {
	url    string
	mu     sync.Mutex
	client *ethclient.Client
}

func (l *lazyClient) get(ctx context.Context) (*ethclient.Client, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.client == nil {
		c, err := ethclient.DialContext(ctx, l.url)
		if err != nil {
			return nil, errors.New("cannot reach the rpc endpoint") // its URL may hold an API key
		}
		l.client = c
	}
	return l.client, nil
}

func (l *lazyClient) HeaderByNumber(ctx context.Context, n *big.Int) (*types.Header, error) {
	c, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	h, err := c.HeaderByNumber(ctx, n)
	return h, scrub(err)
}

func (l *lazyClient) FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error) {
	c, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	logs, err := c.FilterLogs(ctx, q)
	return logs, scrub(err)
}

// scrub drops the endpoint's URL from a transport error: node URLs often
// carry an API key, and these errors are logged.
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s to the rpc endpoint: %w", ue.Op, ue.Err)
	}
	return err
}

func (l *lazyClient) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.client != nil {
		l.client.Close()
		l.client = nil
	}
}

// Watcher is the provider's chain watcher (tests and benchmarks).
func (e *ERC20) Watcher() *Watcher { return e.watcher }
