// Command intakerate measures the header intake of SPEC §4.1 over real
// HTTP through Caddy at a fixed arrival rate: a tiny shop upstream answers
// every GET /buy/<id> with X-Checkout-Order/-Amount/-Currency, the checkout
// handler stores the order durably (bbolt, group commit; or, with
// -postgres, in a PostgreSQL database) and answers 303 to the sandbox's
// page.
//
// The load is open-loop: request i is due at start + i/rate whether or not
// earlier ones were answered, and its latency is counted from that due
// time, so a server that falls behind pays for its queue (no coordinated
// omission). Only requests due after -warmup count.
//
// To tell what the checkout adds, the same load runs in up to three
// phases: "upstream" (straight to the shop, no Caddy), "proxy" (Caddy with
// reverse_proxy only; the X-Checkout-* headers pass through untouched) and
// "checkout" (checkout + reverse_proxy: the real intake). Added latency is
// checkout minus proxy at the same rate.
//
//	go run ./internal/bench/intakerate -rate 5000 -duration 10s
//
// The load generator runs in a child process by default (-loadgen
// process), so that Caddy's garbage collector and scheduler do not delay
// the generator's clock and the generator's do not delay Caddy. Everything
// stays on 127.0.0.1, and every phase is bounded in time and requests.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.etcd.io/bbolt"

	"github.com/caddy-checkout/checkout/internal/bench/benchkit"
	"github.com/caddy-checkout/checkout/sign"
)

func main() {
	var (
		rates    = flag.String("rate", "5000", "arrival rate in requests/s; a comma-separated list runs each in turn")
		duration = flag.Duration("duration", 10*time.Second, "measured time per phase")
		warmup   = flag.Duration("warmup", 2*time.Second, "unmeasured time at the same rate before the measured window")
		conns    = flag.Int("conns", 256, "keep-alive connections (the most requests in flight)")
		phases   = flag.String("phases", "upstream,proxy,checkout", "which of upstream, proxy, checkout to run")
		loadgen  = flag.String("loadgen", "process", "where the load generator runs: process (a child process) or inproc")
		maxReq   = flag.Int64("maxreq", 2_000_000, "upper bound on requests per phase")
		drain    = flag.Duration("drain", 30*time.Second, "longest wait for answers after the schedule ends")
		profile  = flag.String("cpuprofile", "", "write a CPU profile of this (Caddy's) process during the measured window of each checkout phase to this file (rate appended)")
		quiet    = flag.Float64("quiet", 0.2, "before each phase, wait until other processes use less than this many cores (see -quietwait)")
		quietMax = flag.Duration("quietwait", 20*time.Second, "longest wait for a quiet machine before a phase (0: do not wait)")
		pgDSN    = flag.String("postgres", "", "store the orders in this PostgreSQL database (storage postgres <dsn>) instead of a new bbolt file per rate")

		child  = flag.Bool("child", false, "internal: run only the load generator and print JSON")
		target = flag.String("target", "", "internal: address for -child")
		prefix = flag.String("prefix", "", "internal: order id prefix for -child")
		expect = flag.Int("expect", 200, "internal: expected status for -child")
	)
	flag.Parse()
	if *child {
		rate, err := strconv.ParseFloat(*rates, 64)
		if err != nil {
			fatal(err)
		}
		res, err := benchkit.Open(makeTarget(*target, *prefix, *expect), rate, *conns, *warmup, *duration, *maxReq, *drain, nil)
		if err != nil {
			fatal(err)
		}
		if err := benchkit.PrintJSON(res); err != nil {
			fatal(err)
		}
		return
	}
	if *loadgen != "process" && *loadgen != "inproc" {
		fatal(fmt.Errorf("-loadgen %q: want process or inproc", *loadgen))
	}
	var rateList []float64
	for _, s := range strings.Split(*rates, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || r <= 0 {
			fatal(fmt.Errorf("-rate %q: want positive numbers", *rates))
		}
		rateList = append(rateList, r)
	}
	phaseList := strings.Split(*phases, ",")
	for _, p := range phaseList {
		if p != "upstream" && p != "proxy" && p != "checkout" {
			fatal(fmt.Errorf("-phases: unknown phase %q", p))
		}
	}
	limit := time.Duration(len(rateList)*len(phaseList))*(*warmup+*duration+*drain+*quietMax+20*time.Second) + 30*time.Second
	tmp, cleanup, err := benchkit.Setup("intakerate", limit)
	if err != nil {
		fatal(err)
	}
	defer cleanup()
	shopAddr, stopShop, err := benchkit.Serve(http.HandlerFunc(shop))
	if err != nil {
		fatal(err)
	}
	defer stopShop()
	port, err := benchkit.FreePort()
	if err != nil {
		fatal(err)
	}
	caddyAddr := "127.0.0.1:" + strconv.Itoa(port)
	secret := sign.NewSecret()
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)

	fmt.Printf("intakerate: open loop, %s measured after %s warm-up, up to %d connections, load generator %s\n",
		*duration, *warmup, *conns, *loadgen)
	type row struct {
		rate  float64
		phase string
		res   benchkit.OpenResult
		use   benchkit.Usage
	}
	var rows []row
	for _, rate := range rateList {
		for _, phase := range phaseList {
			addr, expectStatus := caddyAddr, 200
			dbPath := filepath.Join(tmp, fmt.Sprintf("checkout-%.0f.db", rate))
			switch phase {
			case "upstream":
				addr = shopAddr
			case "proxy":
				if err := benchkit.LoadCaddyfile(caddyfile(port, shopAddr, "", "")); err != nil {
					fatal(err)
				}
			case "checkout":
				storage := "bolt " + dbPath
				if *pgDSN != "" {
					storage = "postgres " + *pgDSN
				}
				if err := benchkit.LoadCaddyfile(caddyfile(port, shopAddr, storage, secret)); err != nil {
					fatal(err)
				}
				expectStatus = http.StatusSeeOther
			}
			pfx := fmt.Sprintf("%s-%.0f-%s-", runID, rate, phase)
			prof := ""
			if phase == "checkout" && *profile != "" {
				prof = strings.TrimSuffix(*profile, ".prof") + fmt.Sprintf("-%.0f.prof", rate)
			}
			benchkit.WaitQuiet(*quiet, *quietMax)
			mark := benchkit.MarkCPU()
			res, err := run(*loadgen, addr, pfx, expectStatus, rate, *conns, *warmup, *duration, *maxReq, *drain, prof)
			if err != nil {
				fatal(fmt.Errorf("%s at %.0f/s: %w", phase, rate, err))
			}
			use := mark.Since()
			rows = append(rows, row{rate, phase, res, use})
			printRow(rate, phase, res, use, *quiet)
			if phase != "upstream" {
				if err := benchkit.StopCaddy(); err != nil {
					fmt.Fprintln(os.Stderr, "stopping caddy:", err)
				}
			}
			if phase == "checkout" {
				count := countOrders
				if *pgDSN != "" {
					count = func(_, prefix string) (int, error) { return countPostgresOrders(*pgDSN, prefix) }
				}
				n, err := count(dbPath, pfx)
				if err != nil {
					fatal(err)
				}
				fmt.Printf("          orders of this phase in the store after Caddy stopped: %d (answered 303: %d in the window; the rest are warm-up)\n", n, res.OK)
			}
		}
	}

	fmt.Println()
	fmt.Println("summary (latency from due time, ms):")
	fmt.Printf("%8s %-9s %10s %6s %8s %8s %8s %8s %8s\n", "rate", "phase", "achieved", "errors", "p50", "p99", "p99.9", "max", "others")
	for _, r := range rows {
		fmt.Printf("%8.0f %-9s %10.0f %6d %8.2f %8.2f %8.2f %8.2f %8.2f\n", r.rate, r.phase, r.res.AchievedRate, r.res.Errors,
			r.res.Latency.P50, r.res.Latency.P99, r.res.Latency.P999, r.res.Latency.Max, r.use.Foreign)
	}
	for _, rate := range rateList {
		var proxy, co *benchkit.OpenResult
		for i := range rows {
			if rows[i].rate != rate {
				continue
			}
			switch rows[i].phase {
			case "proxy":
				proxy = &rows[i].res
			case "checkout":
				co = &rows[i].res
			}
		}
		if proxy == nil || co == nil {
			continue
		}
		added99 := co.Latency.P99 - proxy.Latency.P99
		keptUp := co.AchievedRate >= 0.99*rate && co.Errors == 0
		fmt.Printf("at %.0f/s: checkout achieved %.0f orders/s (kept up: %s); added latency (checkout - proxy): p50 %+.2f ms, p99 %+.2f ms (under 10 ms: %s), p99.9 %+.2f ms\n",
			rate, co.AchievedRate, yesNo(keptUp), co.Latency.P50-proxy.Latency.P50, added99, yesNo(added99 < 10), co.Latency.P999-proxy.Latency.P999)
		if rate >= 5000 {
			verdict := "MEETS"
			if !keptUp || added99 >= 10 {
				verdict = "MISSES"
			}
			fmt.Printf("target (>= 5000 orders/s with p99 added < 10 ms): %s\n", verdict)
		}
	}
}

// shop answers every request as a "buy" of a new order, whose id is the
// last path element.
func shop(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	h := w.Header()
	h.Set("X-Checkout-Order", id)
	h.Set("X-Checkout-Amount", "75.00")
	h.Set("X-Checkout-Currency", "USD")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("order announced; this body is discarded by the checkout\n"))
}

func makeTarget(addr, prefix string, expect int) benchkit.Target {
	return benchkit.Target{
		Addr: addr,
		Path: func(n int64) string { return "/buy/" + prefix + strconv.FormatInt(n, 10) },
		Check: func(r benchkit.Response) error {
			if r.Status != expect {
				return fmt.Errorf("status %d, want %d", r.Status, expect)
			}
			if expect == http.StatusSeeOther && !strings.Contains(r.Location, "/_checkout/sandbox/") {
				return fmt.Errorf("303 to %q, want the sandbox page", r.Location)
			}
			return nil
		},
	}
}

// caddyfile is the config of a phase: plain reverse_proxy, or with secret
// the checkout in front of it, over storage ("bolt <path>" or
// "postgres <dsn>").
func caddyfile(port int, upstream, storage, secret string) string {
	global, handler := "", ""
	if secret != "" {
		global = "\tcheckout {\n\t\tstorage " + storage + "\n\t}\n"
		handler = "\tcheckout {\n\t\tsecret " + secret + "\n\t\tsandbox\n\t}\n"
	}
	return fmt.Sprintf(`{
	admin off
	persist_config off
	auto_https off
	log {
		level ERROR
	}
%s}
http://:%d {
	bind 127.0.0.1
%s	reverse_proxy %s
}
`, global, port, handler, upstream)
}

func run(loadgen, addr, prefix string, expect int, rate float64, conns int, warmup, dur time.Duration, maxReq int64, drain time.Duration, prof string) (benchkit.OpenResult, error) {
	onMeasure := benchkit.ProfileWindow(prof)
	if loadgen == "inproc" {
		return benchkit.Open(makeTarget(addr, prefix, expect), rate, conns, warmup, dur, maxReq, drain, onMeasure)
	}
	ctx, cancel := context.WithTimeout(context.Background(), warmup+dur+drain+30*time.Second)
	defer cancel()
	var res benchkit.OpenResult
	done := make(chan error, 1)
	go func() {
		done <- benchkit.RunChild(ctx, []string{"-child", "-target", addr, "-prefix", prefix,
			"-expect", strconv.Itoa(expect), "-rate", strconv.FormatFloat(rate, 'f', -1, 64),
			"-conns", strconv.Itoa(conns), "-warmup", warmup.String(), "-duration", dur.String(),
			"-maxreq", strconv.FormatInt(maxReq, 10), "-drain", drain.String()}, &res)
	}()
	if prof != "" {
		time.Sleep(warmup)
		onMeasure(true)
		select {
		case err := <-done:
			onMeasure(false)
			return res, err
		case <-time.After(dur):
			onMeasure(false)
		}
	}
	return res, <-done
}

func printRow(rate float64, phase string, r benchkit.OpenResult, use benchkit.Usage, quiet float64) {
	busy := ""
	if use.Foreign > quiet {
		busy = "  (machine busy)"
	}
	fmt.Printf("%6.0f/s %-9s achieved %7.0f/s  ok %d  errors %d  latency ms: p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f  (service p99 %.2f; dispatcher late max %.1f ms; CPU bench %.2f, others %.2f cores)%s\n",
		rate, phase, r.AchievedRate, r.OK, r.Errors, r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.P999, r.Latency.Max,
		r.Service.P99, r.MaxLate, use.Ours, use.Foreign, busy)
	if r.FirstError != "" {
		fmt.Printf("          first error: %s\n", r.FirstError)
	}
}

// countOrders counts the orders whose id starts with prefix in the bbolt
// file, read after Caddy closed it: what was durably stored.
func countOrders(path, prefix string) (int, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 10 * time.Second})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	n := 0
	err = db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("orders"))
		if b == nil {
			return fmt.Errorf("no orders bucket in %s", path)
		}
		return b.ForEach(func(k, _ []byte) error {
			// Keys are site + NUL + order id.
			if i := strings.IndexByte(string(k), 0); i >= 0 && strings.HasPrefix(string(k[i+1:]), prefix) {
				n++
			}
			return nil
		})
	})
	return n, err
}

// countPostgresOrders counts the orders whose id starts with prefix in the
// PostgreSQL database, read after Caddy stopped.
func countPostgresOrders(dsn, prefix string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM checkout_orders WHERE starts_with(id, $1)`, prefix).Scan(&n)
	return n, err
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "intakerate:", err)
	os.Exit(1)
}
