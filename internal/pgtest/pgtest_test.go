package pgtest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/caddy-checkout/checkout/internal/pgtest"
)

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func exec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// ids is the ids in table orders, in order.
func ids(t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	rows, _ := conn.Query(context.Background(), "SELECT id FROM orders ORDER BY id")
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("reading orders: %v", err)
	}
	return got
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

func TestSharedServerDatabasesAreIsolated(t *testing.T) {
	s := pgtest.Shared(t)
	a, b := connect(t, s.NewDatabase(t)), connect(t, s.NewDatabase(t))
	exec(t, a, "CREATE TABLE orders (id text PRIMARY KEY)")
	exec(t, a, "INSERT INTO orders VALUES ('in-a')")

	_, err := b.Exec(context.Background(), "SELECT id FROM orders")
	if sqlState(err) != "42P01" { // undefined_table
		t.Fatalf("database b sees a's table: %v", err)
	}
	exec(t, b, "CREATE TABLE orders (id text PRIMARY KEY)")
	exec(t, b, "INSERT INTO orders VALUES ('in-b')")
	if got := ids(t, a); len(got) != 1 || got[0] != "in-a" {
		t.Errorf("database a holds %q, want [in-a]", got)
	}
	if got := ids(t, b); len(got) != 1 || got[0] != "in-b" {
		t.Errorf("database b holds %q, want [in-b]", got)
	}
}

// A benchmark on the server measures what a merchant's server does: the
// durability settings are PostgreSQL's defaults.
func TestSharedServerSettings(t *testing.T) {
	s := pgtest.Shared(t)
	conn := connect(t, s.NewDatabase(t))
	for setting, want := range map[string]string{
		"fsync":               "on",
		"synchronous_commit":  "on",
		"full_page_writes":    "on",
		"server_encoding":     "UTF8",
		"lc_collate":          "C",
		"password_encryption": "scram-sha-256",
		"max_connections":     "300",
	} {
		var got string
		if err := conn.QueryRow(context.Background(), "SELECT current_setting($1)", setting).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s = %s, want %s", setting, got, want)
		}
	}
	var user string
	if err := conn.QueryRow(context.Background(), "SELECT current_user").Scan(&user); err != nil || user != pgtest.Superuser {
		t.Errorf("logged in as %q (%v), want %s", user, err, pgtest.Superuser)
	}
}

func TestSharedServerNeedsThePassword(t *testing.T) {
	s := pgtest.Shared(t)
	dsn := s.NewDatabase(t)
	wrong := strings.Replace(dsn, ":"+s.Password()+"@", ":not-the-password@", 1)
	if wrong == dsn {
		t.Fatalf("the DSN %s lacks the password", dsn)
	}
	conn, err := pgx.Connect(context.Background(), wrong)
	if err == nil {
		conn.Close(context.Background())
		t.Fatal("connected with a wrong password")
	}
	if sqlState(err) != "28P01" { // invalid_password
		t.Errorf("a wrong password gave %v, want invalid_password", err)
	}
}

func TestNewDatabaseIsDroppedWhenTheTestEnds(t *testing.T) {
	s := pgtest.Shared(t)
	var dsn string
	t.Run("user", func(t *testing.T) {
		dsn = s.NewDatabase(t)
		connect(t, dsn) // left open: the drop closes it
	})
	conn, err := pgx.Connect(context.Background(), dsn)
	if err == nil {
		conn.Close(context.Background())
		t.Fatal("the database outlived its test")
	}
	if sqlState(err) != "3D000" { // invalid_catalog_name
		t.Errorf("connecting to the dropped database gave %v, want invalid_catalog_name", err)
	}
}

func TestStopRefusesConnectionsAndRestartKeepsTheData(t *testing.T) {
	t.Parallel()
	s := pgtest.Start(t)
	dsn := s.NewDatabase(t)
	conn := connect(t, dsn)
	exec(t, conn, "CREATE TABLE orders (id text PRIMARY KEY)")
	exec(t, conn, "INSERT INTO orders VALUES ('kept')")

	s.Stop(t)
	if err := conn.Ping(context.Background()); err == nil {
		t.Error("a session survived the stop")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := pgx.Connect(ctx, dsn); err == nil {
		c.Close(context.Background())
		t.Fatal("connected to a stopped server")
	}

	s.Restart(t)
	if got := ids(t, connect(t, dsn)); len(got) != 1 || got[0] != "kept" {
		t.Errorf("after the restart orders holds %q, want [kept]", got)
	}
}

func TestKillKeepsCommittedData(t *testing.T) {
	t.Parallel()
	s := pgtest.Start(t)
	dsn := s.NewDatabase(t)
	conn := connect(t, dsn)
	exec(t, conn, "CREATE TABLE orders (id text PRIMARY KEY)")
	for _, id := range []string{"o1", "o2", "o3"} {
		exec(t, conn, "INSERT INTO orders VALUES ($1)", id)
	}
	open := connect(t, dsn)
	exec(t, open, "BEGIN")
	exec(t, open, "INSERT INTO orders VALUES ('uncommitted')")

	s.Kill(t)
	s.Restart(t)
	if got := ids(t, connect(t, dsn)); strings.Join(got, ",") != "o1,o2,o3" {
		t.Errorf("after the crash orders holds %q, want [o1 o2 o3]", got)
	}
	// The restart recovered from a crash, not from a clean shutdown.
	if logs := s.Logs(); !strings.Contains(logs, "automatic recovery in progress") {
		t.Errorf("the server's log shows no crash recovery:\n%s", logs)
	}
}
