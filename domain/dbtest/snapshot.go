package dbtest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"switchboard/domain"
)

// Tables lists the tables of db's schema (the test's own SQLite file or
// PostgreSQL schema), sorted.
func Tables(t testing.TB, db *domain.DB) []string {
	t.Helper()
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	if db.Dialect == domain.Postgres {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	}
	rows, err := db.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatalf("list tables: %v", err)
		}
		out = append(out, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("list tables: %v", err)
	}
	slices.Sort(out)
	return out
}

// Snapshot is every row of every table of db, each row printed and each
// table's rows sorted: two snapshots are equal when a request changed
// nothing, updates included (a row count would miss an UPDATE). It is for
// the small databases of tests; sequences are not rows and are not compared.
func Snapshot(t testing.TB, db *domain.DB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range Tables(t, db) {
		rows, err := db.QueryContext(context.Background(), `SELECT * FROM "`+table+`"`)
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		cols, err := rows.Columns()
		if err != nil {
			rows.Close()
			t.Fatalf("read %s: %v", table, err)
		}
		var lines []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				t.Fatalf("read %s: %v", table, err)
			}
			cells := make([]string, len(vals))
			for i, v := range vals {
				switch v := v.(type) {
				case nil:
					cells[i] = "NULL"
				case []byte: // drivers hand text back as bytes
					cells[i] = strconv.Quote(string(v))
				case string:
					cells[i] = strconv.Quote(v)
				default:
					cells[i] = fmt.Sprint(v)
				}
			}
			lines = append(lines, strings.Join(cells, ", "))
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		slices.Sort(lines)
		out[table] = lines
	}
	return out
}

// RowCounts is the number of rows of every table of db: the cheap form of
// Snapshot for loops that run many requests (fuzzing), where the tables grow.
func RowCounts(t testing.TB, db *domain.DB) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, table := range Tables(t, db) {
		out[table] = Count(t, db, `"`+table+`"`)
	}
	return out
}
