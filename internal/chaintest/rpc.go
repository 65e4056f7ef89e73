// The chain over JSON-RPC on loopback, for tests of a whole Caddy whose
// erc20 block names an rpc URL: the two methods a payment watcher calls,
// eth_getBlockByNumber and eth_getLogs, answered from the simulated chain
// by go-ethereum's own RPC server and encoders.
package chaintest

import (
	"context"
	"errors"
	"math/big"
	"net/http/httptest"

	ethereum "github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/eth/filters"
	"github.com/ethereum/go-ethereum/rpc"
)

// ethAPI is the "eth" namespace served.
type ethAPI struct{ c *Chain }

// GetBlockByNumber answers eth_getBlockByNumber with the header (the
// watcher never asks for transactions); a block beyond the head is null.
func (a ethAPI) GetBlockByNumber(ctx context.Context, number rpc.BlockNumber, _ bool) (any, error) {
	var n *big.Int
	if number >= 0 {
		n = big.NewInt(number.Int64())
	}
	h, err := a.c.client.HeaderByNumber(ctx, n)
	if errors.Is(err, ethereum.NotFound) {
		return nil, nil // JSON null, as a node answers
	}
	if err != nil {
		return nil, err
	}
	return h, nil
}

// GetLogs answers eth_getLogs.
func (a ethAPI) GetLogs(ctx context.Context, crit filters.FilterCriteria) ([]types.Log, error) {
	logs, err := a.c.client.FilterLogs(ctx, ethereum.FilterQuery(crit))
	if logs == nil && err == nil {
		logs = []types.Log{}
	}
	return logs, err
}

// ServeRPC serves the chain's JSON-RPC on loopback until the test ends and
// returns its URL.
func (c *Chain) ServeRPC() string {
	c.tb.Helper()
	srv := rpc.NewServer()
	if err := srv.RegisterName("eth", ethAPI{c}); err != nil {
		c.tb.Fatalf("chaintest: serving RPC: %v", err)
	}
	hs := httptest.NewServer(srv)
	c.tb.Cleanup(func() { hs.Close(); srv.Stop() })
	return hs.URL
}
