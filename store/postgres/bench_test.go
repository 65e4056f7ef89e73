// What the store's tables hold per order: the twin of the bbolt store's
// BenchmarkBytesPerOrder.
package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-checkout/checkout/internal/pgtest"
	"github.com/caddy-checkout/checkout/store/postgres"
	"github.com/caddy-checkout/checkout/store/storetest"
)

// BenchmarkBytesPerOrder is what the store's tables take per order of a
// typical life, written as the bbolt store's benchmark writes them
// (storetest.WriteTypicalOrders: 20,000 orders by 64 writers, each paid
// by a webhook, its order.paid callback delivered). The size is
// pg_total_relation_size of every table of the store's schema: the heap,
// its indexes and its TOAST, not the WAL (a bounded, recycled ring, not
// per order).
//
// B/order is taken after VACUUM (ANALYZE), as autovacuum leaves a table:
// the space of dead row versions (every claimed and delivered callback
// leaves two) is free for new rows but stays in the files, as bbolt's
// free pages stay in its file. B/order-compact is after VACUUM FULL, the
// live rows alone. The split per table (and heap, index, TOAST) is
// logged; the tables that hold orders are also reported on their own.
//
//	go test ./store/postgres -run '^$' -bench BytesPerOrder -benchtime 1x -v
func BenchmarkBytesPerOrder(b *testing.B) {
	const orders = 20_000
	ctx := context.Background()
	for b.Loop() {
		dsn := pgtest.Shared(b).NewDatabase(b)
		s, err := postgres.Open(ctx, dsn, postgres.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := storetest.WriteTypicalOrders(ctx, s, orders, 64); err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		written := relationSizes(b, conn)
		mustExec(b, conn, "VACUUM (ANALYZE)")
		vacuumed := relationSizes(b, conn)
		mustExec(b, conn, "VACUUM FULL")
		compact := relationSizes(b, conn)
		conn.Close(ctx)

		b.Logf("bytes per order of each table (heap + indexes + TOAST), %d orders", orders)
		b.Logf("%-22s %30s %30s %30s", "", "as written", "after VACUUM (ANALYZE)", "after VACUUM FULL")
		for _, t := range vacuumed.tables {
			b.Logf("%-22s %30s %30s %30s", t.name, written.of(t.name).perOrder(orders), t.perOrder(orders), compact.of(t.name).perOrder(orders))
		}
		b.Logf("%-22s %30.0f %30.0f %30.0f", "all", float64(written.total)/orders, float64(vacuumed.total)/orders, float64(compact.total)/orders)
		b.ReportMetric(float64(vacuumed.total)/orders, "B/order")
		b.ReportMetric(float64(compact.total)/orders, "B/order-compact")
		for _, name := range []string{"checkout_orders", "checkout_refs", "checkout_deliveries"} {
			b.ReportMetric(float64(vacuumed.of(name).total())/orders, strings.TrimPrefix(name, "checkout_")+"-B/order")
		}
	}
}

type relation struct {
	name               string
	heap, index, toast int64
}

func (r relation) total() int64 { return r.heap + r.index + r.toast }

func (r relation) perOrder(orders int) string {
	return fmt.Sprintf("%.0f (%.0f + %.0f + %.0f)", float64(r.total())/float64(orders),
		float64(r.heap)/float64(orders), float64(r.index)/float64(orders), float64(r.toast)/float64(orders))
}

type sizes struct {
	tables []relation
	total  int64 // pg_total_relation_size over the tables
}

func (s sizes) of(name string) relation {
	for _, t := range s.tables {
		if t.name == name {
			return t
		}
	}
	return relation{name: name}
}

// relationSizes reads the size of every table of the current schema: its
// main fork and free space and visibility maps (heap), its indexes, and
// its TOAST table with that table's index. heap + index + toast is
// pg_total_relation_size, which total sums.
func relationSizes(b *testing.B, conn *pgx.Conn) sizes {
	b.Helper()
	rows, err := conn.Query(context.Background(), `SELECT c.relname::text,
			pg_table_size(c.oid) - coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0),
			pg_indexes_size(c.oid),
			coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0),
			pg_total_relation_size(c.oid)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
		ORDER BY pg_total_relation_size(c.oid) DESC, c.relname`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var s sizes
	for rows.Next() {
		var r relation
		var total int64
		if err := rows.Scan(&r.name, &r.heap, &r.index, &r.toast, &total); err != nil {
			b.Fatal(err)
		}
		if r.total() != total {
			b.Fatalf("%s: heap %d + indexes %d + TOAST %d != pg_total_relation_size %d", r.name, r.heap, r.index, r.toast, total)
		}
		s.tables = append(s.tables, r)
		s.total += total
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return s
}

func mustExec(b *testing.B, conn *pgx.Conn, sql string) {
	b.Helper()
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		b.Fatalf("%s: %v", sql, err)
	}
}
