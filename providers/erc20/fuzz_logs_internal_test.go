package erc20

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// FuzzMatchLogs: of whatever eth_getLogs answer the node gives (decoded
// as ethclient decodes it), the watcher counts exactly the Transfer logs
// of the configured token to a watched address with a non-zero amount,
// each once, as a credit of that address's attempt for the amount in the
// log's data; nothing else, and the same answer again adds nothing.
func FuzzMatchLogs(f *testing.F) {
	watched := map[common.Address]string{
		common.HexToAddress("0x157ee37757437b739080d49ef687f476388f4f93"): "ref-a",
		common.HexToAddress("0x00000000000000000000000000000000000000a1"): "ref-b",
	}
	log := func(addr, to, data string, removed bool, extra string) string {
		return fmt.Sprintf(`{"address":%q,"topics":["%s","0x000000000000000000000000aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",%q%s],`+
			`"data":%q,"blockNumber":"0x10","transactionHash":"0x%064x","transactionIndex":"0x0",`+
			`"blockHash":"0x%064x","logIndex":"0x1","removed":%v}`, addr, TransferTopic.Hex(), to, extra, data, 7, 9, removed)
	}
	token := testToken.Hex()
	toA := "0x000000000000000000000000157ee37757437b739080d49ef687f476388f4f93"
	one := fmt.Sprintf("0x%064x", 100000000)
	for _, s := range []string{
		"[" + log(token, toA, one, false, "") + "]",
		"[" + log(token, toA, one, false, "") + "," + log(token, toA, one, false, "") + "]", // the same log twice
		"[" + log(token, toA, fmt.Sprintf("0x%064x", 0), false, "") + "]",                   // zero-value spam
		"[" + log(token, toA, one, true, "") + "]",                                          // removed by a reorg
		"[" + log("0x0000000000000000000000000000000000000bad", toA, one, false, "") + "]",  // a look-alike token
		"[" + log(token, toA, one+"00", false, "") + "]",                                    // data not one word
		"[" + log(token, toA, one, false, fmt.Sprintf(`,"0x%064x"`, 1)) + "]",               // a fourth topic
		"[" + log(token, "0x00000000000000000000000000000000000000000000000000000000000000a1", fmt.Sprintf("0x%064x", 15), false, "") + "]",
		"[]", "null",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, answer []byte) {
		var logs []types.Log
		if json.Unmarshal(answer, &logs) != nil {
			return // ethclient refuses the answer: the poll fails and nothing is matched
		}
		w := NewWatcher(nil, testToken, 3, newMemData(), "erc20/x/", func(context.Context, *Credit) error { return nil })
		for a, ref := range watched {
			if err := w.Watch(context.Background(), a, ref); err != nil {
				t.Fatal(err)
			}
		}
		n := w.match(logs)
		// What should be counted, from the event's definition:
		// Transfer(address indexed from, address indexed to, uint256 value).
		want := map[string]*big.Int{}
		for _, l := range logs {
			if l.Removed || l.Address != testToken || len(l.Topics) != 3 || l.Topics[0] != TransferTopic || len(l.Data) != 32 {
				continue
			}
			to := common.BytesToAddress(l.Topics[2][12:])
			if amount := new(big.Int).SetBytes(l.Data); watched[to] != "" && amount.Sign() > 0 {
				want[(&Credit{BlockHash: l.BlockHash, TxHash: l.TxHash, Index: l.Index}).ID()] = amount
			}
		}
		if n != len(want) || len(w.pending) != len(want) {
			t.Fatalf("%s: counted %d (%d pending), want %d", answer, n, len(w.pending), len(want))
		}
		for id, c := range w.pending {
			if c.ID() != id || want[id] == nil || c.Amount.Cmp(want[id]) != 0 || watched[c.To] == "" || c.Ref != watched[c.To] {
				t.Fatalf("%s: credit %s of %s to %s for %s", answer, id, c.Amount, c.To.Hex(), c.Ref)
			}
		}
		if again := w.match(logs); again != 0 || len(w.pending) != len(want) {
			t.Fatalf("%s: the same answer again counted %d", answer, again)
		}
	})
}
