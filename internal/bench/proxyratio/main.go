// Command proxyratio measures what the checkout handler costs on requests
// that are not checkout requests: requests/s through `checkout` +
// `reverse_proxy` (config B) against plain `reverse_proxy` (config A), in
// the same binary and the same run.
//
// It starts a tiny upstream on loopback (200, a small body, no
// X-Checkout-* headers), then loads Caddy in this process with caddy.Load,
// alternating A, B, A, B, ... for -rounds pairs so that drift (CPU
// frequency, page cache, a neighbour on the host) hits both alike. In each
// round -conns keep-alive clients send GETs back to back for -warmup (not
// counted) and then -duration (counted). It prints each round's req/s, the
// median of each config and the ratio B/A of the medians, and the median
// of the per-pair ratios.
//
// The load generator runs in a child process by default (-loadgen
// process): on a 2-core machine it competes with Caddy for the CPU either
// way, but in a process of its own it does not share Caddy's Go scheduler,
// heap and garbage collector, so the generator's GC cycles and goroutines
// do not land on one config's rounds more than the other's, and
// -cpuprofile shows Caddy alone. Measured on the 2-core VM, the 95%
// interval of the mean pair ratio was +-0.04 with a child process (40
// ABBA pairs), +-0.06 with an in-process generator (30 pairs; it also
// swings hardest when another process takes a core) and +-0.06 with -pin
// (40 ABBA pairs; Caddy held to one core, the generator to the other). -order abba runs A,B then B,A
// so that drift within a pair cancels too.
//
//	go run ./internal/bench/proxyratio -rounds 5 -duration 5s -conns 32
//
// With -paywall it measures what checking a receipt costs instead: config A
// is checkout + reverse_proxy with the path unpriced, config B the same
// with a price on the path, and every request carries a valid receipt
// (Authorization: Bearer) that it bought once, through the sandbox, before
// the first round. The target is B/A >= 0.95.
//
// Everything stays on 127.0.0.1; every round is bounded in time
// (-warmup + -duration) and in requests (-maxreq).
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-checkout/checkout/handlers/handlerstest"
	"github.com/caddy-checkout/checkout/internal/bench/benchkit"
	"github.com/caddy-checkout/checkout/sign"
)

func main() {
	var (
		duration = flag.Duration("duration", 5*time.Second, "measured time per round")
		warmup   = flag.Duration("warmup", time.Second, "unmeasured warm-up at the start of each round")
		rounds   = flag.Int("rounds", 5, "number of A,B pairs")
		conns    = flag.Int("conns", 32, "concurrent keep-alive client connections")
		loadgen  = flag.String("loadgen", "process", "where the load generator runs: process (a child process) or inproc")
		body     = flag.Int("body", 128, "size of the upstream's response body in bytes")
		path     = flag.String("path", "/products/42", "request path (a shop route, not a checkout route)")
		maxReq   = flag.Int64("maxreq", 50_000_000, "upper bound on requests per round")
		profDir  = flag.String("cpuprofile", "", "directory for a CPU profile of each round (A-1.prof, B-1.prof, ...) of this (Caddy's) process")
		browser  = flag.Bool("browser", false, "send browser-like request headers (8, with Connection: keep-alive) instead of 2")
		pin      = flag.Bool("pin", false, "with -loadgen process: pin Caddy and the upstream to CPU 0 and the load generator to CPU 1 (taskset), so that Caddy's share of the machine is fixed")
		order    = flag.String("order", "ab", "round order within each pair: ab (A,B,A,B,...) or abba (A,B then B,A alternately, which also cancels drift within a pair)")
		quiet    = flag.Float64("quiet", 0.2, "before each round, wait until other processes use less than this many cores (see -quietwait)")
		quietMax = flag.Duration("quietwait", 20*time.Second, "longest wait for a quiet machine before a round (0: do not wait)")

		paywall = flag.Bool("paywall", false, "compare a priced path with a valid receipt (B) against the same path unpriced (A), both through checkout")
		bearer  = flag.String("bearer", "", "internal: a receipt the load generator sends as Authorization: Bearer")

		child  = flag.Bool("child", false, "internal: run only the load generator against -target and print JSON")
		target = flag.String("target", "", "internal: address for -child")
	)
	flag.Parse()
	if *child {
		extra := extraHeaders(*browser, *bearer)
		res, err := benchkit.Closed(benchkit.Target{Addr: *target, Path: func(int64) string { return *path }, Extra: extra},
			*conns, *warmup, *duration, *maxReq, nil)
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
	if *order != "ab" && *order != "abba" {
		fatal(fmt.Errorf("-order %q: want ab or abba", *order))
	}
	if *pin {
		if *loadgen != "process" {
			fatal(fmt.Errorf("-pin needs -loadgen process"))
		}
		if err := benchkit.PinSelf("0"); err != nil {
			fatal(err)
		}
		benchkit.ChildCPUs = "1"
	}
	secret := sign.NewSecret()
	// A hard bound on the whole run, whatever happens.
	limit := time.Duration(*rounds)*2*(*warmup+*duration+*quietMax+15*time.Second) + 30*time.Second
	tmp, cleanup, err := benchkit.Setup("proxyratio", limit)
	if err != nil {
		fatal(err)
	}
	defer cleanup()
	payload := []byte(strings.Repeat("x", *body))
	upstream, stopUpstream, err := benchkit.Serve(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(payload)
	}))
	if err != nil {
		fatal(err)
	}
	defer stopUpstream()
	port, err := benchkit.FreePort()
	if err != nil {
		fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	global := `{
	admin off
	persist_config off
	auto_https off
	log {
		level ERROR
	}
%s}
`
	site := `http://:%d {
	bind 127.0.0.1
%s	reverse_proxy %s
}
`
	configA := fmt.Sprintf(global, "") + fmt.Sprintf(site, port, "", upstream)
	withCheckout := func(price string) string {
		return fmt.Sprintf(global, "\tcheckout {\n\t\tstorage bolt "+filepath.Join(tmp, "checkout.db")+"\n\t}\n") +
			fmt.Sprintf(site, port, "\tcheckout {\n\t\tsecret "+secret+"\n"+price+"\t\tsandbox\n\t}\n", upstream)
	}
	configB := withCheckout("")
	nameA, nameB, goal := "A (reverse_proxy)", "B (checkout + reverse_proxy)", 0.98
	receipt, configC := "", ""
	if *paywall {
		configA = configB
		configB = withCheckout("\t\tprice " + *path + " 9.99 USD\n")
		// C is A with the proxy adding the seven headers B's requests
		// reach the upstream with (values of the same length), in place
		// of the receipt: B/C is the cost of checking the receipt alone.
		configC = strings.Replace(configA, "reverse_proxy "+upstream, "reverse_proxy "+upstream+` {
		header_up X-Checkout-Status paid
		header_up X-Checkout-Order paywall-aaaaaaaaaaaaaaaaaaaaaaaaaa
		header_up X-Checkout-Amount 9.99
		header_up X-Checkout-Currency USD
		header_up X-Checkout-Provider sandbox
		header_up X-Checkout-Transaction sbx_txn_aaaaaaaaaaaaaaaaaaaaaaaaaa
		header_up X-Checkout-Signature t=1795601474,v1=0000000000000000000000000000000000000000000000000000000000000000
		header_up -Authorization
	}`, 1)
		nameA, nameB, goal = "A (checkout, path unpriced)", "B (checkout, path priced, valid receipt)", 0.95
		if err := benchkit.LoadCaddyfile(configB); err != nil {
			fatal(fmt.Errorf("loading config B: %w", err))
		}
		if receipt, err = handlerstest.BuyReceipt("http://"+addr, *path); err != nil {
			fatal(fmt.Errorf("buying a receipt: %w", err))
		}
	}

	if *profDir != "" {
		if err := os.MkdirAll(*profDir, 0o755); err != nil {
			fatal(err)
		}
	}
	pinned := ""
	if *pin {
		pinned = " (Caddy on CPU 0, load generator on CPU 1)"
	}
	fmt.Printf("proxyratio: %d rounds of %s and %s, order %s, %s measured + %s warm-up each, %d connections, load generator %s%s, GOMAXPROCS %d, %d-byte body, GET %s, browser headers %v, receipt sent %v\n",
		*rounds, nameA, nameB, *order, *duration, *warmup, *conns, *loadgen, pinned, runtime.GOMAXPROCS(0), *body, *path, *browser, receipt != "")

	var rpsA, rpsB, forA, forB, cpuA, cpuB, srvA, srvB, rpsC, forC, cpuC, srvC []float64
	for i := 1; i <= *rounds; i++ {
		type config struct {
			name, text         string
			out, fgn, cpu, srv *[]float64
		}
		cfgs := []config{{"A", configA, &rpsA, &forA, &cpuA, &srvA}, {"B", configB, &rpsB, &forB, &cpuB, &srvB}}
		if *order == "abba" && i%2 == 0 {
			cfgs[0], cfgs[1] = cfgs[1], cfgs[0]
		}
		if configC != "" {
			cfgs = append(cfgs, config{"C", configC, &rpsC, &forC, &cpuC, &srvC})
		}
		for _, cfg := range cfgs {
			if err := benchkit.LoadCaddyfile(cfg.text); err != nil {
				fatal(fmt.Errorf("loading config %s: %w", cfg.name, err))
			}
			if err := checkOnce(addr, *path, extraHeaders(false, receipt), len(payload)); err != nil {
				fatal(fmt.Errorf("config %s: %w", cfg.name, err))
			}
			prof := ""
			if *profDir != "" {
				prof = filepath.Join(*profDir, fmt.Sprintf("%s-%d.prof", cfg.name, i))
			}
			waited := benchkit.WaitQuiet(*quiet, *quietMax)
			mark := benchkit.MarkCPU()
			res, err := runRound(*loadgen, addr, *path, *browser, receipt, *conns, *warmup, *duration, *maxReq, prof)
			use := mark.Since()
			if err != nil {
				fatal(fmt.Errorf("round %d config %s: %w", i, cfg.name, err))
			}
			if res.Errors > 0 {
				fatal(fmt.Errorf("round %d config %s: %d failed requests (first: %s)", i, cfg.name, res.Errors, res.FirstError))
			}
			*cfg.out = append(*cfg.out, res.RPS)
			*cfg.fgn = append(*cfg.fgn, use.Foreign)
			// CPU time of Caddy, upstream and load generator per request,
			// warm-up included: unlike req/s it hardly moves when another
			// process takes CPU away from the benchmark.
			perReq := use.Ours * use.Seconds / float64(res.Total) * 1e6
			*cfg.cpu = append(*cfg.cpu, perReq)
			srvPerReq := use.Self * use.Seconds / float64(res.Total) * 1e6
			*cfg.srv = append(*cfg.srv, srvPerReq)
			flag := ""
			if use.Foreign > *quiet {
				flag = "  (machine busy)"
			}
			fmt.Printf("round %d  %s  %9.0f req/s  %6.1f CPU-µs/req (server %5.1f)  (%d requests in %.1fs; CPU: bench %.2f cores, other processes %.2f cores; waited %.0fs for quiet)%s\n",
				i, cfg.name, res.RPS, perReq, srvPerReq, res.Requests, res.Seconds, use.Ours, use.Foreign, waited.Seconds(), flag)
		}
	}
	if err := benchkit.StopCaddy(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping caddy:", err)
	}

	medA, medB := median(rpsA), median(rpsB)
	var pairs []float64
	for i := range rpsA {
		pairs = append(pairs, rpsB[i]/rpsA[i])
	}
	fmt.Printf("median %-42s %9.0f req/s  (min %.0f, max %.0f)\n", nameA, medA, slices.Min(rpsA), slices.Max(rpsA))
	fmt.Printf("median %-42s %9.0f req/s  (min %.0f, max %.0f)\n", nameB, medB, slices.Min(rpsB), slices.Max(rpsB))
	fmt.Printf("per-pair B/A: %s\n", fmtList(pairs))
	m, ci := meanCI(pairs)
	fmt.Printf("per-pair B/A: median %.4f, mean %.4f ± %.4f (95%% CI of the mean), min %.3f, max %.3f\n", median(pairs), m, ci, slices.Min(pairs), slices.Max(pairs))
	var clean []float64
	for i := range pairs {
		if forA[i] <= *quiet && forB[i] <= *quiet {
			clean = append(clean, pairs[i])
		}
	}
	if len(clean) < len(pairs) {
		if len(clean) > 0 {
			m, ci := meanCI(clean)
			fmt.Printf("pairs where other processes used <= %.2f cores in both rounds: %d of %d, median B/A %.4f, mean %.4f ± %.4f\n", *quiet, len(clean), len(pairs), median(clean), m, ci)
		} else {
			fmt.Printf("no pair ran on a quiet machine (other processes > %.2f cores): treat the figures with care\n", *quiet)
		}
	}
	fmt.Printf("CPU per request (Caddy + upstream + load generator): median A %.1f µs, B %.1f µs; A/B %.4f (the req/s ratio the CPU cost alone predicts when the machine is CPU-bound)\n",
		median(cpuA), median(cpuB), median(cpuA)/median(cpuB))
	if *loadgen == "process" {
		fmt.Printf("server CPU per request (Caddy + upstream, this process): median A %.1f µs, B %.1f µs; B adds %.1f µs (%+.1f%%)\n",
			median(srvA), median(srvB), median(srvB)-median(srvA), (median(srvB)/median(srvA)-1)*100)
	}
	if configC != "" {
		var bc []float64
		for i := range rpsC {
			bc = append(bc, rpsB[i]/rpsC[i])
		}
		m, ci := meanCI(bc)
		fmt.Printf("median C (checkout, path unpriced, the proxy adding B's seven headers) %9.0f req/s; B/C per round: median %.4f, mean %.4f ± %.4f: the receipt check alone; server CPU per request C %.1f µs\n",
			median(rpsC), median(bc), m, ci, median(srvC))
	}
	verdict := "meets"
	if medB/medA < goal {
		verdict = "MISSES"
	}
	fmt.Printf("ratio B/A (medians) = %.4f  — %s the %.2f target\n", medB/medA, verdict, goal)
}

// checkOnce makes sure the config answers the upstream's 200 before load.
// Right after a reload the old server may still close a connection it had
// just accepted, so a few tries are allowed.
func checkOnce(addr, path, extra string, bodyLen int) error {
	var err error
	for range 20 {
		if err = checkGET(addr, path, extra, bodyLen); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

func checkGET(addr, path, extra string, bodyLen int) error {
	c, err := benchkit.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.Extra = extra
	r, err := c.GET(addr, path, 5*time.Second)
	if err != nil {
		return err
	}
	if r.Status != 200 || r.BodyLen != int64(bodyLen) {
		return fmt.Errorf("GET %s: status %d, %d body bytes; want 200 and %d", path, r.Status, r.BodyLen, bodyLen)
	}
	return nil
}

func runRound(loadgen, addr, path string, browser bool, receipt string, conns int, warmup, dur time.Duration, maxReq int64, prof string) (benchkit.ClosedResult, error) {
	onMeasure := benchkit.ProfileWindow(prof)
	if loadgen == "inproc" {
		extra := extraHeaders(browser, receipt)
		return benchkit.Closed(benchkit.Target{Addr: addr, Path: func(int64) string { return path }, Extra: extra}, conns, warmup, dur, maxReq, onMeasure)
	}
	ctx, cancel := context.WithTimeout(context.Background(), warmup+dur+30*time.Second)
	defer cancel()
	var res benchkit.ClosedResult
	done := make(chan error, 1)
	go func() {
		done <- benchkit.RunChild(ctx, []string{"-child", "-target", addr, "-path", path, "-browser=" + strconv.FormatBool(browser), "-bearer", receipt,
			"-conns", strconv.Itoa(conns), "-warmup", warmup.String(), "-duration", dur.String(),
			"-maxreq", strconv.FormatInt(maxReq, 10)}, &res)
	}()
	if prof != "" {
		// The child's window starts after it has dialled; a few ms of
		// misalignment do not matter for a profile.
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

// extraHeaders are the header lines every request of a round carries.
func extraHeaders(browser bool, receipt string) string {
	extra := ""
	if browser {
		extra = benchkit.BrowserHeaders
	}
	if receipt != "" {
		extra += "Authorization: Bearer " + receipt + "\r\n"
	}
	return extra
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// meanCI is the mean of v and the half-width of its 95% confidence
// interval (normal approximation).
func meanCI(v []float64) (float64, float64) {
	n := float64(len(v))
	if n == 0 {
		return 0, 0
	}
	var sum float64
	for _, x := range v {
		sum += x
	}
	mean := sum / n
	if n < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, 1.96 * math.Sqrt(ss/(n-1)/n)
}

func fmtList(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.3f", x)
	}
	return strings.Join(parts, " ")
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "proxyratio:", err)
	os.Exit(1)
}
