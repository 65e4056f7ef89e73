package benchkit

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-checkout/checkout"
)

// LoadCaddyfile adapts a Caddyfile and loads it into the Caddy of this
// process, replacing any config it runs. It returns when the new config's
// listeners are up and the old config is stopped.
func LoadCaddyfile(text string) error {
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		return fmt.Errorf("caddyfile adapter not registered")
	}
	cfg, warns, err := adapter.Adapt([]byte(text), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return fmt.Errorf("adapting Caddyfile: %w", err)
	}
	for _, w := range warns {
		fmt.Fprintf(os.Stderr, "caddyfile warning: %s:%d: %s\n", w.File, w.Line, w.Message)
	}
	return caddy.Load(cfg, true)
}

// StopCaddy stops the config this process runs.
func StopCaddy() error { return caddy.Stop() }

// Isolate points Caddy's data and config directories (and HOME) at dir,
// so that an in-process Caddy writes nothing outside it.
func Isolate(dir string) error {
	for k, sub := range map[string]string{"XDG_DATA_HOME": "data", "XDG_CONFIG_HOME": "config", "HOME": "home"} {
		p := filepath.Join(dir, sub)
		if err := os.MkdirAll(p, 0o700); err != nil {
			return err
		}
		if err := os.Setenv(k, p); err != nil {
			return err
		}
	}
	return nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Serve runs h on a new 127.0.0.1 listener and returns its address and a
// function that stops it.
func Serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// CPUProfile starts a CPU profile into path; the returned function stops
// it. An empty path profiles nothing.
func CPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// ProfileWindow returns a measure-window callback (start true, then
// false) that writes a CPU profile of the window to path; an empty path
// profiles nothing.
func ProfileWindow(path string) func(start bool) {
	var stop func()
	return func(start bool) {
		if start {
			var err error
			if stop, err = CPUProfile(path); err != nil {
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
}

// Setup prepares a load program's run: a hard deadline after which the
// process gives up (exit 2), and a temporary directory that Caddy's data
// and config are isolated in. cleanup removes the directory.
func Setup(name string, limit time.Duration) (dir string, cleanup func(), err error) {
	time.AfterFunc(limit, func() {
		fmt.Fprintf(os.Stderr, "%s: still running after %s; giving up\n", name, limit)
		os.Exit(2)
	})
	dir, err = os.MkdirTemp("", name+"-")
	if err != nil {
		return "", nil, err
	}
	if err := Isolate(dir); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}
