// Command livepages measures Caddy's memory with 10,000 open live pages
// (issue 14): a Caddy in this process, loaded from a Caddyfile with a
// checkout site (the sandbox provider, bbolt storage) takes 10,000 orders
// through the server API, and a load generator in a child process opens
// one live-status stream (GET {base}/events/{ref}, SPEC §5) per order,
// 10,000 at once: the site's bound, with each payment far below its own
// bound of 20. None may be refused (503); one more stream, opened after
// 10,000, must be.
//
// Caddy's process is read before the streams open, with them open (after
// they have polled the store twice), and after they close: the Go heap in
// use and the goroutine stacks after garbage collection, and the RSS
// from /proc/self/status, as the process stands and after the runtime has
// returned its free memory to the system. The load generator's memory is
// in its own process and counts nowhere.
//
// Each of the two processes needs more than 10,000 open files: each raises
// its RLIMIT_NOFILE (syscall.Setrlimit) to -streams plus 1,024, the hard
// limit too if it is lower and the process may.
//
//	go run ./internal/bench/livepages
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/caddy-checkout/checkout/internal/bench/benchkit"
	"github.com/caddy-checkout/checkout/sign"
)

// siteBound is how many live pages a site may have open at once
// (handlers' maxStreams).
const siteBound = 10_000

func main() {
	var (
		streams = flag.Int("streams", 10_000, "live pages to open, one per order")
		settle  = flag.Duration("settle", 12*time.Second, "how long the streams stay open before Caddy is read (the streams poll the store every 5 s)")
		workers = flag.Int("workers", 16, "concurrent requests of the load generator while it creates orders and opens streams")

		child  = flag.Bool("child", false, "internal: run only the load generator, driven on stdin")
		target = flag.String("target", "", "internal: Caddy's address for -child")
		secret = flag.String("secret", "", "internal: the site secret for -child")
	)
	flag.Parse()
	limit, err := raiseOpenFiles(uint64(*streams + 1024))
	if err != nil {
		fatal(err)
	}
	if *child {
		if err := loadgen(*target, *secret, *streams, *workers); err != nil {
			fatal(err)
		}
		return
	}
	if err := run(*streams, *workers, *settle, limit); err != nil {
		fatal(err)
	}
}

// raiseOpenFiles sets RLIMIT_NOFILE to at least want, raising the hard
// limit too if it is lower (which needs CAP_SYS_RESOURCE), and returns
// the limit set.
func raiseOpenFiles(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur >= want {
		return lim.Cur, nil
	}
	lim.Cur, lim.Max = want, max(lim.Max, want)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("raising the open-files limit to %d: %w (run as a user whose hard limit, ulimit -Hn, is at least that)", want, err)
	}
	return want, nil
}

// reading is Caddy's process at one moment.
type reading struct {
	HeapInuse, StackInuse uint64 // after garbage collection
	Goroutines            int
	RSS, RSSAnon          uint64 // as the process stands, after the collection
	RSSReturned           uint64 // after debug.FreeOSMemory
}

// read collects the garbage twice, since objects put back in a sync.Pool
// (net/http's buffers of closed connections) outlive one collection.
func read() reading {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	r := reading{HeapInuse: m.HeapInuse, StackInuse: m.StackInuse, Goroutines: runtime.NumGoroutine()}
	r.RSS, r.RSSAnon = rss()
	debug.FreeOSMemory()
	r.RSSReturned, _ = rss()
	return r
}

// rss reads VmRSS and RssAnon of this process, in bytes.
func rss() (total, anon uint64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		n, _ := strconv.ParseUint(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			total = n << 10
		case "RssAnon:":
			anon = n << 10
		}
	}
	return total, anon
}

func run(streams, workers int, settle time.Duration, nofile uint64) error {
	dir, cleanup, err := benchkit.Setup("livepages", 10*time.Minute+settle)
	if err != nil {
		return err
	}
	defer cleanup()
	port, err := benchkit.FreePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	secret := sign.NewSecret()
	if err := benchkit.LoadCaddyfile(caddyfile(port, filepath.Join(dir, "checkout.db"), secret)); err != nil {
		return err
	}
	defer func() { _ = benchkit.StopCaddy() }()
	fmt.Printf("livepages: Caddy on %s (checkout, sandbox, bbolt), %d orders and live pages; open-files limit %d; GOMAXPROCS %d\n",
		addr, streams, nofile, runtime.GOMAXPROCS(0))

	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "-child", "-target", addr, "-secret", secret,
		"-streams", strconv.Itoa(streams), "-workers", strconv.Itoa(workers))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	await := func(step string) (report, error) {
		if !lines.Scan() {
			return report{}, fmt.Errorf("load generator ended before %q: %v", step, lines.Err())
		}
		var r report
		if err := json.Unmarshal(lines.Bytes(), &r); err != nil || r.Step != step {
			return r, fmt.Errorf("load generator said %q, want step %q", lines.Text(), step)
		}
		if r.Error != "" {
			return r, fmt.Errorf("load generator, %s: %s", step, r.Error)
		}
		return r, nil
	}

	created, err := await("created")
	if err != nil {
		return err
	}
	fmt.Printf("created %d orders in %.1f s\n", created.Count, created.Seconds)
	time.Sleep(2 * time.Second) // the API's connections close, their goroutines end
	before := read()
	show("before the streams", before, reading{}, 0)

	fmt.Fprintln(stdin, "open")
	opened, err := await("opened")
	if err != nil {
		return err
	}
	fmt.Printf("opened %d streams in %.1f s: %d answered 200 with a first event, %d refused with 503, %d failed otherwise\n",
		streams, opened.Seconds, opened.Count, opened.Refused, opened.Failed)
	fmt.Printf("one more stream beyond them: status %d\n", opened.OneMore)
	if opened.FirstError != "" {
		fmt.Printf("first failure: %s\n", opened.FirstError)
	}
	time.Sleep(settle)
	with := read()
	show(fmt.Sprintf("with %d streams open, %s later", opened.Count, settle), with, before, opened.Count)

	fmt.Fprintln(stdin, "close")
	if _, err := await("closed"); err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // the handlers see the closed connections and return
	show("after the streams closed", read(), before, 0)
	if opened.Refused > 0 || opened.Failed > 0 || opened.Count != streams {
		return fmt.Errorf("%d of %d streams opened", opened.Count, streams)
	}
	if streams >= siteBound && opened.OneMore != http.StatusServiceUnavailable {
		return fmt.Errorf("stream %d answered %d, want 503: is the site's bound still %d?", streams+1, opened.OneMore, siteBound)
	}
	return nil
}

func show(label string, r, base reading, n int) {
	mb := func(v uint64) string { return fmt.Sprintf("%7.1f MB", float64(v)/1e6) }
	fmt.Printf("%s:\n", label)
	fmt.Printf("  heap in use %s, goroutine stacks %s, goroutines %d\n", mb(r.HeapInuse), mb(r.StackInuse), r.Goroutines)
	fmt.Printf("  RSS %s (anonymous %s), after returning free memory %s\n", mb(r.RSS), mb(r.RSSAnon), mb(r.RSSReturned))
	if n > 0 {
		per := func(a, b uint64) string { return fmt.Sprintf("%6.0f B", (float64(a)-float64(b))/float64(n)) }
		fmt.Printf("  per stream: heap %s, stacks %s, heap + stacks %s; RSS %s, after returning %s\n",
			per(r.HeapInuse, base.HeapInuse), per(r.StackInuse, base.StackInuse),
			per(r.HeapInuse+r.StackInuse, base.HeapInuse+base.StackInuse), per(r.RSS, base.RSS), per(r.RSSReturned, base.RSSReturned))
	}
}

func caddyfile(port int, store, secret string) string {
	return fmt.Sprintf(`{
	admin off
	persist_config off
	auto_https off
	log {
		level ERROR
	}
	checkout {
		storage bolt %s
	}
}
http://:%d {
	bind 127.0.0.1
	checkout {
		secret %s
		intake api
		sandbox
	}
	respond "not a checkout route" 404
}
`, store, port, secret)
}

// report is a line the load generator prints on stdout after a step.
type report struct {
	Step       string  `json:"step"`
	Count      int     `json:"count"`
	Refused    int     `json:"refused,omitempty"`
	Failed     int     `json:"failed,omitempty"`
	Seconds    float64 `json:"seconds"`
	OneMore    int     `json:"one_more,omitempty"` // the status of a stream opened beyond them
	FirstError string  `json:"first_error,omitempty"`
	Error      string  `json:"error,omitempty"`
}

// loadgen is the child: it creates the orders, then opens a stream per
// order when told "open" on stdin and closes them when told "close". The
// streams are raw connections that nobody reads after the first event: no
// goroutine per stream here either.
func loadgen(addr, secret string, n, workers int) error {
	if err := benchkit.CheckLoopback(addr); err != nil {
		return err
	}
	out := json.NewEncoder(os.Stdout)
	start := time.Now()
	refs, err := createOrders(addr, secret, n, workers)
	if err != nil {
		return out.Encode(report{Step: "created", Error: err.Error()})
	}
	if err := out.Encode(report{Step: "created", Count: n, Seconds: time.Since(start).Seconds()}); err != nil {
		return err
	}
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() || in.Text() != "open" {
		return errors.New("no open command")
	}
	start = time.Now()
	conns := make([]net.Conn, n)
	var refused, failed atomic.Int64
	var firstErr atomic.Pointer[string]
	forEach(n, workers, func(i int) {
		c, status, err := openStream(addr, refs[i])
		switch {
		case err != nil:
			failed.Add(1)
			msg := err.Error()
			firstErr.CompareAndSwap(nil, &msg)
		case status == http.StatusServiceUnavailable:
			refused.Add(1)
		case status != http.StatusOK:
			failed.Add(1)
			msg := "status " + strconv.Itoa(status)
			firstErr.CompareAndSwap(nil, &msg)
		}
		conns[i] = c
	})
	r := report{Step: "opened", Refused: int(refused.Load()), Failed: int(failed.Load()), Seconds: time.Since(start).Seconds()}
	r.Count = n - r.Refused - r.Failed
	// One more page, of a payment with one open: the site's bound, when
	// n is it, refuses it.
	if c, status, err := openStream(addr, refs[0]); err == nil {
		r.OneMore = status
		if c != nil {
			c.Close()
		}
	}
	if p := firstErr.Load(); p != nil {
		r.FirstError = *p
	}
	if err := out.Encode(r); err != nil {
		return err
	}
	if !in.Scan() || in.Text() != "close" {
		return errors.New("no close command")
	}
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	return out.Encode(report{Step: "closed"})
}

// forEach runs fn(0) to fn(n-1) on workers goroutines.
func forEach(n, workers int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				fn(i)
			}
		})
	}
	wg.Wait()
}

// createOrders creates n orders through the server API and returns the
// reference of each one's attempt, which its pay_url ends with.
func createOrders(addr, secret string, n, workers int) ([]string, error) {
	client := &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	refs := make([]string, n)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	var failed atomic.Pointer[error]
	forEach(n, workers, func(i int) {
		if failed.Load() != nil {
			return
		}
		body := fmt.Sprintf(`{"order_id":"live-%s-%d","amount":"12.50","currency":"USD","description":"Gopher T-shirt"}`, run, i)
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/_checkout/api/orders", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err == nil {
			var res struct {
				PayURL string `json:"pay_url"`
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			err = json.Unmarshal(b, &res)
			_, ref, ok := strings.Cut(res.PayURL, "/_checkout/pay/")
			if resp.StatusCode != http.StatusCreated || err != nil || !ok || ref == "" {
				err = fmt.Errorf("creating order %d: status %d, %q", i, resp.StatusCode, b)
			}
			refs[i] = ref
		}
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
	})
	if p := failed.Load(); p != nil {
		return nil, *p
	}
	return refs, nil
}

// openStream opens a live page's event stream and reads its answer's
// status, and for a 200 the headers and the first event.
func openStream(addr, ref string) (net.Conn, int, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, 0, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "GET /_checkout/events/%s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", ref, addr)
	var got []byte
	buf := make([]byte, 2048)
	for !bytes.Contains(got, []byte("\r\n\r\n")) || bytes.HasPrefix(got, []byte("HTTP/1.1 200")) && !bytes.Contains(got, []byte("event: status\ndata:")) {
		k, err := c.Read(buf)
		if err != nil {
			c.Close()
			return nil, 0, fmt.Errorf("stream of %s: %v after %q", ref, err, got)
		}
		got = append(got, buf[:k]...)
	}
	_ = c.SetDeadline(time.Time{})
	status, _ := strconv.Atoi(string(got[len("HTTP/1.1 "):min(len(got), len("HTTP/1.1 200"))]))
	if status != http.StatusOK {
		c.Close()
		return nil, status, nil
	}
	return c, status, nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "livepages:", err)
	os.Exit(1)
}
