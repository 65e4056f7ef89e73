// Running the PostgreSQL server: initdb, the postmaster's start and
// readiness, its shutdowns.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// startTimeout bounds a start or restart, crash recovery included.
const startTimeout = 30 * time.Second

// unavailableError says why this machine cannot run the server: a test
// skips on it unless CI=true.
type unavailableError struct{ why string }

func (e *unavailableError) Error() string { return e.why }

// account is the system user the server runs as.
type account struct{ uid, gid uint32 }

// newServer makes a data directory and starts a server in it.
func newServer(shared bool) (*Server, error) {
	if !supported {
		return nil, &unavailableError{"pgtest runs PostgreSQL on Linux only"}
	}
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	runAs, err := serverAccount()
	if err != nil {
		return nil, err
	}
	sweep()
	dir, err := makeDir(runAs)
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, bin: bin, runAs: runAs, shared: shared, password: randomPassword()}
	if s.reaper, err = reapAtExit(dir); err != nil {
		s.destroy()
		return nil, err
	}
	if s.logFile, err = os.OpenFile(s.logPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
		s.destroy()
		return nil, err
	}
	if err := s.initdb(); err != nil {
		s.destroy()
		return nil, err
	}
	// Another process may take the free port before the postmaster binds
	// it; a few new ports settle that race.
	for attempt := 1; ; attempt++ {
		if s.port, err = freePort(); err != nil {
			s.destroy()
			return nil, err
		}
		err = s.start(attempt < 5)
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	if err != nil {
		s.destroy()
		return nil, err
	}
	return s, nil
}

// binDir is the bin directory of the newest PostgreSQL that Debian's
// packages installed, /usr/lib/postgresql/<version>/bin (not on PATH).
func binDir() (string, error) {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	best, bestVersion := "", []int(nil)
	for _, postgres := range found {
		dir := filepath.Dir(postgres)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err != nil {
			continue
		}
		v := version(filepath.Base(filepath.Dir(dir)))
		if best == "" || newer(v, bestVersion) {
			best, bestVersion = dir, v
		}
	}
	if best == "" {
		return "", &unavailableError{"PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres and initdb): " +
			"install Debian's package postgresql (scripts/test.sh does)"}
	}
	return best, nil
}

// version parses "15" or "9.6".
func version(s string) []int {
	var v []int
	for _, part := range strings.Split(s, ".") {
		n, _ := strconv.Atoi(part)
		v = append(v, n)
	}
	return v
}

func newer(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return len(a) > len(b)
}

// serverAccount is the postgres system user when we are root (initdb and
// postgres refuse to run as root), and nil, ourselves, otherwise.
func serverAccount() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, &unavailableError{"as root, PostgreSQL runs as the postgres system user, which does not exist (" +
			err.Error() + "): install Debian's package postgresql, which creates it (scripts/test.sh does)"}
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("the postgres user's uid %q or gid %q is not a number", u.Uid, u.Gid)
	}
	return &account{uid: uint32(uid), gid: uint32(gid)}, nil
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }

// initdb makes the cluster: the superuser with its password, SCRAM logins
// for every connection, UTF8 and the C locale. --no-sync only skips
// flushing initdb's own files to disk, which matters after a power cut,
// not to a test; the server itself runs with fsync on.
func (s *Server) initdb() error {
	pwfile := filepath.Join(s.dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.password+"\n"), 0o600); err != nil {
		return err
	}
	defer os.Remove(pwfile)
	if err := s.chown(pwfile); err != nil {
		return err
	}
	cmd := s.command("initdb", "-D", s.dataDir(), "-U", Superuser, "--pwfile="+pwfile,
		"--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync")
	exited, err := startForLife(cmd, s.runAs)
	if err != nil {
		return fmt.Errorf("starting %s: %v", cmd.Path, err)
	}
	<-exited
	if !cmd.ProcessState.Success() {
		return fmt.Errorf("%s: %v:\n%s", cmd.Path, cmd.ProcessState, s.logTail(8<<10))
	}
	return nil
}

// command is one of the server's programs, run in the server's directory
// with its output in the log.
func (s *Server) command(program string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, program), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Stdout, cmd.Stderr = s.logFile, s.logFile
	return cmd
}

func (s *Server) chown(path string) error {
	if s.runAs == nil {
		return nil
	}
	return os.Chown(path, int(s.runAs.uid), int(s.runAs.gid))
}

var errPortTaken = errors.New("the port was taken before postgres could bind it")

// start runs the postmaster on s.port and waits until it accepts
// connections. It retries while a killed server's sessions still hold its
// shared memory, and, unless newPortOnBusy, while the port is taken.
func (s *Server) start(newPortOnBusy bool) error {
	deadline := time.Now().Add(startTimeout)
	for {
		logStart := s.logSize()
		fmt.Fprintf(s.logFile, "pgtest: starting postgres on 127.0.0.1:%d\n", s.port)
		cmd := s.command("postgres", "-D", s.dataDir(),
			"-c", "listen_addresses=127.0.0.1",
			"-c", "port="+strconv.Itoa(s.port),
			"-c", "unix_socket_directories="+s.dataDir(),
			"-c", "max_connections=300",
			"-c", "shared_buffers=64MB",
			"-c", "logging_collector=off",
			"-c", "log_destination=stderr")
		exited, err := startForLife(cmd, s.runAs)
		if err != nil {
			return fmt.Errorf("starting %s: %v", cmd.Path, err)
		}
		s.mu.Lock()
		s.proc, s.exited = cmd.Process, exited
		s.mu.Unlock()
		err = s.waitReady(exited, deadline)
		if err == nil {
			return nil
		}
		s.stop(os.Kill, 10*time.Second)
		run := s.logSince(logStart)
		retry := false
		switch {
		case !errors.Is(err, errExited):
		case strings.Contains(run, "could not bind") || strings.Contains(run, "could not create any TCP/IP sockets"):
			if newPortOnBusy {
				return errPortTaken
			}
			retry = true
		case strings.Contains(run, "pre-existing shared memory block"):
			// The sessions of a killed postmaster exit by themselves, soon.
			retry = true
		}
		if !retry || time.Now().After(deadline) {
			return fmt.Errorf("%v:\n%s", err, tail(run, 8<<10))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var errExited = errors.New("postgres exited")

// waitReady connects until a connection succeeds, the postmaster exits or
// the deadline passes.
func (s *Server) waitReady(exited <-chan struct{}, deadline time.Time) error {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, s.DSN("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-exited:
			return errExited
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections on 127.0.0.1:%d within %v: %v", s.port, startTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends sig to the postmaster and waits until it exits, killing it
// after timeout. SIGINT is PostgreSQL's fast shutdown, SIGQUIT its
// immediate one; after SIGKILL its sessions end by themselves.
func (s *Server) stop(sig os.Signal, timeout time.Duration) error {
	s.mu.Lock()
	proc, exited := s.proc, s.exited
	s.proc = nil
	s.mu.Unlock()
	if proc == nil {
		return nil
	}
	proc.Signal(sig)
	select {
	case <-exited:
		return nil
	case <-time.After(timeout):
		proc.Kill()
		<-exited
		return fmt.Errorf("postgres did not exit within %v of %v, so it was killed", timeout, sig)
	}
}

// destroy shuts the server down at once and removes its directory.
func (s *Server) destroy() {
	s.stop(syscall.SIGQUIT, 10*time.Second)
	if s.logFile != nil {
		s.logFile.Close()
	}
	os.RemoveAll(s.dir)
	if s.reaper != nil {
		s.reaper.Close() // its work is done
	}
}

func (s *Server) logPath() string { return filepath.Join(s.dir, "postgres.log") }

func (s *Server) logSize() int64 {
	fi, err := os.Stat(s.logPath())
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logSince is the log from offset on.
func (s *Server) logSince(offset int64) string {
	f, err := os.Open(s.logPath())
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// logTail is at most the last n bytes of the log, from a line's start.
func (s *Server) logTail(n int64) string {
	offset := max(0, s.logSize()-n)
	log := s.logSince(offset)
	if offset == 0 {
		return log
	}
	return tail(log, len(log)-1)
}

// tail is at most the last n bytes of log, from a line's start.
func tail(log string, n int) string {
	if len(log) <= n {
		return log
	}
	log = log[len(log)-n:]
	if i := strings.IndexByte(log, '\n'); i >= 0 {
		log = log[i+1:]
	}
	return "…\n" + log
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
