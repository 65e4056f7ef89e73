// Benchmarks on PostgreSQL: the stores of several instances on one
// database of the shared pgtest server, a tracer that counts the
// statements they send, the CPU the benchmark, the server and the rest of
// the machine used, and the server's WAL flushes.

package handlerstest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-checkout/checkout/internal/pgtest"
	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/store"
	"github.com/caddy-checkout/checkout/store/postgres"
)

// PostgresBench is the stores of n instances of a site on one database,
// and what a benchmark measures of them besides time: the statements they
// send, the CPU used by this process and by the PostgreSQL server (and by
// anything else, which disturbs the figures), and the server's WAL
// flushes.
type PostgresBench struct {
	DSN    string
	Stores []*postgres.Store

	stmts      Statements
	cpu        cpuMark
	wal        int64
	postmaster int // the server's process id, for its CPU time; 0 if unknown
}

// NewPostgresBench opens n stores on one new database of the shared test
// server, each with its own connection pool and instance name, as n Caddy
// instances have. Without PostgreSQL the benchmark is skipped, unless
// CI=true. The server must run with fsync and synchronous_commit on, so
// that an answered order is on disk.
func NewPostgresBench(b testing.TB, n int) *PostgresBench {
	b.Helper()
	p := &PostgresBench{DSN: pgtest.Shared(b).NewDatabase(b)}
	for _, setting := range []string{"fsync", "synchronous_commit"} {
		if v := p.query(b, "SHOW "+setting); v != "on" {
			b.Fatalf("the test server runs with %s = %s; durable writes need on", setting, v)
		}
	}
	// A session is a child of the postmaster.
	if pid, err := strconv.Atoi(p.query(b, "SELECT pg_backend_pid()::text")); err == nil {
		p.postmaster, _ = procStat(strconv.Itoa(pid), false)
	}
	for i := 0; i < n; i++ {
		st, err := postgres.Open(context.Background(), p.DSN, postgres.Options{
			Instance: "bench-" + strconv.Itoa(i+1), Tracer: &p.stmts,
		})
		if err != nil {
			b.Fatal(err)
		}
		// Before the database is dropped (cleanups run last first).
		b.Cleanup(func() { _ = st.Close() })
		p.Stores = append(p.Stores, st)
	}
	return p
}

// Start starts counting: call it just before the timed part. It first
// has every session of the stores report the WAL flushes it has done so
// far (what the benchmark did to set up; see flushStats), which also
// fills the pools, and waits (up to 20 s) for the rest of the machine to
// be quiet.
func (p *PostgresBench) Start(b testing.TB) {
	b.Helper()
	p.flushStats(b)
	p.waitQuiet(20 * time.Second)
	p.wal = p.walSyncs(b)
	p.stmts.Reset()
	p.cpu = p.markCPU()
}

// Stop reports, per op (unit names one: "order", "event"), what was
// counted since Start: the CPU of this process and of the server (and the
// cores the rest of the machine took), the statements and transactions,
// and the WAL flushes (fsyncs) of the server. Call it once the timed part
// is over.
func (p *PostgresBench) Stop(b *testing.B, ops int, unit string) {
	b.Helper()
	p.reportCPU(b, ops, unit)
	p.stmts.Report(b, ops, unit)
	p.flushStats(b)
	b.ReportMetric(float64(p.walSyncs(b)-p.wal)/float64(ops), "walsyncs/"+unit)
}

// flushStats has every session of the stores report its statistics to
// the server. A PostgreSQL session reports them when it goes idle, but at
// most once a second; so this waits a second, then holds all of each
// store's connections at once, in as many transactions that only read a
// missing order (they flush no WAL), and lets them go.
func (p *PostgresBench) flushStats(b testing.TB) {
	b.Helper()
	time.Sleep(1100 * time.Millisecond)
	ctx := context.Background()
	var wg, inside sync.WaitGroup
	allIn := make(chan struct{})
	for s, st := range p.Stores {
		for i := 0; i < postgres.DefaultMaxConns; i++ {
			wg.Add(1)
			inside.Add(1)
			go func() {
				defer wg.Done()
				once := sync.OnceFunc(inside.Done)
				key := order.Key{Site: "bench-idle", ID: strconv.Itoa(s) + "-" + strconv.Itoa(i)}
				_, err := st.Update(ctx, key, func(*order.Order) (*order.Order, []store.Delivery, error) {
					once()
					select {
					case <-allIn:
					case <-time.After(10 * time.Second): // a pool smaller than the default
					}
					return nil, nil, nil
				})
				once()
				if err != nil {
					b.Errorf("holding the pool's connections: %v", err)
				}
			}()
		}
	}
	go func() { inside.Wait(); close(allIn) }()
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	time.Sleep(100 * time.Millisecond) // the WAL writer reports on its own
}

// walSyncs is how many times the server has flushed WAL to disk.
func (p *PostgresBench) walSyncs(b testing.TB) int64 {
	b.Helper()
	n, err := strconv.ParseInt(p.query(b, "SELECT wal_sync::text FROM pg_stat_wal"), 10, 64)
	if err != nil {
		b.Fatalf("reading pg_stat_wal: %v", err)
	}
	return n
}

// query runs a query of one text value on a connection of its own.
func (p *PostgresBench) query(b testing.TB, sql string) string {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.DSN)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	var v string
	if err := conn.QueryRow(ctx, sql).Scan(&v); err != nil {
		b.Fatalf("%s: %v", sql, err)
	}
	return v
}

// Statements is a pgx.QueryTracer (and BatchTracer) that counts the
// statements sent, by their text. Safe for concurrent use.
type Statements struct {
	mu      sync.Mutex
	by      map[string]int
	batches int
	errs    int
}

// TraceQueryStart counts one statement.
func (s *Statements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	s.count(d.SQL)
	return ctx
}

// TraceQueryEnd counts a failed statement.
func (s *Statements) TraceQueryEnd(_ context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	if d.Err != nil {
		s.mu.Lock()
		s.errs++
		s.mu.Unlock()
	}
}

// TraceBatchStart counts one round trip for the batch's statements.
func (s *Statements) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	s.mu.Lock()
	s.batches++
	s.mu.Unlock()
	return ctx
}

// TraceBatchQuery counts one statement of a batch.
func (s *Statements) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	s.count(d.SQL)
	if d.Err != nil {
		s.mu.Lock()
		s.errs++
		s.mu.Unlock()
	}
}

// TraceBatchEnd implements pgx.BatchTracer.
func (s *Statements) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (s *Statements) count(sql string) {
	key := strings.Join(strings.Fields(sql), " ")
	if len(key) > 72 {
		key = key[:72] + "…"
	}
	s.mu.Lock()
	if s.by == nil {
		s.by = map[string]int{}
	}
	s.by[key]++
	s.mu.Unlock()
}

// Reset forgets what was counted.
func (s *Statements) Reset() {
	s.mu.Lock()
	s.by, s.batches, s.errs = nil, 0, 0
	s.mu.Unlock()
}

// Report reports the statements per op (BEGIN and COMMIT included) and
// the transactions per op as metrics, and logs each statement's count
// per op. unit names an op: "order", "event".
func (s *Statements) Report(b *testing.B, ops int, unit string) {
	b.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	total, tx := 0, 0
	type row struct {
		sql string
		n   int
	}
	var rows []row
	for sql, n := range s.by {
		total += n
		if strings.EqualFold(sql, "begin") || strings.HasPrefix(strings.ToLower(sql), "begin ") {
			tx += n
		}
		rows = append(rows, row{sql, n})
	}
	sort.Slice(rows, func(i, j int) bool {
		return rows[i].n > rows[j].n || rows[i].n == rows[j].n && rows[i].sql < rows[j].sql
	})
	per := func(n int) float64 { return float64(n) / float64(ops) }
	b.ReportMetric(per(total), "stmts/"+unit)
	b.ReportMetric(per(tx), "tx/"+unit)
	if ops <= 1 {
		return // the testing package's first run, of one op
	}
	var lines strings.Builder
	fmt.Fprintf(&lines, "statements per %s (%d %ss): %.2f in %.2f transactions; %d batches, %d failed", unit, ops, unit, per(total), per(tx), s.batches, s.errs)
	for _, r := range rows {
		fmt.Fprintf(&lines, "\n  %6.3f  %s", per(r.n), r.sql)
	}
	b.Log(lines.String())
}

// cpuMark is a reading of the CPU seconds used so far: by this process,
// by the PostgreSQL server (its postmaster and every session, live or
// ended), and by the whole machine.
type cpuMark struct {
	at                 time.Time
	self, server, busy float64
}

func (p *PostgresBench) markCPU() cpuMark {
	return cpuMark{at: time.Now(), self: procCPU("self", false), server: p.serverCPU(), busy: machineCPU()}
}

// since is the cores used from m to now: by this process, by the server,
// and by everything else (foreign: other people's work on a shared
// machine, which makes every figure worse).
func (p *PostgresBench) since(m cpuMark) (wall, self, server, foreign float64) {
	n := p.markCPU()
	wall = n.at.Sub(m.at).Seconds()
	self, server = n.self-m.self, n.server-m.server
	foreign = max(n.busy-m.busy-self-server, 0)
	return wall, self, server, foreign
}

// waitQuiet waits, at most max, until the rest of the machine uses less
// than a fifth of a core, as the programs of internal/bench do.
func (p *PostgresBench) waitQuiet(max time.Duration) {
	for start := time.Now(); time.Since(start) < max; {
		m := p.markCPU()
		time.Sleep(250 * time.Millisecond)
		if wall, _, _, foreign := p.since(m); foreign/wall < 0.2 {
			return
		}
	}
}

// reportCPU reports the CPU time per op, in µs, of this process
// (self-us/unit) and of the PostgreSQL server (server-us/unit), and the
// cores that the rest of the machine used meanwhile (foreign-cores: above
// about 0.2, someone else's work disturbed the run).
func (p *PostgresBench) reportCPU(b *testing.B, ops int, unit string) {
	wall, self, server, foreign := p.since(p.cpu)
	if wall <= 0 || ops <= 0 {
		return
	}
	b.ReportMetric(self/float64(ops)*1e6, "self-us/"+unit)
	b.ReportMetric(server/float64(ops)*1e6, "server-us/"+unit)
	b.ReportMetric(foreign/wall, "foreign-cores")
}

// serverCPU is the CPU seconds the server has used: its postmaster's own
// and those of its ended children (which it has waited for), and those of
// its running children (the sessions and background processes).
func (p *PostgresBench) serverCPU() float64 {
	if p.postmaster <= 0 {
		return 0
	}
	total := procCPU(strconv.Itoa(p.postmaster), true)
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		if d.Name()[0] < '1' || d.Name()[0] > '9' {
			continue
		}
		if ppid, cpu := procStat(d.Name(), false); ppid == p.postmaster {
			total += cpu
		}
	}
	return total
}

// procCPU is the CPU seconds that process pid ("self" for this one) used,
// with those of its ended children when children is set.
func procCPU(pid string, children bool) float64 {
	_, cpu := procStat(pid, children)
	return cpu
}

// procStat reads the parent and the CPU seconds of process pid from
// /proc/<pid>/stat (fields 4, 14 and 15, and 16 and 17 with children;
// 0 where there is none).
func procStat(pid string, children bool) (ppid int, cpu float64) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, 0
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(fields) < 15 {
		return 0, 0
	}
	ppid, _ = strconv.Atoi(fields[1])
	last := 12
	if children {
		last = 14
	}
	for _, f := range fields[11 : last+1] {
		ticks, _ := strconv.ParseFloat(f, 64)
		cpu += ticks
	}
	return ppid, cpu / 100 // USER_HZ
}

// machineCPU is the busy CPU seconds of the whole machine since boot, from
// /proc/stat (0 where there is none).
func machineCPU() float64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 8 || fields[0] != "cpu" {
		return 0
	}
	var busy float64
	for i, v := range fields[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest, guest_nice are already in user and nice
			break
		}
		n, _ := strconv.ParseFloat(v, 64)
		busy += n
	}
	return busy / 100 // USER_HZ
}
