// Package pgtest runs a real PostgreSQL server for tests: Debian's
// postgresql package, initialised in a fresh data directory and listening
// on 127.0.0.1 on a free port (and on a unix socket in its data directory),
// with SCRAM password logins for the superuser "checkout" and PostgreSQL's
// default durability (fsync and synchronous_commit on), so that the store's
// tests and benchmarks meet the server merchants run, at its real speed.
//
// Shared gives all the tests of a test binary one server, from which each
// test takes its own database (NewDatabase). A test that stops, restarts or
// crashes the server takes a private one from Start.
//
// scripts/test.sh installs PostgreSQL; a test that needs it fails under
// CI=true when it is missing and skips elsewhere.
//
// PostgreSQL refuses to run as root, so as root (as the tests run here and
// in CI) the server runs as the postgres system user that Debian's package
// creates. The kernel kills the server when the test binary exits, however
// it exits, and a watching process then removes its data directory.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Superuser is the role every DSN logs in as.
const Superuser = "checkout"

// Server is a running PostgreSQL, or one stopped or killed by its test.
// NewDatabase, DSN, Password and Logs are safe for concurrent use; Stop,
// Restart and Kill belong to the one test that owns a private server.
type Server struct {
	port     int
	password string
	dir      string // the pgtest-* directory: data/, postgres.log, owner
	bin      string // the directory of initdb and postgres
	runAs    *account
	shared   bool
	dbs      atomic.Int64
	logFile  *os.File
	reaper   *os.File // closing it removes dir, see reapAtExit

	mu     sync.Mutex
	proc   *os.Process     // the postmaster, nil when stopped
	exited <-chan struct{} // closed when proc has exited
}

var shared struct {
	once sync.Once
	s    *Server
	err  error
}

// Shared returns the server shared by the tests of this test binary,
// started by the first call. It runs until the test binary exits. Tests
// must not stop it: they take their own database with NewDatabase, and a
// private server from Start to stop or crash.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.once.Do(func() {
		shared.s, shared.err = newServer(true)
	})
	if shared.err != nil {
		fail(t, shared.err)
	}
	return shared.s
}

// Start starts a private server for a test that stops, restarts or kills
// it; it is shut down and its data removed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := newServer(false)
	if err != nil {
		fail(t, err)
	}
	t.Cleanup(s.destroy)
	return s
}

// fail ends a test whose server could not start: a skip when PostgreSQL is
// not installed, unless CI=true, where a skipped store test would hide that
// the store went untested.
func fail(t testing.TB, err error) {
	t.Helper()
	var u *unavailableError
	if errors.As(err, &u) && os.Getenv("CI") != "true" {
		t.Skipf("pgtest: %v (set CI=true to make this a failure)", err)
	}
	t.Fatalf("pgtest: %v", err)
}

// NewDatabase creates an empty database with a name no other test of the
// server has and returns its DSN. On the shared server it is dropped when
// the test ends, closing the connections the test left open; a private
// server's databases go with the server.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := databaseName(t.Name(), s.dbs.Add(1))
	if err := s.admin("CREATE DATABASE " + pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: creating database %s: %v\n%s", name, err, s.logTail(4<<10))
	}
	if s.shared {
		t.Cleanup(func() {
			if err := s.admin("DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)"); err != nil {
				t.Errorf("pgtest: dropping database %s: %v", name, err)
			}
		})
	}
	return s.DSN(name)
}

// DSN is the URL that logs in to database as the superuser over TCP.
func (s *Server) DSN(database string) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable",
		Superuser, s.password, s.port, url.PathEscape(database))
}

// Password is the superuser's password.
func (s *Server) Password() string { return s.password }

// Logs is the tail of the server's log (initdb's output and every run of
// the server since), for the message of a failing test.
func (s *Server) Logs() string { return s.logTail(1 << 20) }

// Stop shuts the server down as an operator does (a fast shutdown: open
// transactions are rolled back, sessions ended, committed data kept) and
// waits until it has exited; connecting then fails until Restart.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.mustBePrivate(t, "Stop")
	if err := s.stop(os.Interrupt, 30*time.Second); err != nil {
		t.Fatalf("pgtest: stopping the server: %v\n%s", err, s.logTail(4<<10))
	}
}

// Kill crashes the server: the postmaster gets SIGKILL, as from the kernel's
// out-of-memory killer, and its sessions end with it. Restart then recovers
// the committed data from the write-ahead log.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.mustBePrivate(t, "Kill")
	if err := s.stop(os.Kill, 30*time.Second); err != nil {
		t.Fatalf("pgtest: killing the server: %v", err)
	}
}

// Restart starts the server again, on the same port and data, and waits
// until it accepts connections; a running server is stopped first.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.mustBePrivate(t, "Restart")
	if err := s.stop(os.Interrupt, 30*time.Second); err != nil {
		t.Fatalf("pgtest: stopping the server: %v\n%s", err, s.logTail(4<<10))
	}
	if err := s.start(false); err != nil {
		t.Fatalf("pgtest: restarting the server: %v", err)
	}
}

func (s *Server) mustBePrivate(t testing.TB, what string) {
	t.Helper()
	if s.shared {
		t.Fatalf("pgtest: %s on the shared server would break the other tests; take a private server from Start", what)
	}
}

// admin runs one statement in the maintenance database.
func (s *Server) admin(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// databaseName makes a database name from the test's name, for whoever
// reads the server's log, and a number that makes it unique in the server.
func databaseName(test string, n int64) string {
	var b strings.Builder
	b.WriteString("t_")
	for _, r := range strings.ToLower(test) {
		if b.Len() >= 40 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else if !strings.HasSuffix(b.String(), "_") {
			b.WriteByte('_')
		}
	}
	return fmt.Sprintf("%s_%d", strings.TrimSuffix(b.String(), "_"), n)
}
