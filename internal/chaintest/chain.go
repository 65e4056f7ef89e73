// Package chaintest runs an in-process Ethereum chain for tests of the ERC-20
// payment watcher: go-ethereum's simulated backend, a handful of funded
// accounts, and a real ERC-20 (contracts/Token.sol) to deploy on it. Blocks are
// mined only when a test says so (Commit, Mine), and Fork rewinds the head to
// an earlier block so a test can stage the reorg a watcher must survive.
//
// The watcher under test talks to Client, the same interface it would get from
// an ethclient dialled to a node; the test drives the chain through Chain.
package chaintest

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/params"
)

// Accounts is how many funded accounts a Chain has; Account accepts
// 0 <= i < Accounts.
const Accounts = 5

// buildAllowance is how long the miner may take to fill one block before it
// seals what it has (see New).
const buildAllowance = 10 * time.Minute

// accountEther is each account's starting balance: enough gas money for any
// test, small enough to read in a debugger.
const accountEther = 1000

// Chain is a simulated Ethereum chain owned by one test. Its methods fail the
// test (tb.Fatal) on any error, since every error here is a broken harness or
// a misuse, never a condition a test wants to handle; like tb.Fatal they
// belong on the test's goroutine. Client, by contrast, may be used from any
// goroutine, so a watcher can poll it while the test mines blocks.
//
// Block hashes and timestamps differ from run to run (the simulated beacon
// draws each block's randomness and reads the wall clock); account addresses,
// token addresses, transaction hashes and block numbers do not.
type Chain struct {
	tb      testing.TB
	backend *simulated.Backend
	client  simulated.Client
	chainID *big.Int
	signer  types.Signer
	keys    [Accounts]*ecdsa.PrivateKey
	addrs   [Accounts]common.Address

	// mu serialises the methods that send or mine, because nonces come from
	// sent, which is only right if sending and mining do not interleave.
	mu sync.Mutex
	// sent counts, per account, the transactions sent since the last mined
	// block. The next nonce is the account's nonce at the head plus this
	// count: the transaction pool promotes new transactions on a background
	// goroutine, so asking it for the pending nonce right after a send can
	// return a stale value and make two transactions collide.
	sent [Accounts]uint64
	// signed keeps every transaction sent, for Resend.
	signed map[common.Hash]sentTx
}

type sentTx struct {
	tx   *types.Transaction
	from int
}

// New starts a chain whose genesis funds Accounts accounts with fixed keys, and
// closes it when the test ends.
func New(tb testing.TB) *Chain {
	tb.Helper()
	c := &Chain{tb: tb, signed: make(map[common.Hash]sentTx)}
	alloc := types.GenesisAlloc{}
	for i := range Accounts {
		// Keys derived from a fixed phrase give the same addresses in every
		// run, so a failing test's log can be compared with a passing one.
		key, err := crypto.ToECDSA(crypto.Keccak256([]byte(fmt.Sprintf("chaintest account %d", i))))
		if err != nil {
			tb.Fatalf("chaintest: deriving account %d: %v", i, err)
		}
		c.keys[i] = key
		c.addrs[i] = crypto.PubkeyToAddress(key.PublicKey)
		alloc[c.addrs[i]] = types.Account{Balance: new(big.Int).Mul(big.NewInt(accountEther), big.NewInt(params.Ether))}
	}
	c.backend = simulated.NewBackend(alloc, func(_ *node.Config, eth *ethconfig.Config) {
		// The miner stops filling a block once Recommit (2s by default)
		// has passed and seals what it has. A busy machine running the race
		// detector can take that long for a handful of transfers, and the
		// rest would silently wait for the next block; the allowance is
		// raised far past any test's needs, and commitLocked checks that the
		// block holds everything sent.
		eth.Miner.Recommit = buildAllowance
	})
	tb.Cleanup(func() {
		if err := c.backend.Close(); err != nil {
			tb.Errorf("chaintest: closing simulated backend: %v", err)
		}
	})
	c.client = c.backend.Client()
	id, err := c.client.ChainID(context.Background())
	if err != nil {
		tb.Fatalf("chaintest: reading chain id: %v", err)
	}
	c.chainID = id
	c.signer = types.LatestSignerForChainID(id)
	return c
}

// Client is the RPC view of the chain, what a watcher gets from ethclient:
// BlockNumber, HeaderByNumber, FilterLogs, CallContract, TransactionReceipt
// and the rest.
func (c *Chain) Client() simulated.Client { return c.client }

// Account is the address of funded account i (0 <= i < Accounts). Account(0)
// deploys tokens and so starts with their whole supply.
func (c *Chain) Account(i int) common.Address {
	c.tb.Helper()
	c.checkAccount(i)
	return c.addrs[i]
}

// Commit mines one block holding every transaction sent since the last block,
// and returns its hash.
func (c *Chain) Commit() common.Hash {
	c.tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.commitLocked()
}

// Mine mines n empty blocks, as the passing of time does for confirmations.
// It refuses to run with transactions waiting, since the first block would
// then not be empty; Commit them first.
func (c *Chain) Mine(n int) {
	c.tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checkNothingPending("Mine")
	for range n {
		c.commitLocked()
	}
}

// Fork makes parent the head, the way a reorg does: blocks after parent leave
// the canonical chain at once (they stay reachable by hash), and the next
// Commit or Mine builds a new branch on parent. The transactions of the
// dropped blocks are discarded rather than returned to the pool, so the new
// branch holds only what the test puts there: nothing, for a payment that
// vanishes, or the same transaction again through Resend, for a payment that
// moves to another block.
//
// Parent may be any block the chain has seen, including one on a branch an
// earlier Fork left, which switches back to that branch.
//
// go-ethereum's own Fork documentation speaks of the side chain becoming
// canonical "when it becomes longer"; that describes the pre-merge backend.
// Since the merge the simulated beacon sets the head directly, so the new
// branch is canonical from the moment of Fork, even while it is shorter.
func (c *Chain) Fork(parent common.Hash) {
	c.tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checkNothingPending("Fork")
	if err := c.backend.Fork(parent); err != nil {
		c.tb.Fatalf("chaintest: forking at %s: %v", parent, err)
	}
	// Rewinding the head makes the pool re-inject the dropped blocks'
	// transactions; clearing it keeps the new branch to what the test sends,
	// and keeps sent (zero here) in step with the pool.
	c.backend.Rollback()
}

// Resend sends again, exactly as signed, a transaction this Chain sent and a
// Fork dropped, to wait for the next Commit. A reorg that moves a payment to
// another block, with the same transaction hash and a new block hash, is the
// common case on mainnet and the one a watcher must not credit twice.
//
// The transaction's nonce must be its sender's next one, so a test that
// resends several transactions from one account resends them in the order
// they were first sent.
func (c *Chain) Resend(tx common.Hash) {
	c.tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.signed[tx]
	if !ok {
		c.tb.Fatalf("chaintest: Resend of %s, which this Chain did not send", tx)
	}
	if next := c.nextNonce(st.from); st.tx.Nonce() != next {
		c.tb.Fatalf("chaintest: Resend of %s with nonce %d, but account %d is at nonce %d (still mined, or an earlier transaction not resent yet)", tx, st.tx.Nonce(), st.from, next)
	}
	if err := c.client.SendTransaction(context.Background(), st.tx); err != nil {
		c.tb.Fatalf("chaintest: resending %s: %v", tx, err)
	}
	c.sent[st.from]++
}

// Head is the number of the canonical head block.
func (c *Chain) Head() uint64 {
	c.tb.Helper()
	n, err := c.client.BlockNumber(context.Background())
	if err != nil {
		c.tb.Fatalf("chaintest: reading head: %v", err)
	}
	return n
}

// Receipt is the receipt of a mined transaction, or nil if the transaction is
// not in the canonical chain (not mined yet, or dropped by Fork).
func (c *Chain) Receipt(tx common.Hash) *types.Receipt {
	c.tb.Helper()
	r, err := c.client.TransactionReceipt(context.Background(), tx)
	if errors.Is(err, ethereum.NotFound) {
		return nil
	}
	if err != nil {
		c.tb.Fatalf("chaintest: receipt of %s: %v", tx, err)
	}
	return r
}

// commitLocked mines one block. The backend only logs a failure to seal and
// returns the old head's hash, so the head number is compared to catch it;
// and a block is only what the test meant if it holds every transaction sent
// since the last one, so their count is compared too.
func (c *Chain) commitLocked() common.Hash {
	c.tb.Helper()
	before := c.Head()
	var want uint64
	for _, n := range c.sent {
		want += n
	}
	c.waitPending()
	hash := c.backend.Commit()
	if after := c.Head(); after != before+1 {
		c.tb.Fatalf("chaintest: mining a block: head went from %d to %d", before, after)
	}
	block, err := c.client.BlockByHash(context.Background(), hash)
	if err != nil {
		c.tb.Fatalf("chaintest: reading mined block %s: %v", hash, err)
	}
	if got := uint64(len(block.Transactions())); got != want {
		c.tb.Fatalf("chaintest: mined block %d holds %d transaction(s), want the %d sent since the last block", block.NumberU64(), got, want)
	}
	c.sent = [Accounts]uint64{}
	return hash
}

// pendingWait bounds how long waitPending waits for the pool.
const pendingWait = time.Minute

// waitPending waits until the transaction pool holds every transaction
// sent since the last block as pending (executable), which it decides on a
// goroutine of its own after SendTransaction returns. On a busy machine
// the block would otherwise be sealed without the last ones, even though
// the simulated beacon syncs the pool first (seen: the third of three
// transfers from one account left out). c.mu must be held.
func (c *Chain) waitPending() {
	c.tb.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(pendingWait)
	for i, n := range c.sent {
		if n == 0 {
			continue
		}
		mined, err := c.client.NonceAt(ctx, c.addrs[i], nil)
		if err != nil {
			c.tb.Fatalf("chaintest: nonce of account %d: %v", i, err)
		}
		for {
			pending, err := c.client.PendingNonceAt(ctx, c.addrs[i])
			if err != nil {
				c.tb.Fatalf("chaintest: pending nonce of account %d: %v", i, err)
			}
			if pending >= mined+n {
				break
			}
			if time.Now().After(deadline) {
				c.tb.Fatalf("chaintest: account %d has %d of its %d transactions pending after %s", i, pending-mined, n, pendingWait)
			}
			time.Sleep(time.Millisecond) // the pool's own goroutine is what we wait for
		}
	}
}

func (c *Chain) checkNothingPending(op string) {
	c.tb.Helper()
	for i, n := range c.sent {
		if n != 0 {
			c.tb.Fatalf("chaintest: %s with %d transaction(s) from account %d not mined; call Commit first", op, n, i)
		}
	}
}

func (c *Chain) checkAccount(i int) {
	c.tb.Helper()
	if i < 0 || i >= Accounts {
		c.tb.Fatalf("chaintest: account %d out of range [0, %d)", i, Accounts)
	}
}
