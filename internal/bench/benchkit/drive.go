package benchkit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Target is what a driver sends requests to.
type Target struct {
	Addr string // host:port, loopback only
	Host string // Host header; default Addr
	// Path gives the path of request n (n counts from 0 across the run,
	// warmup included).
	Path func(n int64) string
	// Check says whether a response is the expected one; nil accepts 2xx.
	Check func(Response) error
	// Timeout bounds one request (write and read). Default 10s.
	Timeout time.Duration
	// Extra header lines for every request (see Conn.Extra).
	Extra string
}

func (t *Target) defaults() error {
	if err := CheckLoopback(t.Addr); err != nil {
		return err
	}
	if t.Host == "" {
		t.Host = t.Addr
	}
	if t.Path == nil {
		t.Path = func(int64) string { return "/" }
	}
	if t.Check == nil {
		t.Check = func(r Response) error {
			if r.Status < 200 || r.Status > 299 {
				return fmt.Errorf("status %d", r.Status)
			}
			return nil
		}
	}
	if t.Timeout <= 0 {
		t.Timeout = 10 * time.Second
	}
	return nil
}

func dialAll(addr, extra string, n int) ([]*Conn, error) {
	conns := make([]*Conn, 0, n)
	for range n {
		c, err := Dial(addr)
		if c != nil {
			c.Extra = extra
		}
		if err != nil {
			for _, c := range conns {
				_ = c.Close()
			}
			return nil, err
		}
		conns = append(conns, c)
	}
	return conns, nil
}

// ClosedResult is the outcome of a closed-loop run.
type ClosedResult struct {
	Requests   int64   `json:"requests"` // completed without error inside the measured window
	Total      int64   `json:"total"`    // completed without error, warmup included
	Errors     int64   `json:"errors"`   // during the whole run, warmup included
	Seconds    float64 `json:"seconds"`  // length of the measured window
	RPS        float64 `json:"rps"`
	FirstError string  `json:"first_error,omitempty"`
}

// Closed drives t with conns keep-alive connections, each sending its next
// request as soon as the last one is answered: warmup first (not counted),
// then dur measured. onMeasure, if not nil, is called when the measured
// window starts (start=true) and ends. The run ends at the end of the
// window or after maxReq requests, whichever comes first.
func Closed(t Target, conns int, warmup, dur time.Duration, maxReq int64, onMeasure func(start bool)) (ClosedResult, error) {
	var res ClosedResult
	if err := t.defaults(); err != nil {
		return res, err
	}
	cs, err := dialAll(t.Addr, t.Extra, conns)
	if err != nil {
		return res, err
	}
	defer func() {
		for _, c := range cs {
			_ = c.Close()
		}
	}()
	begin := time.Now()
	mStart := begin.Add(warmup)
	mEnd := mStart.Add(dur)
	var (
		seq      atomic.Int64
		counted  atomic.Int64
		total    atomic.Int64
		errs     atomic.Int64
		firstErr atomic.Pointer[string]
		wg       sync.WaitGroup
	)
	for _, c := range cs {
		wg.Go(func() {
			var local, all int64
			for {
				n := seq.Add(1) - 1
				if n >= maxReq {
					break
				}
				now := time.Now()
				if !now.Before(mEnd) {
					break
				}
				r, err := c.GET(t.Host, t.Path(n), t.Timeout)
				if err == nil {
					err = t.Check(r)
				}
				done := time.Now()
				if err != nil {
					errs.Add(1)
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
					continue
				}
				all++
				if !done.Before(mStart) && done.Before(mEnd) {
					local++
				}
			}
			counted.Add(local)
			total.Add(all)
		})
	}
	if onMeasure != nil {
		time.Sleep(time.Until(mStart))
		onMeasure(true)
		time.Sleep(time.Until(mEnd))
		onMeasure(false)
	}
	wg.Wait()
	res.Requests = counted.Load()
	res.Total = total.Load()
	res.Errors = errs.Load()
	res.Seconds = dur.Seconds()
	if seq.Load() >= maxReq {
		// Stopped by the request bound: the window was cut short.
		res.Seconds = time.Since(mStart).Seconds()
	}
	res.RPS = float64(res.Requests) / res.Seconds
	if p := firstErr.Load(); p != nil {
		res.FirstError = *p
	}
	return res, nil
}

// Percentiles of a latency sample, in milliseconds.
type Percentiles struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
}

// Summarize sorts d and takes its percentiles (nearest rank).
func Summarize(d []time.Duration) Percentiles {
	p := Percentiles{N: len(d)}
	if len(d) == 0 {
		return p
	}
	slices.Sort(d)
	ms := func(x time.Duration) float64 { return float64(x) / float64(time.Millisecond) }
	q := func(f float64) float64 {
		i := int(f*float64(len(d))+0.5) - 1
		i = min(max(i, 0), len(d)-1)
		return ms(d[i])
	}
	p.P50, p.P90, p.P99, p.P999, p.Max = q(0.50), q(0.90), q(0.99), q(0.999), ms(d[len(d)-1])
	return p
}

// OpenResult is the outcome of a fixed-rate (open-loop) run. Latency is
// counted from the moment the request was due by the schedule, not from
// when a connection got round to sending it, so a server that falls
// behind is charged for the queue it causes (no coordinated omission).
type OpenResult struct {
	Rate         float64     `json:"rate"`      // offered requests/s
	Scheduled    int64       `json:"scheduled"` // due inside the measured window
	OK           int64       `json:"ok"`        // of those, answered as expected
	Errors       int64       `json:"errors"`    // of those, failed or unexpected
	Seconds      float64     `json:"seconds"`
	AchievedRate float64     `json:"achieved_rate"` // OK / time from window start to the last of them answered
	Latency      Percentiles `json:"latency"`       // due → answered
	Service      Percentiles `json:"service"`       // sent → answered
	MaxLate      float64     `json:"max_dispatch_late_ms"`
	FirstError   string      `json:"first_error,omitempty"`
}

type ticket struct {
	n   int64
	due time.Time
}

// Open sends requests to t at a fixed rate for warmup+dur over up to
// conns keep-alive connections; only requests due inside the measured
// window (after warmup) are counted. At most maxReq requests are sent.
// onMeasure, if not nil, is called when the measured window starts and
// ends. After the schedule ends the run waits at most drain for answers.
func Open(t Target, rate float64, conns int, warmup, dur time.Duration, maxReq int64, drain time.Duration, onMeasure func(start bool)) (OpenResult, error) {
	res := OpenResult{Rate: rate, Seconds: dur.Seconds()}
	if err := t.defaults(); err != nil {
		return res, err
	}
	if rate <= 0 {
		return res, errors.New("rate must be positive")
	}
	total := min(int64(rate*(warmup+dur).Seconds()), maxReq)
	cs, err := dialAll(t.Addr, t.Extra, conns)
	if err != nil {
		return res, err
	}
	defer func() {
		for _, c := range cs {
			_ = c.Close()
		}
	}()
	tickets := make(chan ticket, 1<<16)
	type sample struct{ lat, svc time.Duration }
	var (
		mu       sync.Mutex
		samples  = make([]sample, 0, int(rate*dur.Seconds())+16)
		errs     atomic.Int64
		firstErr atomic.Pointer[string]
		lastDone atomic.Int64
		wg       sync.WaitGroup
		stop     = make(chan struct{})
	)
	begin := time.Now().Add(50 * time.Millisecond)
	mStart := begin.Add(warmup)
	mEnd := mStart.Add(dur)
	for _, c := range cs {
		wg.Go(func() {
			local := make([]sample, 0, 1024)
			for tk := range tickets {
				select {
				case <-stop:
					continue // drain deadline passed: drop the rest
				default:
				}
				sent := time.Now()
				r, err := c.GET(t.Host, t.Path(tk.n), t.Timeout)
				if err == nil {
					err = t.Check(r)
				}
				done := time.Now()
				measured := !tk.due.Before(mStart) && tk.due.Before(mEnd)
				if !measured {
					continue
				}
				if err != nil {
					errs.Add(1)
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
					continue
				}
				local = append(local, sample{done.Sub(tk.due), done.Sub(sent)})
				for {
					old := lastDone.Load()
					if done.UnixNano() <= old || lastDone.CompareAndSwap(old, done.UnixNano()) {
						break
					}
				}
			}
			mu.Lock()
			samples = append(samples, local...)
			mu.Unlock()
		})
	}
	var maxLate time.Duration
	var measureOn bool
	for i := range total {
		due := begin.Add(time.Duration(float64(i) * float64(time.Second) / rate))
		if onMeasure != nil && !measureOn && !due.Before(mStart) {
			measureOn = true
			onMeasure(true)
		}
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		} else if -d > maxLate {
			maxLate = -d
		}
		if !due.Before(mStart) && due.Before(mEnd) {
			res.Scheduled++
		}
		tickets <- ticket{i, due}
	}
	close(tickets)
	if onMeasure != nil && measureOn {
		time.Sleep(time.Until(mEnd))
		onMeasure(false)
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(drain):
		close(stop)
		// Requests in flight end by their own timeout.
		<-finished
	}
	res.Errors = errs.Load()
	res.OK = int64(len(samples))
	if missing := res.Scheduled - res.OK - res.Errors; missing > 0 {
		res.Errors += missing // dropped at the drain deadline
		if firstErr.Load() == nil {
			msg := fmt.Sprintf("%d requests still queued at the drain deadline", missing)
			firstErr.Store(&msg)
		}
	}
	if last := lastDone.Load(); last > 0 {
		res.AchievedRate = float64(res.OK) / time.Unix(0, last).Sub(mStart).Seconds()
	}
	lat := make([]time.Duration, len(samples))
	svc := make([]time.Duration, len(samples))
	for i, s := range samples {
		lat[i], svc[i] = s.lat, s.svc
	}
	res.Latency, res.Service = Summarize(lat), Summarize(svc)
	res.MaxLate = float64(maxLate) / float64(time.Millisecond)
	if p := firstErr.Load(); p != nil {
		res.FirstError = *p
	}
	return res, nil
}

// RunChild runs this same executable with args (a load generator in a
// process of its own) and decodes the last line it prints on stdout as
// JSON into out. Its stderr goes to ours. The child is killed when ctx
// ends.
func RunChild(ctx context.Context, args []string, out any) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	if ChildCPUs != "" {
		taskset, err := exec.LookPath("taskset")
		if err != nil {
			return fmt.Errorf("pinning the load generator: %w", err)
		}
		cmd = exec.CommandContext(ctx, taskset, append([]string{"-c", ChildCPUs, exe}, args...)...)
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("load generator process: %w", err)
	}
	lines := bytes.Split(bytes.TrimSpace(stdout.Bytes()), []byte("\n"))
	return json.Unmarshal(lines[len(lines)-1], out)
}

// ChildCPUs, when set (such as "1"), pins RunChild's process to those
// CPUs with taskset.
var ChildCPUs string

// PinSelf makes this process run on cpus only (such as "0"): it execs
// itself again under taskset, once, so that every thread of the Go runtime
// inherits the affinity (and GOMAXPROCS follows it). It returns only on
// failure or when already pinned.
func PinSelf(cpus string) error {
	const marker = "BENCHKIT_PINNED"
	if os.Getenv(marker) == cpus {
		return nil
	}
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		return fmt.Errorf("pinning: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	env := append(os.Environ(), marker+"="+cpus)
	return syscall.Exec(taskset, append([]string{"taskset", "-c", cpus, exe}, os.Args[1:]...), env)
}

// PrintJSON prints v as one line of JSON on stdout (the child side of
// RunChild).
func PrintJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(os.Stdout, string(b))
	return err
}

// BrowserHeaders are request header lines like those of a desktop browser
// over HTTP/1.1 (with the User-Agent and Accept that Conn always sends,
// eight headers, Connection: keep-alive among them).
const BrowserHeaders = "Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Cookie: session=0123456789abcdef; cart=c-1\r\n" +
	"Referer: http://127.0.0.1/\r\n" +
	"Connection: keep-alive\r\n" +
	"Upgrade-Insecure-Requests: 1\r\n"
