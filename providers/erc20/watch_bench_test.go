//go:build unix

package erc20

import (
	"context"
	"math/big"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// BenchmarkPoll100kWatched1000Transfers is one poll of a watcher with
// 100,000 open attempts over a block range that holds 1,000 Transfer logs
// of the token (half of them to watched addresses): the RPC calls it makes
// and the CPU it spends matching. The fake chain answers at once, so the
// time is the watcher's own. One op is one poll of a fresh range.
//
//	go test ./providers/erc20 -run '^$' -bench Poll100k -benchtime 50x
func BenchmarkPoll100kWatched1000Transfers(b *testing.B) {
	chain := newFakeChain(100)
	var cr credited
	w := NewWatcher(chain, testToken, 12, newMemData(), "erc20/x/", cr.fn)
	watched := make([]common.Address, 100_000)
	for i := range watched {
		watched[i] = common.BigToAddress(big.NewInt(int64(1_000_000 + i)))
		w.watched[watched[i]] = "ref"
	}
	if _, err := w.Poll(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		// 1,000 transfers over the next 10 blocks.
		for blk := 0; blk < 10; blk++ {
			chain.mine(1)
			for j := 0; j < 100; j++ {
				to := common.BigToAddress(big.NewInt(int64(5_000_000 + j)))
				if j%2 == 0 {
					to = watched[(i*1000+blk*100+j)%len(watched)]
				}
				chain.transfer(testToken, to, 1+int64(j))
			}
		}
		calls := chain.getLogs
		b.StartTimer()
		before := cpuTime()
		res, err := w.Poll(context.Background())
		cpu += cpuTime() - before
		if err != nil {
			b.Fatal(err)
		}
		if res.Logs != 1000 || res.Seen != 500 || chain.getLogs != calls+1 {
			b.Fatalf("poll: %+v, %d getLogs calls", res, chain.getLogs-calls)
		}
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/poll")
	b.ReportMetric(1, "getLogs/poll")
}

// cpuTime is the CPU time this process has used (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
