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
// heap and garbage collector, so the work the handler adds is not diluted
// or amplified by the generator's GC cycles, and -cpuprofile shows Caddy
// alone. -loadgen inproc runs it in this process instead.
//
//	go run ./internal/bench/proxyratio -rounds 5 -duration 5s -conns 32
//
// Everything stays on 127.0.0.1; every round is bounded in time
// (-warmup + -duration) and in requests (-maxreq).
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

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
		quiet    = flag.Float64("quiet", 0.2, "before each round, wait until other processes use less than this many cores (see -quietwait)")
		quietMax = flag.Duration("quietwait", 20*time.Second, "longest wait for a quiet machine before a round (0: do not wait)")

		child  = flag.Bool("child", false, "internal: run only the load generator against -target and print JSON")
		target = flag.String("target", "", "internal: address for -child")
	)
	flag.Parse()
	if *child {
		res, err := benchkit.Closed(benchkit.Target{Addr: *target, Path: func(int64) string { return *path }},
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
	// A hard bound on the whole run, whatever happens.
	limit := time.Duration(*rounds)*2*(*warmup+*duration+*quietMax+15*time.Second) + 30*time.Second
	time.AfterFunc(limit, func() {
		fmt.Fprintf(os.Stderr, "proxyratio: still running after %s; giving up\n", limit)
		os.Exit(2)
	})

	tmp, err := os.MkdirTemp("", "proxyratio-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(tmp)
	if err := benchkit.Isolate(tmp); err != nil {
		fatal(err)
	}
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
	configB := fmt.Sprintf(global, "\tcheckout {\n\t\tstorage bolt "+filepath.Join(tmp, "checkout.db")+"\n\t}\n") +
		fmt.Sprintf(site, port, "\tcheckout {\n\t\tsecret "+sign.NewSecret()+"\n\t\tsandbox\n\t}\n", upstream)

	if *profDir != "" {
		if err := os.MkdirAll(*profDir, 0o755); err != nil {
			fatal(err)
		}
	}
	fmt.Printf("proxyratio: %d rounds of A (reverse_proxy) and B (checkout + reverse_proxy), %s measured + %s warm-up each, %d connections, load generator %s, GOMAXPROCS %d, %d-byte body, GET %s\n",
		*rounds, *duration, *warmup, *conns, *loadgen, runtime.GOMAXPROCS(0), *body, *path)

	var rpsA, rpsB, forA, forB []float64
	for i := 1; i <= *rounds; i++ {
		for _, cfg := range []struct {
			name, text string
			out, fgn   *[]float64
		}{{"A", configA, &rpsA, &forA}, {"B", configB, &rpsB, &forB}} {
			if err := benchkit.LoadCaddyfile(cfg.text); err != nil {
				fatal(fmt.Errorf("loading config %s: %w", cfg.name, err))
			}
			if err := checkOnce(addr, *path, len(payload)); err != nil {
				fatal(fmt.Errorf("config %s: %w", cfg.name, err))
			}
			prof := ""
			if *profDir != "" {
				prof = filepath.Join(*profDir, fmt.Sprintf("%s-%d.prof", cfg.name, i))
			}
			waited := benchkit.WaitQuiet(*quiet, *quietMax)
			mark := benchkit.MarkCPU()
			res, err := runRound(*loadgen, addr, *path, *conns, *warmup, *duration, *maxReq, prof)
			use := mark.Since()
			if err != nil {
				fatal(fmt.Errorf("round %d config %s: %w", i, cfg.name, err))
			}
			if res.Errors > 0 {
				fatal(fmt.Errorf("round %d config %s: %d failed requests (first: %s)", i, cfg.name, res.Errors, res.FirstError))
			}
			*cfg.out = append(*cfg.out, res.RPS)
			*cfg.fgn = append(*cfg.fgn, use.Foreign)
			flag := ""
			if use.Foreign > *quiet {
				flag = "  (machine busy)"
			}
			fmt.Printf("round %d  %s  %9.0f req/s  (%d requests in %.1fs; CPU: bench %.2f cores, other processes %.2f cores; waited %.0fs for quiet)%s\n",
				i, cfg.name, res.RPS, res.Requests, res.Seconds, use.Ours, use.Foreign, waited.Seconds(), flag)
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
	fmt.Printf("median A (reverse_proxy)            %9.0f req/s  (min %.0f, max %.0f)\n", medA, slices.Min(rpsA), slices.Max(rpsA))
	fmt.Printf("median B (checkout + reverse_proxy) %9.0f req/s  (min %.0f, max %.0f)\n", medB, slices.Min(rpsB), slices.Max(rpsB))
	fmt.Printf("per-pair B/A: %s  (median %.4f)\n", fmtList(pairs), median(pairs))
	var clean []float64
	for i := range pairs {
		if forA[i] <= *quiet && forB[i] <= *quiet {
			clean = append(clean, pairs[i])
		}
	}
	if len(clean) < len(pairs) {
		if len(clean) > 0 {
			fmt.Printf("pairs where other processes used <= %.2f cores in both rounds: %d of %d, median B/A %.4f\n", *quiet, len(clean), len(pairs), median(clean))
		} else {
			fmt.Printf("no pair ran on a quiet machine (other processes > %.2f cores): treat the figures with care\n", *quiet)
		}
	}
	verdict := "meets"
	if medB/medA < 0.98 {
		verdict = "MISSES"
	}
	fmt.Printf("ratio B/A (medians) = %.4f  — %s the 0.98 target\n", medB/medA, verdict)
}

// checkOnce makes sure the config answers the upstream's 200 before load.
// Right after a reload the old server may still close a connection it had
// just accepted, so a few tries are allowed.
func checkOnce(addr, path string, bodyLen int) error {
	var err error
	for range 20 {
		if err = checkGET(addr, path, bodyLen); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

func checkGET(addr, path string, bodyLen int) error {
	c, err := benchkit.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	r, err := c.GET(addr, path, 5*time.Second)
	if err != nil {
		return err
	}
	if r.Status != 200 || r.BodyLen != int64(bodyLen) {
		return fmt.Errorf("GET %s: status %d, %d body bytes; want 200 and %d", path, r.Status, r.BodyLen, bodyLen)
	}
	return nil
}

func runRound(loadgen, addr, path string, conns int, warmup, dur time.Duration, maxReq int64, prof string) (benchkit.ClosedResult, error) {
	var stop func()
	onMeasure := func(start bool) {
		if start {
			var err error
			if stop, err = benchkit.CPUProfile(prof); err != nil {
				fmt.Fprintln(os.Stderr, "cpu profile:", err)
				stop = func() {}
			}
			return
		}
		if stop != nil {
			stop()
			stop = nil
		}
	}
	if loadgen == "inproc" {
		return benchkit.Closed(benchkit.Target{Addr: addr, Path: func(int64) string { return path }}, conns, warmup, dur, maxReq, onMeasure)
	}
	ctx, cancel := context.WithTimeout(context.Background(), warmup+dur+30*time.Second)
	defer cancel()
	var res benchkit.ClosedResult
	done := make(chan error, 1)
	go func() {
		done <- benchkit.RunChild(ctx, []string{"-child", "-target", addr, "-path", path,
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
