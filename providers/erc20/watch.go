// The chain watcher: one eth_getLogs per poll over the blocks not yet
// scanned, for the configured token's Transfer events, matched locally to
// the receiving addresses of open attempts. A transfer is "seen" when it
// is first included and credited to its attempt once it has the
// configured number of confirmations. A durable checkpoint (block number
// and hash) makes restarts and reorgs safe: a checkpoint whose block is no
// longer canonical rewinds the scan, and transfers seen in the replaced
// blocks are forgotten before they are ever credited.
package erc20

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"sync"
	"time"

	ethereum "github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/caddy-checkout/checkout/store"
)

// TransferTopic is keccak256("Transfer(address,address,uint256)").
var TransferTopic = common.HexToHash("0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef")

// ChainReader is the part of an Ethereum client the watcher uses
// (ethclient.Client and the simulated backend's client implement it).
type ChainReader interface {
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error)
}

// topicFilterLimit is how many watched addresses are put in the log
// filter itself; with more, the node is asked for all of the token's
// transfers and they are matched here.
const topicFilterLimit = 500

// maxRange caps the blocks one eth_getLogs covers (public nodes refuse
// larger ranges); a watcher that fell behind catches up over several polls.
const maxRange = 5000

// reorgMargin is how many blocks beyond the confirmation depth are scanned
// again after a restart or a reorg.
const reorgMargin = 16

// Credit is a transfer to a watched address, seen on chain.
type Credit struct {
	Ref       string         // the attempt the address belongs to
	To        common.Address // the receiving address
	From      common.Address
	Amount    *big.Int // in the token's base units
	Block     uint64
	BlockHash common.Hash
	TxHash    common.Hash
	Index     uint // the log's index in its block
	SeenAt    time.Time
}

// ID names the log once: the same log is never counted twice, and the
// same transaction in another block (after a reorg) is another log.
func (c *Credit) ID() string {
	return fmt.Sprintf("log:%s:%s:%d", c.BlockHash.Hex(), c.TxHash.Hex(), c.Index)
}

// Progress is what the customer's page shows about an attempt.
type Progress struct {
	Seen          bool     // a transfer is in a block
	Confirmations uint64   // of the least confirmed transfer seen
	Needed        uint64   // the configured depth
	Amount        *big.Int // seen so far, not yet credited
	TxHash        common.Hash
	SeenAt        time.Time // when the first of them was seen
}

// checkpoint is the last block scanned, as stored.
type checkpoint struct {
	Number uint64      `json:"number"`
	Hash   common.Hash `json:"hash"`
}

// Watcher scans the chain for transfers of one token. It is safe for
// concurrent use; Poll calls must not overlap (Run makes sure of it).
type Watcher struct {
	chain         ChainReader
	token         common.Address
	confirmations uint64
	data          store.ProviderData
	prefix        string // of the watcher's data keys
	// credit applies a confirmed transfer; an error stops the poll
	// before the checkpoint moves, so the transfer is credited again
	// (deduplicated by its ID) on the next poll.
	credit func(ctx context.Context, c *Credit) error

	mu        sync.Mutex
	watched   map[common.Address]string // address → attempt ref
	pending   map[string]*Credit        // seen, not yet credited, by ID
	cp        *checkpoint
	head      uint64 // the chain head at the last poll
	rescanned bool   // the first poll of this process scans back over the margin
	// gen is the stored generation of the address list last read:
	// another instance sharing the store hands out addresses too, and
	// only the leader's watcher polls.
	gen string
	now func() time.Time
}

// NewWatcher makes a watcher. Its state lives in data under prefix.
func NewWatcher(chain ChainReader, token common.Address, confirmations uint64, data store.ProviderData, prefix string,
	credit func(ctx context.Context, c *Credit) error) *Watcher {
	if confirmations == 0 {
		confirmations = 1
	}
	return &Watcher{chain: chain, token: token, confirmations: confirmations, data: data, prefix: prefix, credit: credit,
		watched: map[common.Address]string{}, pending: map[string]*Credit{}, now: time.Now}
}

// SetClock sets the clock that stamps when transfers are seen.
func (w *Watcher) SetClock(now func() time.Time) { w.now = now }

// Load reads the watched addresses and the checkpoint from the store.
func (w *Watcher) Load(ctx context.Context) error {
	watched := map[common.Address]string{}
	err := w.data.ScanData(ctx, w.prefix+"addr/", func(key string, val []byte) error {
		watched[common.HexToAddress(key[len(w.prefix+"addr/"):])] = string(val)
		return nil
	})
	if err != nil {
		return fmt.Errorf("loading watched addresses: %w", err)
	}
	var cp *checkpoint
	raw, err := w.data.GetData(ctx, w.prefix+"checkpoint")
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("loading checkpoint: %w", err)
	default:
		cp = new(checkpoint)
		if err := json.Unmarshal(raw, cp); err != nil {
			return fmt.Errorf("reading checkpoint: %w", err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for a, ref := range watched {
		w.watched[a] = ref
	}
	w.cp = cp
	return nil
}

// Watch adds a receiving address durably, and tells the watcher of
// whichever instance polls (the leader) that the list has grown.
func (w *Watcher) Watch(ctx context.Context, addr common.Address, ref string) error {
	if err := w.data.PutData(ctx, w.prefix+"addr/"+addr.Hex(), []byte(ref)); err != nil {
		return err
	}
	if _, err := w.data.NextSeq(ctx, w.prefix+"addr-gen"); err != nil {
		return err
	}
	w.mu.Lock()
	w.watched[addr] = ref
	w.mu.Unlock()
	return nil
}

// refresh reads the addresses other instances added since the last poll
// (one read when there are none). When there are, the poll scans back
// over the margin, as after a restart: a payment to such an address may
// already be in a block this watcher scanned before it knew the address.
func (w *Watcher) refresh(ctx context.Context) error {
	raw, err := w.data.GetData(ctx, w.prefix+"addr-gen")
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the address list's generation: %w", err)
	}
	w.mu.Lock()
	same := string(raw) == w.gen
	w.mu.Unlock()
	if same {
		return nil
	}
	found := map[common.Address]string{}
	err = w.data.ScanData(ctx, w.prefix+"addr/", func(key string, val []byte) error {
		found[common.HexToAddress(key[len(w.prefix+"addr/"):])] = string(val)
		return nil
	})
	if err != nil {
		return fmt.Errorf("loading watched addresses: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for a, ref := range found {
		if _, ok := w.watched[a]; !ok {
			w.watched[a] = ref
			w.rescanned = false
		}
	}
	w.gen = string(raw)
	return nil
}

// Watched is how many addresses are watched.
func (w *Watcher) Watched() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.watched)
}

// Progress reports the seen, uncredited transfers of an attempt.
func (w *Watcher) Progress(ref string) Progress {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := Progress{Needed: w.confirmations, Amount: new(big.Int)}
	head := w.head
	for _, c := range w.pending {
		if c.Ref != ref {
			continue
		}
		conf := uint64(0)
		if head >= c.Block {
			conf = head - c.Block + 1
		}
		if !p.Seen || conf < p.Confirmations {
			p.Confirmations = conf
		}
		if !p.Seen || c.SeenAt.Before(p.SeenAt) {
			p.SeenAt = c.SeenAt
		}
		p.Seen = true
		p.TxHash = c.TxHash
		p.Amount.Add(p.Amount, c.Amount)
	}
	return p
}

// PollResult is what one poll did, for tests and metrics.
type PollResult struct {
	Head     uint64 // the chain head
	From, To uint64 // the block range scanned (From > To: nothing new)
	Logs     int    // Transfer logs returned for the range
	Seen     int    // new transfers to watched addresses
	Credited int    // transfers credited in this poll
	Reorg    bool   // the checkpoint's block was replaced
}

// Poll scans the new blocks and credits transfers that reached the
// confirmation depth. It makes three RPC calls whatever the number of
// watched addresses: the head, the checkpoint's block, and one
// eth_getLogs. It first learns the addresses other instances handed out.
func (w *Watcher) Poll(ctx context.Context) (PollResult, error) {
	var res PollResult
	if err := w.refresh(ctx); err != nil {
		return res, err
	}
	head, err := w.chain.HeaderByNumber(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("reading the chain head: %w", err)
	}
	headNum := head.Number.Uint64()
	res.Head = headNum

	w.mu.Lock()
	cp := w.cp
	rescan := !w.rescanned
	w.mu.Unlock()
	back := w.confirmations + reorgMargin
	from := uint64(0)
	switch {
	case cp == nil:
		from = sub(headNum+1, back)
	default:
		canon, err := w.chain.HeaderByNumber(ctx, new(big.Int).SetUint64(cp.Number))
		if err != nil && !errors.Is(err, ethereum.NotFound) {
			return res, fmt.Errorf("reading block %d: %w", cp.Number, err)
		}
		switch {
		case canon == nil || canon.Hash() != cp.Hash:
			res.Reorg = true
			from = sub(cp.Number+1, back)
		case rescan:
			from = sub(cp.Number+1, back)
		default:
			from = cp.Number + 1
		}
	}
	if res.Reorg || rescan {
		// Forget what was seen in the blocks scanned again: what is
		// still on the canonical chain is found again below.
		w.mu.Lock()
		for id, c := range w.pending {
			if c.Block >= from {
				delete(w.pending, id)
			}
		}
		w.mu.Unlock()
	}
	to, toHeader := headNum, head
	if from <= headNum && headNum-from >= maxRange {
		to = from + maxRange - 1
		if toHeader, err = w.chain.HeaderByNumber(ctx, new(big.Int).SetUint64(to)); err != nil {
			return res, fmt.Errorf("reading block %d: %w", to, err)
		}
	}
	res.From, res.To = from, to
	if from <= to {
		logs, err := w.chain.FilterLogs(ctx, w.query(from, to))
		if err != nil {
			return res, fmt.Errorf("reading Transfer logs of blocks %d-%d: %w", from, to, err)
		}
		res.Logs = len(logs)
		res.Seen = w.match(logs)
	}
	if err := w.credits(ctx, headNum, &res); err != nil {
		return res, err
	}
	next := checkpoint{Number: to, Hash: toHeader.Hash()}
	raw, _ := json.Marshal(next)
	if err := w.data.PutData(ctx, w.prefix+"checkpoint", raw); err != nil {
		return res, fmt.Errorf("storing checkpoint: %w", err)
	}
	w.mu.Lock()
	w.cp, w.head, w.rescanned = &next, headNum, true
	w.mu.Unlock()
	return res, nil
}

func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// query is the one eth_getLogs of a poll: the token's Transfer events,
// narrowed to the watched recipients when they are few.
func (w *Watcher) query(from, to uint64) ethereum.FilterQuery {
	q := ethereum.FilterQuery{
		FromBlock: new(big.Int).SetUint64(from),
		ToBlock:   new(big.Int).SetUint64(to),
		Addresses: []common.Address{w.token},
		Topics:    [][]common.Hash{{TransferTopic}},
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.watched); n > 0 && n <= topicFilterLimit {
		recipients := make([]common.Hash, 0, n)
		for a := range w.watched {
			recipients = append(recipients, common.BytesToHash(a.Bytes()))
		}
		sort.Slice(recipients, func(i, j int) bool { return recipients[i].Cmp(recipients[j]) < 0 })
		q.Topics = append(q.Topics, nil, recipients)
	}
	return q
}

// match records the transfers to watched addresses among logs. Only a
// well-formed Transfer log emitted by the configured token counts: the
// node's filter is not trusted to have done it.
func (w *Watcher) match(logs []types.Log) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for i := range logs {
		l := &logs[i]
		if l.Removed || l.Address != w.token || len(l.Topics) != 3 || l.Topics[0] != TransferTopic || len(l.Data) != 32 {
			continue
		}
		to := common.BytesToAddress(l.Topics[2].Bytes())
		ref, ok := w.watched[to]
		if !ok {
			continue
		}
		amount := new(big.Int).SetBytes(l.Data)
		if amount.Sign() == 0 {
			continue // zero-value transfers are address-poisoning spam
		}
		c := &Credit{Ref: ref, To: to, From: common.BytesToAddress(l.Topics[1].Bytes()), Amount: amount,
			Block: l.BlockNumber, BlockHash: l.BlockHash, TxHash: l.TxHash, Index: l.Index, SeenAt: w.now()}
		if _, dup := w.pending[c.ID()]; !dup {
			w.pending[c.ID()] = c
			n++
		}
	}
	return n
}

// credits applies the pending transfers that reached the confirmation
// depth, oldest first.
func (w *Watcher) credits(ctx context.Context, head uint64, res *PollResult) error {
	w.mu.Lock()
	var due []*Credit
	for _, c := range w.pending {
		if head >= c.Block && head-c.Block+1 >= w.confirmations {
			due = append(due, c)
		}
	}
	w.mu.Unlock()
	sort.Slice(due, func(i, j int) bool {
		if due[i].Block != due[j].Block {
			return due[i].Block < due[j].Block
		}
		return due[i].Index < due[j].Index
	})
	for _, c := range due {
		if err := w.credit(ctx, c); err != nil {
			return fmt.Errorf("crediting transfer %s: %w", c.TxHash.Hex(), err)
		}
		w.mu.Lock()
		delete(w.pending, c.ID())
		w.mu.Unlock()
		res.Credited++
	}
	return nil
}
