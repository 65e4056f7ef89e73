// Package vouchertest is a fake of the Voucher-Safe command-line client's
// pickup (`java -jar voucher-cli.jar -x host:port -w -b key:value`), as
// seed 004 describes it: it logs in to the merchant safe (a file lock that
// a second login waits up to 30 s for, then fails), looks for an incoming
// payment whose baggage has key = value, takes it out of the safe and
// prints it as one line of JSON ({PAYER, AMOUNT, UNITS, ASSET, ISSUER,
// baggage...}), or prints NOT FOUND. The real CLI is a Java program that
// talks to the Voucher-Safe network; it cannot run here.
//
// The safe is a file of JSON lines, one incoming payment each, named by
// VOUCHERTEST_SAFE; VOUCHERTEST_LOCK_WAIT shortens the 30 s login wait;
// VOUCHERTEST_DELAY makes each pickup take longer (for timeouts);
// VOUCHERTEST_FAIL makes it print that error and exit 1. Every run is
// appended to the safe's ".runs" file (start and end times), so tests can
// see that pickups did not overlap.
package vouchertest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Payment is an incoming payment in the fake safe.
type Payment struct {
	Payer   string            `json:"PAYER"`
	Amount  json.Number       `json:"AMOUNT"`
	Units   string            `json:"UNITS"`
	Asset   string            `json:"ASSET"`
	Issuer  string            `json:"ISSUER"`
	Baggage map[string]string `json:"-"`
}

func (p Payment) line() ([]byte, error) {
	m := map[string]any{"PAYER": p.Payer, "AMOUNT": p.Amount, "UNITS": p.Units, "ASSET": p.Asset, "ISSUER": p.Issuer}
	for k, v := range p.Baggage {
		m[k] = v
	}
	return json.Marshal(m)
}

// Main is the fake CLI: it returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	var want string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-x", "-p", "-h":
			i++ // the gateway: the fake has none
		case "-w":
		case "-b":
			if i+1 < len(args) {
				want = args[i+1]
				i++
			}
		default:
			fmt.Fprintf(stderr, "unknown argument %q\n", args[i])
			return 2
		}
	}
	key, val, ok := strings.Cut(want, ":")
	if !ok || key == "" || val == "" {
		fmt.Fprintln(stderr, "usage: voucher-cli [-x host] [-p port] -w -b key:value")
		return 2
	}
	safe := os.Getenv("VOUCHERTEST_SAFE")
	if safe == "" {
		fmt.Fprintln(stdout, "ERROR: no safe (VOUCHERTEST_SAFE)")
		return 1
	}
	wait := 30 * time.Second
	if d, err := time.ParseDuration(os.Getenv("VOUCHERTEST_LOCK_WAIT")); err == nil {
		wait = d
	}
	unlock, err := login(safe, wait)
	if err != nil {
		fmt.Fprintln(stdout, "ERROR: "+err.Error())
		return 1
	}
	defer unlock()
	start := time.Now()
	if d, err := time.ParseDuration(os.Getenv("VOUCHERTEST_DELAY")); err == nil {
		time.Sleep(d)
	}
	if msg := os.Getenv("VOUCHERTEST_FAIL"); msg != "" {
		fmt.Fprintln(stdout, "ERROR: "+msg)
		return 1
	}
	line, err := takeOut(safe, key, val)
	if f, ferr := os.OpenFile(safe+".runs", os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); ferr == nil {
		fmt.Fprintf(f, "%d %d\n", start.UnixNano(), time.Now().UnixNano())
		f.Close()
	}
	switch {
	case err != nil:
		fmt.Fprintln(stdout, "ERROR: "+err.Error())
		return 1
	case line == nil:
		fmt.Fprintln(stdout, "Logged in.")
		fmt.Fprintln(stdout, "NOT FOUND")
	default:
		fmt.Fprintln(stdout, "Logged in.")
		fmt.Fprintln(stdout, string(line))
	}
	return 0
}

// login takes the safe's lock as the CLI's login semaphore does, waiting
// up to wait for another login to end. It is an flock, so a CLI that is
// killed lets go of it, as a process's locks go with it.
func login(safe string, wait time.Duration) (func(), error) {
	f, err := os.OpenFile(safe+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("the safe's login is locked by another session (waited %s)", wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// takeOut removes the first payment whose baggage has key = val from the
// safe file and returns its JSON line, or nil.
func takeOut(safe, key, val string) ([]byte, error) {
	data, err := os.ReadFile(safe)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var kept []string
	var found []byte
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		l := sc.Text()
		if l == "" {
			continue
		}
		var m map[string]any
		if found == nil && json.Unmarshal([]byte(l), &m) == nil && fmt.Sprint(m[key]) == val {
			found = []byte(l)
			continue
		}
		kept = append(kept, l)
	}
	if found == nil {
		return nil, nil
	}
	out := strings.Join(kept, "\n")
	if out != "" {
		out += "\n"
	}
	tmp := safe + ".tmp"
	if err := os.WriteFile(tmp, []byte(out), 0o600); err != nil {
		return nil, err
	}
	return found, os.Rename(tmp, safe)
}

// Safe is a fake merchant safe for a test.
type Safe struct {
	Path string
	t    testing.TB
	mu   sync.Mutex
}

// NewSafe makes an empty safe in the test's temporary directory.
func NewSafe(t testing.TB) *Safe {
	return &Safe{Path: filepath.Join(t.TempDir(), "safe.jsonl"), t: t}
}

// Receive puts an incoming payment in the safe, as a customer paying it.
func (s *Safe) Receive(p Payment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := p.line()
	if err != nil {
		s.t.Fatal(err)
	}
	f, err := os.OpenFile(s.Path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(append(l, '\n')); err != nil {
		s.t.Fatal(err)
	}
}

// Len is how many payments are still in the safe.
func (s *Safe) Len() int {
	data, _ := os.ReadFile(s.Path)
	return len(strings.Fields(string(data)))
}

// Runs are the [start, end] times of every pickup run so far.
func (s *Safe) Runs() [][2]time.Time {
	data, _ := os.ReadFile(s.Path + ".runs")
	var out [][2]time.Time
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var a, b int64
		if _, err := fmt.Sscanf(l, "%d %d", &a, &b); err == nil {
			out = append(out, [2]time.Time{time.Unix(0, a), time.Unix(0, b)})
		}
	}
	return out
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// CLI builds the fake CLI once per test binary and returns its path.
func CLI(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vouchertest")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "voucher-cli")
		cmd := exec.Command("go", "build", "-o", buildPath, "github.com/caddy-checkout/checkout/internal/vouchertest/voucher-cli")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building the fake voucher CLI: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}
