// Package contracts holds the Solidity source of the harness's ERC-20 token and
// its compiled artifact. Token.json is committed, so building and testing need
// only Go; Node and the pinned solc are needed only to regenerate it after a
// change to Token.sol.
package contracts

//go:generate sh -c "npm ci --no-audit --no-fund && node compile.js"

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

//go:embed Token.json
var artifact []byte

var (
	// ABI is Token's interface: the ERC-20 methods plus the Transfer and
	// Approval events.
	ABI abi.ABI
	// Bytecode is Token's creation code; deploying it takes the constructor
	// arguments (name, symbol, decimals, initialSupply) packed after it.
	Bytecode []byte
)

// init parses at load time because a broken artifact is a build mistake, not
// something a test can recover from; failing here names the file to regenerate.
func init() {
	var art struct {
		ABI      json.RawMessage `json:"abi"`
		Bytecode string          `json:"bytecode"`
	}
	if err := json.Unmarshal(artifact, &art); err != nil {
		panic(fmt.Sprintf("contracts: decoding Token.json: %v (run go generate)", err))
	}
	parsed, err := abi.JSON(strings.NewReader(string(art.ABI)))
	if err != nil {
		panic(fmt.Sprintf("contracts: parsing Token.json abi: %v (run go generate)", err))
	}
	code, err := hexutil.Decode(art.Bytecode)
	if err != nil || len(code) == 0 {
		panic(fmt.Sprintf("contracts: decoding Token.json bytecode: %v (run go generate)", err))
	}
	ABI, Bytecode = parsed, code
}
