package erc20

import (
	"context"
	"math/big"
	"sort"
	"strings"
	"sync"
	"testing"

	ethereum "github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/caddy-checkout/checkout/store"
)

// memData is an in-memory store.ProviderData.
type memData struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newMemData() *memData { return &memData{m: map[string][]byte{}} }

func (d *memData) GetData(_ context.Context, k string) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.m[k]
	if !ok {
		return nil, store.ErrNotFound
	}
	return v, nil
}

func (d *memData) PutData(_ context.Context, k string, v []byte) error {
	d.mu.Lock()
	d.m[k] = v
	d.mu.Unlock()
	return nil
}

func (d *memData) PutDataIfAbsent(_ context.Context, k string, v []byte) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.m[k]; ok {
		return old, nil
	}
	d.m[k] = v
	return v, nil
}

func (d *memData) ScanData(_ context.Context, prefix string, fn func(string, []byte) error) error {
	d.mu.Lock()
	var keys []string
	for k := range d.m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		vals[i] = d.m[k]
	}
	d.mu.Unlock()
	for i, k := range keys {
		if err := fn(k, vals[i]); err != nil {
			return err
		}
	}
	return nil
}

func (d *memData) NextSeq(_ context.Context, k string) (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := uint64(len(d.m[k]))
	d.m[k] = append(d.m[k], 0)
	return n, nil
}

// fakeChain is a chain of headers and Transfer logs that tests rewrite
// at will (a reorg replaces blocks). It counts eth_getLogs calls and
// returns every log of the range, leaving the filtering to the watcher,
// as a node with a loose filter could.
type fakeChain struct {
	mu      sync.Mutex
	blocks  []common.Hash // by number; a block's hash changes when it is replaced
	logs    map[uint64][]types.Log
	getLogs int
	lastQ   ethereum.FilterQuery
}

func newFakeChain(n int) *fakeChain {
	c := &fakeChain{logs: map[uint64][]types.Log{}}
	c.mine(n)
	return c
}

func (c *fakeChain) mine(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := 0; i < n; i++ {
		c.blocks = append(c.blocks, crypto.Keccak256Hash([]byte("block"), big.NewInt(int64(len(c.blocks))).Bytes(), []byte("a")))
	}
}

// reorg replaces blocks from number on (their logs are dropped) with n
// new blocks.
func (c *fakeChain) reorg(from uint64, n int) {
	c.mu.Lock()
	c.blocks = c.blocks[:from]
	for b := range c.logs {
		if b >= from {
			delete(c.logs, b)
		}
	}
	for i := 0; i < n; i++ {
		c.blocks = append(c.blocks, crypto.Keccak256Hash([]byte("block"), big.NewInt(int64(len(c.blocks))).Bytes(), []byte("b")))
	}
	c.mu.Unlock()
}

func (c *fakeChain) head() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return uint64(len(c.blocks) - 1)
}

// transfer adds a log to the head block.
func (c *fakeChain) transfer(token, to common.Address, amount int64) common.Hash {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := uint64(len(c.blocks) - 1)
	tx := crypto.Keccak256Hash([]byte("tx"), to.Bytes(), big.NewInt(int64(len(c.logs[n]))).Bytes(), c.blocks[n].Bytes())
	c.logs[n] = append(c.logs[n], types.Log{
		Address:     token,
		Topics:      []common.Hash{TransferTopic, common.BytesToHash(common.HexToAddress("0xfeed").Bytes()), common.BytesToHash(to.Bytes())},
		Data:        common.LeftPadBytes(big.NewInt(amount).Bytes(), 32),
		BlockNumber: n, BlockHash: c.blocks[n], TxHash: tx, Index: uint(len(c.logs[n])),
	})
	return tx
}

// header makes a header whose Hash() is stable per block: the hash is
// carried in Extra, which Hash() covers.
func (c *fakeChain) header(n uint64) *types.Header {
	return &types.Header{Number: new(big.Int).SetUint64(n), Extra: c.blocks[n].Bytes(), Difficulty: big.NewInt(0)}
}

func (c *fakeChain) HeaderByNumber(_ context.Context, number *big.Int) (*types.Header, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if number == nil {
		return c.header(uint64(len(c.blocks) - 1)), nil
	}
	n := number.Uint64()
	if n >= uint64(len(c.blocks)) {
		return nil, ethereum.NotFound
	}
	return c.header(n), nil
}

func (c *fakeChain) FilterLogs(_ context.Context, q ethereum.FilterQuery) ([]types.Log, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.getLogs++
	c.lastQ = q
	var out []types.Log
	for b := q.FromBlock.Uint64(); b <= q.ToBlock.Uint64(); b++ {
		out = append(out, c.logs[b]...)
	}
	return out, nil
}

var (
	testToken = common.HexToAddress("0xB6eD7644C69416d67B522e20bC294A9a9B405B31")
	lookAlike = common.HexToAddress("0x00000000000000000000000000000000000b7c00")
)

type credited struct {
	mu  sync.Mutex
	ids map[string]*Credit
}

func (c *credited) fn(_ context.Context, cr *Credit) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ids == nil {
		c.ids = map[string]*Credit{}
	}
	c.ids[cr.ID()] = cr
	return nil
}

func (c *credited) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ids)
}

func poll(t *testing.T, w *Watcher) PollResult {
	t.Helper()
	res, err := w.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestWatcherCreditsAtExactlyNConfirmations(t *testing.T) {
	chain := newFakeChain(100)
	var cr credited
	w := NewWatcher(chain, testToken, 3, newMemData(), "erc20/x/", cr.fn)
	addr := common.HexToAddress("0x1111")
	if err := w.Watch(context.Background(), addr, "ref1"); err != nil {
		t.Fatal(err)
	}
	poll(t, w)
	chain.mine(1)
	chain.transfer(testToken, addr, 500)
	if res := poll(t, w); res.Seen != 1 || cr.count() != 0 {
		t.Fatalf("at 1 confirmation: %+v, %d credited", res, cr.count())
	}
	if p := w.Progress("ref1"); !p.Seen || p.Confirmations != 1 || p.Amount.Int64() != 500 {
		t.Fatalf("progress %+v", p)
	}
	chain.mine(1)
	if poll(t, w); cr.count() != 0 {
		t.Fatal("credited at 2 of 3 confirmations")
	}
	chain.mine(1)
	if poll(t, w); cr.count() != 1 {
		t.Fatal("not credited at 3 confirmations")
	}
	chain.mine(5)
	if poll(t, w); cr.count() != 1 {
		t.Fatal("credited twice")
	}
}

func TestWatcherOneGetLogsPerPollAndTopicFilter(t *testing.T) {
	chain := newFakeChain(10)
	var cr credited
	w := NewWatcher(chain, testToken, 1, newMemData(), "erc20/x/", cr.fn)
	for i := 0; i < topicFilterLimit; i++ {
		_ = w.Watch(context.Background(), common.BigToAddress(big.NewInt(int64(1000+i))), "r")
	}
	poll(t, w)
	if chain.getLogs != 1 || len(chain.lastQ.Topics) != 3 || len(chain.lastQ.Topics[2]) != topicFilterLimit {
		t.Fatalf("%d getLogs, topics %d", chain.getLogs, len(chain.lastQ.Topics))
	}
	_ = w.Watch(context.Background(), common.HexToAddress("0xabcdef"), "r2")
	chain.mine(1)
	poll(t, w)
	if chain.getLogs != 2 || len(chain.lastQ.Topics) != 1 || chain.lastQ.Addresses[0] != testToken {
		t.Fatalf("with many addresses the filter should be the token and topic only: %+v", chain.lastQ)
	}
}

func TestWatcherIgnoresWhatIsNotTheTokensTransfer(t *testing.T) {
	chain := newFakeChain(10)
	var cr credited
	w := NewWatcher(chain, testToken, 1, newMemData(), "erc20/x/", cr.fn)
	addr := common.HexToAddress("0x2222")
	_ = w.Watch(context.Background(), addr, "ref")
	poll(t, w)
	chain.mine(1)
	chain.transfer(lookAlike, addr, 500)                          // same event, another contract
	chain.transfer(testToken, addr, 0)                            // zero-value spam
	chain.transfer(testToken, common.HexToAddress("0x3333"), 500) // not ours
	chain.transfer(testToken, addr, 500)                          // marked removed below
	chain.mu.Lock()
	n := uint64(len(chain.blocks) - 1)
	chain.logs[n][len(chain.logs[n])-1].Removed = true
	chain.mu.Unlock()
	chain.mine(3)
	if res := poll(t, w); res.Seen != 0 || cr.count() != 0 {
		t.Fatalf("credited something that is not the token's transfer to us: %+v", res)
	}
}

func TestWatcherReorgUnseesTransfer(t *testing.T) {
	chain := newFakeChain(50)
	var cr credited
	w := NewWatcher(chain, testToken, 3, newMemData(), "erc20/x/", cr.fn)
	addr := common.HexToAddress("0x4444")
	_ = w.Watch(context.Background(), addr, "ref")
	poll(t, w)
	chain.mine(1)
	paying := chain.head()
	chain.transfer(testToken, addr, 700)
	chain.mine(1)
	if res := poll(t, w); res.Seen != 1 {
		t.Fatalf("not seen: %+v", res)
	}
	// The block with the transfer is replaced by a longer branch without it.
	chain.reorg(paying, 4)
	res := poll(t, w)
	if !res.Reorg || w.Progress("ref").Seen {
		t.Fatalf("after the reorg: %+v, progress %+v", res, w.Progress("ref"))
	}
	chain.mine(10)
	if poll(t, w); cr.count() != 0 {
		t.Fatal("a reorged-out transfer was credited")
	}
}

func TestWatcherRestartBetweenSeenAndCredited(t *testing.T) {
	chain := newFakeChain(30)
	data := newMemData()
	var cr credited
	w := NewWatcher(chain, testToken, 3, data, "erc20/x/", cr.fn)
	addr := common.HexToAddress("0x5555")
	_ = w.Watch(context.Background(), addr, "ref")
	poll(t, w)
	chain.mine(1)
	chain.transfer(testToken, addr, 900)
	poll(t, w) // seen, then the process dies
	w2 := NewWatcher(chain, testToken, 3, data, "erc20/x/", cr.fn)
	if err := w2.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	chain.mine(2)
	if res := poll(t, w2); res.Credited != 1 || cr.count() != 1 {
		t.Fatalf("after the restart: %+v", res)
	}
	chain.mine(3)
	if poll(t, w2); cr.count() != 1 {
		t.Fatal("credited twice")
	}
}

func TestWatcherCatchesUpInBoundedRanges(t *testing.T) {
	chain := newFakeChain(10)
	var cr credited
	w := NewWatcher(chain, testToken, 1, newMemData(), "erc20/x/", cr.fn)
	poll(t, w)
	chain.mine(maxRange*2 + 10)
	r1 := poll(t, w)
	if r1.To-r1.From+1 != maxRange {
		t.Fatalf("first catch-up poll covered %d-%d", r1.From, r1.To)
	}
	for i := 0; i < 3; i++ {
		poll(t, w)
	}
	if r := poll(t, w); r.To != chain.head() {
		t.Fatalf("not caught up: %+v, head %d", r, chain.head())
	}
}

func TestLazyClientErrorsHoldNoEndpointURL(t *testing.T) {
	l := &lazyClient{url: "http://127.0.0.1:1/v3/SECRETAPIKEY"}
	defer l.close()
	_, err := l.HeaderByNumber(context.Background(), nil)
	if err == nil || strings.Contains(err.Error(), "SECRETAPIKEY") {
		t.Fatalf("error %v: want one without the endpoint's key", err)
	}
	_, err = l.FilterLogs(context.Background(), ethereum.FilterQuery{})
	if err == nil || strings.Contains(err.Error(), "SECRETAPIKEY") {
		t.Fatalf("error %v: want one without the endpoint's key", err)
	}
}

// TestLeaderWatcherLearnsOtherInstancesAddresses: with several instances
// sharing the store, an address handed out by one that does not poll (a
// follower) is watched by the one that does (the leader) from its next
// poll, and a payment to it is credited, even one in a block the leader
// had scanned before it knew the address.
func TestLeaderWatcherLearnsOtherInstancesAddresses(t *testing.T) {
	chain := newFakeChain(40)
	data := newMemData()
	var cr credited
	leader := NewWatcher(chain, testToken, 2, data, "erc20/x/", cr.fn)
	follower := NewWatcher(chain, testToken, 2, data, "erc20/x/", cr.fn)
	if err := leader.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	poll(t, leader)
	addr := common.HexToAddress("0x7777")
	chain.mine(1)
	// The follower hands out the address, the customer pays at once,
	// and the leader polls past that block before it looks at the list
	// again (the race: its previous poll read the list just before).
	if err := follower.Watch(context.Background(), addr, "ref-f"); err != nil {
		t.Fatal(err)
	}
	chain.transfer(testToken, addr, 300)
	chain.mine(1)
	leader.mu.Lock()
	leader.gen = "" // as if its last read came just before the address
	leader.mu.Unlock()
	leader.cp = &checkpoint{Number: chain.head(), Hash: chain.header(chain.head()).Hash()}
	res := poll(t, leader)
	if leader.Watched() != 1 {
		t.Fatalf("the leader watches %d addresses, want the follower's one", leader.Watched())
	}
	chain.mine(3)
	poll(t, leader)
	if cr.count() != 1 {
		t.Fatalf("the payment to the follower's address was credited %d times (first poll %+v), want once", cr.count(), res)
	}
	chain.mine(3)
	if poll(t, leader); cr.count() != 1 {
		t.Fatal("credited twice")
	}
}
