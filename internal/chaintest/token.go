// ERC-20 operations on a Chain: deploying contracts/Token.sol and moving its
// tokens between accounts.

package chaintest

import (
	"context"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"

	"github.com/caddy-checkout/checkout/internal/chaintest/contracts"
)

// Fixed gas limits instead of estimates. Estimation runs against the head
// block, so it would refuse a transfer funded by another transfer waiting in
// the same block, and it could never produce a reverting transaction that is
// still mined, which FailingTransfer needs. The simulated chain runs
// go-ethereum's newest fork rules, which price new state far above today's
// mainnet: a transfer to a holder with no balance yet uses about 147k gas
// (one to an existing holder about 37k) and a deployment about 870k, hence
// the wide margins. A block holds 60M gas, so 200 transfers fit in one.
const (
	deployGas   = 2_000_000
	transferGas = 300_000
)

// Fixed fees keep the ether each transaction costs the same in every run. The
// fee cap stays far above the base fee, which starts at 1 gwei and only falls
// while blocks are this empty.
var (
	gasTipCap = big.NewInt(params.GWei)
	gasFeeCap = big.NewInt(100 * params.GWei)
)

// DeployToken deploys a Token from Account(0), who receives the whole supply,
// mines the block (with any other waiting transaction) and returns the
// contract's address. Symbol and decimals are whatever the test asks for:
// deploying two tokens with one symbol is how a test builds a look-alike.
func (c *Chain) DeployToken(symbol string, decimals uint8, supply *big.Int) common.Address {
	c.tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	args, err := contracts.ABI.Pack("", symbol+" (chaintest)", symbol, decimals, supply)
	if err != nil {
		c.tb.Fatalf("chaintest: packing constructor of %s: %v", symbol, err)
	}
	code := append(append([]byte{}, contracts.Bytecode...), args...)
	tx := c.sendLocked(0, nil, code, deployGas)
	addr := crypto.CreateAddress(c.addrs[0], tx.Nonce())
	c.commitLocked()
	if r := c.Receipt(tx.Hash()); r == nil || r.Status != types.ReceiptStatusSuccessful || r.ContractAddress != addr {
		c.tb.Fatalf("chaintest: deploying %s: transaction %s did not create the contract (receipt %+v)", symbol, tx.Hash(), r)
	}
	return addr
}

// Transfer sends token.transfer(to, amount) from Account(from) and returns the
// transaction's hash. The transaction waits for the next Commit, so a test can
// put several transfers, from one account or many, into one block.
func (c *Chain) Transfer(token common.Address, from int, to common.Address, amount *big.Int) common.Hash {
	c.tb.Helper()
	return c.transfer(token, from, to, amount)
}

// FailingTransfer sends a transfer of more than Account(from) holds. The token
// reverts it, but the gas limit is set, not estimated, so it is still mined:
// after Commit its receipt has status 0 and no Transfer log, which is what a
// watcher sees when a payer's transaction fails.
//
// The amount is checked against the balance at the head; a transfer to the
// sender waiting in the same block could still cover it, so do not send one.
func (c *Chain) FailingTransfer(token common.Address, from int, to common.Address, amount *big.Int) common.Hash {
	c.tb.Helper()
	c.checkAccount(from)
	if bal := c.BalanceOf(token, c.addrs[from]); amount.Cmp(bal) <= 0 {
		c.tb.Fatalf("chaintest: FailingTransfer of %s from account %d, which holds %s: it would succeed", amount, from, bal)
	}
	return c.transfer(token, from, to, amount)
}

// BalanceOf is token.balanceOf(who) at the head block, read with eth_call.
func (c *Chain) BalanceOf(token, who common.Address) *big.Int {
	c.tb.Helper()
	data, err := contracts.ABI.Pack("balanceOf", who)
	if err != nil {
		c.tb.Fatalf("chaintest: packing balanceOf: %v", err)
	}
	out, err := c.client.CallContract(context.Background(), ethereum.CallMsg{To: &token, Data: data}, nil)
	if err != nil {
		c.tb.Fatalf("chaintest: balanceOf(%s) on %s: %v", who, token, err)
	}
	if len(out) == 0 {
		// A call to an address without code succeeds with empty output.
		c.tb.Fatalf("chaintest: balanceOf(%s): no contract at %s", who, token)
	}
	vals, err := contracts.ABI.Unpack("balanceOf", out)
	if err != nil {
		c.tb.Fatalf("chaintest: decoding balanceOf(%s) on %s: %v", who, token, err)
	}
	return vals[0].(*big.Int)
}

func (c *Chain) transfer(token common.Address, from int, to common.Address, amount *big.Int) common.Hash {
	c.tb.Helper()
	c.checkAccount(from)
	data, err := contracts.ABI.Pack("transfer", to, amount)
	if err != nil {
		c.tb.Fatalf("chaintest: packing transfer(%s, %s): %v", to, amount, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sendLocked(from, &token, data, transferGas).Hash()
}

// sendLocked signs a transaction from Account(from) with the next nonce and
// hands it to the pool; c.mu must be held. A nil to creates a contract.
//
// Transactions are built and signed here rather than through go-ethereum's
// accounts/abi/bind: both bind packages import accounts/keystore, whose
// fsnotify dependency is not in this module's go.sum, and with nonce, gas
// and fees all fixed by the harness bind would have nothing left to decide.
func (c *Chain) sendLocked(from int, to *common.Address, data []byte, gas uint64) *types.Transaction {
	c.tb.Helper()
	tx, err := types.SignNewTx(c.keys[from], c.signer, &types.DynamicFeeTx{
		ChainID:   c.chainID,
		Nonce:     c.nextNonce(from),
		GasTipCap: gasTipCap,
		GasFeeCap: gasFeeCap,
		Gas:       gas,
		To:        to,
		Data:      data,
	})
	if err != nil {
		c.tb.Fatalf("chaintest: signing transaction from account %d: %v", from, err)
	}
	if err := c.client.SendTransaction(context.Background(), tx); err != nil {
		c.tb.Fatalf("chaintest: sending transaction from account %d: %v", from, err)
	}
	c.sent[from]++
	c.signed[tx.Hash()] = sentTx{tx: tx, from: from}
	return tx
}

// nextNonce is Account(from)'s nonce at the head plus what it sent since;
// c.mu must be held.
func (c *Chain) nextNonce(from int) uint64 {
	c.tb.Helper()
	mined, err := c.client.NonceAt(context.Background(), c.addrs[from], nil)
	if err != nil {
		c.tb.Fatalf("chaintest: nonce of account %d: %v", from, err)
	}
	return mined + c.sent[from]
}
