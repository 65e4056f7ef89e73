package chaintest_test

import (
	"context"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/caddy-checkout/checkout/internal/chaintest"
	"github.com/caddy-checkout/checkout/internal/chaintest/contracts"
)

// transferTopic is keccak256("Transfer(address,address,uint256)"), written
// out so the test also proves the compiled token emits the event every
// mainnet ERC-20 emits, and a watcher's constant will match it.
var transferTopic = common.HexToHash("0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef")

// supply0xBTC is 0xBitcoin's total supply, 21,000,000 tokens of 8 decimals.
var supply0xBTC = new(big.Int).Mul(big.NewInt(21_000_000), big.NewInt(100_000_000))

func TestTransferEventIsTheERC20One(t *testing.T) {
	if got := contracts.ABI.Events["Transfer"].ID; got != transferTopic {
		t.Fatalf("Transfer topic = %s, want %s", got, transferTopic)
	}
}

func TestAccountsAreDistinctAndFunded(t *testing.T) {
	c := chaintest.New(t)
	if chaintest.Accounts < 4 {
		t.Fatalf("Accounts = %d, want at least 4", chaintest.Accounts)
	}
	seen := map[common.Address]bool{}
	for i := range chaintest.Accounts {
		a := c.Account(i)
		if seen[a] {
			t.Fatalf("Account(%d) = %s repeats an earlier account", i, a)
		}
		seen[a] = true
		bal, err := c.Client().BalanceAt(context.Background(), a, nil)
		if err != nil || bal.Sign() <= 0 {
			t.Fatalf("Account(%d) balance = %v, %v; want funded", i, bal, err)
		}
	}
	if again := chaintest.New(t); again.Account(0) != c.Account(0) {
		t.Errorf("Account(0) differs between chains: %s, %s", c.Account(0), again.Account(0))
	}
}

func TestTransferLogOnlyAtTheTokensAddress(t *testing.T) {
	c := chaintest.New(t)
	token := c.DeployToken("0xBTC", 8, supply0xBTC)
	lookalike := c.DeployToken("0xBTC", 8, supply0xBTC)
	if token == lookalike {
		t.Fatalf("both tokens deployed at %s", token)
	}
	// Same symbol, same decimals: nothing a contract says about itself tells
	// the two apart, only the address does.
	for _, tok := range []common.Address{token, lookalike} {
		if sym := call(t, c, tok, "symbol")[0].(string); sym != "0xBTC" {
			t.Errorf("symbol() at %s = %q, want 0xBTC", tok, sym)
		}
		if dec := call(t, c, tok, "decimals")[0].(uint8); dec != 8 {
			t.Errorf("decimals() at %s = %d, want 8", tok, dec)
		}
	}

	payer, merchant := c.Account(0), c.Account(1)
	amount := big.NewInt(12_345_678) // 0.12345678 0xBTC
	tokenTx := c.Transfer(token, 0, merchant, amount)
	lookalikeTx := c.Transfer(lookalike, 0, merchant, big.NewInt(999))
	block := c.Commit()
	num := blockNumber(t, c, block)

	logs := filter(t, c, num, num, token)
	if len(logs) != 1 {
		t.Fatalf("FilterLogs(%s) returned %d logs, want 1: %+v", token, len(logs), logs)
	}
	l := logs[0]
	if l.Address != token || l.TxHash != tokenTx || l.BlockHash != block || l.BlockNumber != num || l.Removed {
		t.Errorf("log = address %s tx %s block %s/%d removed %v; want %s %s %s/%d false",
			l.Address, l.TxHash, l.BlockHash, l.BlockNumber, l.Removed, token, tokenTx, block, num)
	}
	from, to, value := decodeTransfer(t, l)
	if from != payer || to != merchant || value.Cmp(amount) != 0 {
		t.Errorf("Transfer(%s, %s, %s), want Transfer(%s, %s, %s)", from, to, value, payer, merchant, amount)
	}

	// Without an address filter both tokens' logs come back, and only the
	// address separates the payment from the look-alike.
	all := filter(t, c, num, num)
	if len(all) != 2 {
		t.Fatalf("FilterLogs without address returned %d logs, want 2", len(all))
	}
	for _, l := range all {
		switch l.TxHash {
		case tokenTx:
			if l.Address != token {
				t.Errorf("configured token's log at %s, want %s", l.Address, token)
			}
		case lookalikeTx:
			if l.Address != lookalike {
				t.Errorf("look-alike's log at %s, want %s", l.Address, lookalike)
			}
		default:
			t.Errorf("unexpected log from tx %s", l.TxHash)
		}
	}

	if got := c.BalanceOf(token, merchant); got.Cmp(amount) != 0 {
		t.Errorf("merchant holds %s of the configured token, want %s", got, amount)
	}
	if got, want := c.BalanceOf(token, payer), new(big.Int).Sub(supply0xBTC, amount); got.Cmp(want) != 0 {
		t.Errorf("payer holds %s of the configured token, want %s", got, want)
	}
	if got := c.BalanceOf(lookalike, merchant); got.Cmp(big.NewInt(999)) != 0 {
		t.Errorf("merchant holds %s of the look-alike, want 999", got)
	}
}

func TestFailingTransferIsMinedWithoutLog(t *testing.T) {
	c := chaintest.New(t)
	tok := c.DeployToken("0xBTC", 8, supply0xBTC)
	c.Transfer(tok, 0, c.Account(1), big.NewInt(100))
	c.Commit()

	tx := c.FailingTransfer(tok, 1, c.Account(2), big.NewInt(101))
	block := c.Commit()

	r := c.Receipt(tx)
	if r == nil {
		t.Fatal("failing transfer was not mined")
	}
	if r.Status != types.ReceiptStatusFailed || r.BlockHash != block || len(r.Logs) != 0 {
		t.Errorf("receipt: status %d, block %s, %d logs; want status 0, block %s, no logs", r.Status, r.BlockHash, len(r.Logs), block)
	}
	num := blockNumber(t, c, block)
	if logs := filter(t, c, num, num, tok); len(logs) != 0 {
		t.Errorf("FilterLogs over the failing transfer's block returned %d logs, want 0", len(logs))
	}
	if got := c.BalanceOf(tok, c.Account(1)); got.Cmp(big.NewInt(100)) != 0 {
		t.Errorf("sender holds %s after a failed transfer, want 100", got)
	}
	if got := c.BalanceOf(tok, c.Account(2)); got.Sign() != 0 {
		t.Errorf("recipient holds %s after a failed transfer, want 0", got)
	}
}

func TestManyTransfersInOneBlock(t *testing.T) {
	c := chaintest.New(t)
	tok := c.DeployToken("0xBTC", 8, supply0xBTC)
	c.Transfer(tok, 0, c.Account(1), big.NewInt(1_000))
	c.Commit()

	var txs []common.Hash
	for i := range 5 {
		txs = append(txs, c.Transfer(tok, 0, c.Account(2), big.NewInt(int64(10+i))))
	}
	for i := range 3 {
		txs = append(txs, c.Transfer(tok, 1, c.Account(3), big.NewInt(int64(100+i))))
	}
	block := c.Commit()

	for _, tx := range txs {
		if r := c.Receipt(tx); r == nil || r.Status != types.ReceiptStatusSuccessful || r.BlockHash != block {
			t.Errorf("transfer %s: receipt %+v, want success in block %s", tx, r, block)
		}
	}
	num := blockNumber(t, c, block)
	logs := filter(t, c, num, num, tok)
	if len(logs) != len(txs) {
		t.Fatalf("FilterLogs returned %d logs, want %d", len(logs), len(txs))
	}
	for i, l := range logs {
		if l.Index != uint(i) || l.BlockHash != block {
			t.Errorf("log %d: index %d in block %s, want index %d in %s", i, l.Index, l.BlockHash, i, block)
		}
	}
	if got := c.BalanceOf(tok, c.Account(2)); got.Cmp(big.NewInt(10+11+12+13+14)) != 0 {
		t.Errorf("Account(2) holds %s, want 60", got)
	}
	if got := c.BalanceOf(tok, c.Account(3)); got.Cmp(big.NewInt(100+101+102)) != 0 {
		t.Errorf("Account(3) holds %s, want 303", got)
	}
}

func TestMineAdvancesHead(t *testing.T) {
	c := chaintest.New(t)
	start := c.Head()
	c.Mine(7)
	if got := c.Head(); got != start+7 {
		t.Fatalf("Head after Mine(7) = %d, want %d", got, start+7)
	}
	h, err := c.Client().HeaderByNumber(context.Background(), nil)
	if err != nil || h.Number.Uint64() != start+7 {
		t.Fatalf("HeaderByNumber(latest) = %v, %v; want block %d", h, err, start+7)
	}
}

// TestReorgDropsTransfer is the reorg a watcher must survive: a payment seen in
// block B vanishes when the chain switches to a branch without it. It also
// pins down what the RPC calls answer along the way, which is what a
// watcher's reorg handling is built on.
func TestReorgDropsTransfer(t *testing.T) {
	c := chaintest.New(t)
	ctx := context.Background()
	cl := c.Client()
	tok := c.DeployToken("0xBTC", 8, supply0xBTC)
	merchant := c.Account(1)
	c.Mine(2)

	tx := c.Transfer(tok, 0, merchant, big.NewInt(5_000))
	b := c.Commit()
	header, err := cl.HeaderByHash(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	num := header.Number.Uint64()
	if logs := filter(t, c, num, num, tok); len(logs) != 1 || logs[0].TxHash != tx {
		t.Fatalf("before the reorg: %d logs in block %d, want the transfer's", len(logs), num)
	}

	c.Fork(header.ParentHash)

	// The head moves back to the parent at once; the fork does not wait for
	// the new branch to outgrow the old one.
	if got := c.Head(); got != num-1 {
		t.Errorf("Head right after Fork = %d, want %d (B's parent)", got, num-1)
	}
	if h, err := cl.HeaderByNumber(ctx, new(big.Int).SetUint64(num)); !errors.Is(err, ethereum.NotFound) {
		t.Errorf("HeaderByNumber(B) right after Fork = %v, %v; want ethereum.NotFound", h, err)
	}
	// A range reaching past the new head is an error, not an empty answer, so
	// a watcher must clamp its range to the head it just read.
	if logs, err := filter1(c, num, num, tok); err == nil {
		t.Errorf("FilterLogs over B right after Fork = %d logs, no error; want an error (range beyond head)", len(logs))
	}

	c.Mine(2)

	if got := c.Head(); got != num+1 {
		t.Errorf("Head after mining the new branch = %d, want %d", got, num+1)
	}
	h, err := cl.HeaderByNumber(ctx, new(big.Int).SetUint64(num))
	if err != nil {
		t.Fatal(err)
	}
	if h.Hash() == b {
		t.Errorf("block %d is still %s after the reorg", num, b)
	}
	if h.ParentHash != header.ParentHash {
		t.Errorf("new block %d builds on %s, want B's parent %s", num, h.ParentHash, header.ParentHash)
	}
	if logs := filter(t, c, 0, c.Head(), tok); len(logs) != 1 || logs[0].TxHash == tx {
		// The one log left is the deployment's mint.
		t.Errorf("FilterLogs over the whole chain after the reorg: %+v; want only the mint", logs)
	}
	if r := c.Receipt(tx); r != nil {
		t.Errorf("receipt of the dropped transfer = %+v, want none", r)
	}
	if got := c.BalanceOf(tok, merchant); got.Sign() != 0 {
		t.Errorf("merchant holds %s after the reorg, want 0", got)
	}

	// The trap: asked by block hash, the node still serves the orphaned
	// block's log, and does not mark it removed. Only comparing the hash with
	// HeaderByNumber's tells a watcher that B is gone.
	orphaned, err := cl.FilterLogs(ctx, ethereum.FilterQuery{BlockHash: &b})
	if err != nil {
		t.Fatal(err)
	}
	if len(orphaned) != 1 || orphaned[0].TxHash != tx || orphaned[0].Removed {
		t.Errorf("FilterLogs{BlockHash: B} after the reorg = %+v; want B's log, Removed false", orphaned)
	}
	if _, err := cl.HeaderByHash(ctx, b); err != nil {
		t.Errorf("HeaderByHash(B) after the reorg: %v; want the orphaned header", err)
	}

	// Forking at B itself switches back to the first branch, payment included.
	c.Fork(b)
	if got := c.Head(); got != num {
		t.Errorf("Head after Fork(B) = %d, want %d", got, num)
	}
	if r := c.Receipt(tx); r == nil || r.BlockHash != b {
		t.Errorf("receipt after switching back = %+v, want one in %s", r, b)
	}
	if got := c.BalanceOf(tok, merchant); got.Cmp(big.NewInt(5_000)) != 0 {
		t.Errorf("merchant holds %s after switching back, want 5000", got)
	}
}

// TestReorgMovesTransfer is the more common reorg: the payment survives but
// lands in another block, same transaction, new block hash.
func TestReorgMovesTransfer(t *testing.T) {
	c := chaintest.New(t)
	tok := c.DeployToken("0xBTC", 8, supply0xBTC)
	merchant := c.Account(1)

	tx := c.Transfer(tok, 0, merchant, big.NewInt(42))
	b := c.Commit()
	header, err := c.Client().HeaderByHash(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	num := header.Number.Uint64()

	// One empty block first, so the payment moves to another height as well
	// as another hash.
	c.Fork(header.ParentHash)
	c.Mine(1)
	c.Resend(tx)
	b2 := c.Commit()

	r := c.Receipt(tx)
	if r == nil || r.BlockHash != b2 || r.BlockNumber.Uint64() != num+1 {
		t.Fatalf("receipt after the move = %+v, want block %s (%d)", r, b2, num+1)
	}
	logs := filter(t, c, num, c.Head(), tok)
	if len(logs) != 1 || logs[0].TxHash != tx || logs[0].BlockHash != b2 {
		t.Fatalf("FilterLogs after the move = %+v, want tx %s in block %s", logs, tx, b2)
	}
	if got := c.BalanceOf(tok, merchant); got.Cmp(big.NewInt(42)) != 0 {
		t.Errorf("merchant holds %s, want 42 (credited once)", got)
	}
}

// TestSubscriptionReportsRemovedLogs shows the other signal a reorg gives: a
// log subscription re-sends the orphaned log with Removed set.
func TestSubscriptionReportsRemovedLogs(t *testing.T) {
	c := chaintest.New(t)
	tok := c.DeployToken("0xBTC", 8, supply0xBTC)
	ch := make(chan types.Log, 4)
	sub, err := c.Client().SubscribeFilterLogs(context.Background(), ethereum.FilterQuery{Addresses: []common.Address{tok}}, ch)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	tx := c.Transfer(tok, 0, c.Account(1), big.NewInt(7))
	b := c.Commit()
	header, err := c.Client().HeaderByHash(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	c.Fork(header.ParentHash)

	for _, removed := range []bool{false, true} {
		select {
		case l := <-ch:
			if l.TxHash != tx || l.BlockHash != b || l.Removed != removed {
				t.Errorf("subscription log: tx %s block %s removed %v; want %s %s %v", l.TxHash, l.BlockHash, l.Removed, tx, b, removed)
			}
		case err := <-sub.Err():
			t.Fatalf("subscription: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatalf("subscription delivered no log (want removed=%v)", removed)
		}
	}
}

func blockNumber(t *testing.T, c *chaintest.Chain, hash common.Hash) uint64 {
	t.Helper()
	h, err := c.Client().HeaderByHash(context.Background(), hash)
	if err != nil {
		t.Fatalf("HeaderByHash(%s): %v", hash, err)
	}
	return h.Number.Uint64()
}

// filter is what a watcher asks: Transfer logs in a block range, at the given
// token addresses (any address if none).
func filter(t *testing.T, c *chaintest.Chain, from, to uint64, tokens ...common.Address) []types.Log {
	t.Helper()
	logs, err := filter1(c, from, to, tokens...)
	if err != nil {
		t.Fatalf("FilterLogs(%d..%d): %v", from, to, err)
	}
	return logs
}

func filter1(c *chaintest.Chain, from, to uint64, tokens ...common.Address) ([]types.Log, error) {
	return c.Client().FilterLogs(context.Background(), ethereum.FilterQuery{
		FromBlock: new(big.Int).SetUint64(from),
		ToBlock:   new(big.Int).SetUint64(to),
		Addresses: tokens,
		Topics:    [][]common.Hash{{transferTopic}},
	})
}

func decodeTransfer(t *testing.T, l types.Log) (from, to common.Address, value *big.Int) {
	t.Helper()
	if len(l.Topics) != 3 {
		t.Fatalf("Transfer log has %d topics, want 3", len(l.Topics))
	}
	vals, err := contracts.ABI.Unpack("Transfer", l.Data)
	if err != nil {
		t.Fatalf("decoding Transfer data: %v", err)
	}
	return common.BytesToAddress(l.Topics[1].Bytes()), common.BytesToAddress(l.Topics[2].Bytes()), vals[0].(*big.Int)
}

// call reads a view method of the token at addr with eth_call.
func call(t *testing.T, c *chaintest.Chain, addr common.Address, method string, args ...any) []any {
	t.Helper()
	data, err := contracts.ABI.Pack(method, args...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Client().CallContract(context.Background(), ethereum.CallMsg{To: &addr, Data: data}, nil)
	if err != nil {
		t.Fatalf("%s() at %s: %v", method, addr, err)
	}
	vals, err := contracts.ABI.Unpack(method, out)
	if err != nil {
		t.Fatalf("decoding %s() at %s: %v", method, addr, err)
	}
	return vals
}

func TestServeRPCAnswersAWatchersCalls(t *testing.T) {
	c := chaintest.New(t)
	token := c.DeployToken("0xBTC", 8, big.NewInt(1e16))
	to := c.Account(3)
	c.Transfer(token, 0, to, big.NewInt(5))
	c.Commit()
	client, err := ethclient.Dial(c.ServeRPC())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	head, err := client.HeaderByNumber(context.Background(), nil)
	if err != nil || head.Number.Uint64() != c.Head() {
		t.Fatalf("head over RPC: %v, %v; want %d", head, err, c.Head())
	}
	direct, _ := c.Client().HeaderByNumber(context.Background(), head.Number)
	if head.Hash() != direct.Hash() {
		t.Fatal("the header over RPC hashes differently")
	}
	logs, err := client.FilterLogs(context.Background(), ethereum.FilterQuery{FromBlock: big.NewInt(0), ToBlock: head.Number, Addresses: []common.Address{token}})
	if err != nil || len(logs) == 0 {
		t.Fatalf("logs over RPC: %d, %v", len(logs), err)
	}
	if _, err := client.HeaderByNumber(context.Background(), big.NewInt(int64(c.Head()+10))); err != ethereum.NotFound {
		t.Fatalf("a block beyond the head: %v, want NotFound", err)
	}
}
