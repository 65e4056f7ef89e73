// Running stripe-mock, Stripe's official stateless mock, which checks each
// request against Stripe's OpenAPI spec (see WithMock).
package stripetest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// mockStartTimeout covers the first `go tool` run, which compiles
// stripe-mock.
const mockStartTimeout = 60 * time.Second

var listeningLine = regexp.MustCompile(`^Listening for HTTP at address: (\S+)$`)

// StartMock runs the stripe-mock pinned in go.mod (`go tool stripe-mock`) on
// a loopback port and returns its base URL. When it cannot start, the test is
// skipped, or fails when the environment variable CI is "true", since CI must
// not lose the spec check silently.
//
// Where the process can be tied to the test binary's life (Linux), one
// stripe-mock serves the whole test binary; elsewhere each test gets its own,
// stopped when the test ends.
func StartMock(tb testing.TB) string {
	tb.Helper()
	var (
		url string
		err error
	)
	if sharedMockSupported {
		sharedMock.once.Do(func() {
			// The stop function is kept but never called: the kernel ends
			// this stripe-mock with the test binary.
			sharedMock.url, sharedMock.stop, sharedMock.err = startMock(context.Background(), true)
		})
		url, err = sharedMock.url, sharedMock.err
	} else {
		var stop func()
		url, stop, err = startMock(context.Background(), false)
		if err == nil {
			tb.Cleanup(stop)
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("stripetest: starting stripe-mock: %v", err)
		}
		tb.Skipf("stripetest: stripe-mock unavailable, skipping (set CI=true to make this a failure): %v", err)
	}
	return url
}

var sharedMock struct {
	once sync.Once
	url  string
	stop func()
	err  error
}

// startMock starts stripe-mock and returns its URL and a function that stops
// it. With forLife, the kernel also stops it when the test binary exits.
//
// `go tool -n stripe-mock` compiles the pinned tool exactly as `go tool`
// does and prints the cached binary's path; running that binary directly,
// rather than under the go command, makes the process we signal stripe-mock
// itself, so stopping it cannot leave an orphaned grandchild listening.
func startMock(ctx context.Context, forLife bool) (url string, stop func(), err error) {
	root, err := moduleRoot()
	if err != nil {
		return "", nil, err
	}
	buildCtx, cancelBuild := context.WithTimeout(ctx, mockStartTimeout)
	defer cancelBuild()
	var stderr bytes.Buffer
	locate := exec.CommandContext(buildCtx, "go", "tool", "-n", "stripe-mock")
	locate.Dir = root
	locate.Stderr = &stderr
	out, err := locate.Output()
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			err = fmt.Errorf("%v: %s", err, msg)
		}
		return "", nil, fmt.Errorf("go tool -n stripe-mock in %s: %v", root, err)
	}
	bin := strings.TrimSpace(string(out))
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		return "", nil, fmt.Errorf("go tool -n stripe-mock printed %q, which is not an executable", bin)
	}

	procCtx, kill := context.WithCancel(ctx)
	cmd := exec.CommandContext(procCtx, bin, "-http-addr", "127.0.0.1:", "-https-addr", "127.0.0.1:")
	cmd.Dir = root
	cmd.Stderr = &lockedBuffer{}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		kill()
		return "", nil, err
	}
	started := make(chan error, 1)
	exited := make(chan struct{})
	if forLife {
		startForLife(cmd, started, exited)
	} else {
		started <- cmd.Start()
		go func() {
			cmd.Wait()
			close(exited)
		}()
	}
	if err := <-started; err != nil {
		kill()
		return "", nil, fmt.Errorf("starting %s: %v", bin, err)
	}
	stop = func() {
		kill()
		<-exited
	}

	// found receives the HTTP address, or "" when stripe-mock's output ends
	// without one (it exited).
	found := make(chan string, 1)
	var seen lockedBuffer
	go func() {
		sc := bufio.NewScanner(stdout)
		addr := ""
		for addr == "" && sc.Scan() {
			if m := listeningLine.FindStringSubmatch(sc.Text()); m != nil {
				addr = m[1]
			} else {
				fmt.Fprintln(&seen, sc.Text())
			}
		}
		found <- addr
		// stripe-mock logs every request to stdout; keep draining it so a
		// full pipe never blocks it.
		io.Copy(io.Discard, stdout)
	}()
	fail := func(why string) (string, func(), error) {
		stop()
		return "", nil, fmt.Errorf("stripe-mock %s; stdout: %q; stderr: %q",
			why, seen.String(), cmd.Stderr.(*lockedBuffer).String())
	}
	select {
	case addr := <-found:
		if addr == "" {
			return fail("exited without reporting its HTTP address")
		}
		return "http://" + addr, stop, nil
	case <-time.After(mockStartTimeout):
		return fail(fmt.Sprintf("did not report its HTTP address within %v", mockStartTimeout))
	}
}

// moduleRoot finds the directory holding go.mod, walking up from the working
// directory (a package's directory under go test).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod found above the working directory")
		}
		dir = parent
	}
}

// lockedBuffer is a bytes.Buffer safe to write from one goroutine and read
// from another.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
