package domain

import (
	"context"
	"fmt"
	"strings"
)

// Migration is one schema step of one module, written for each store.
type Migration struct {
	Module   string
	Version  int
	Postgres string
	SQLite   string
}

// Migrate applies, in order, the migrations not yet recorded. Each runs in
// its own transaction with its bookkeeping row. On PostgreSQL an advisory
// lock keeps two starting nodes from racing.
func Migrate(ctx context.Context, db *DB, sets ...[]Migration) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if db.Dialect == Postgres {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(726354)`); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(726354)`)
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		module TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (module, version))`); err != nil {
		return fmt.Errorf("migrate: bookkeeping table: %w", err)
	}
	for _, set := range sets {
		for _, m := range set {
			var n int
			if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE module=$1 AND version=$2`,
				m.Module, m.Version).Scan(&n); err != nil {
				return fmt.Errorf("migrate %s/%d: %w", m.Module, m.Version, err)
			}
			if n > 0 {
				continue
			}
			ddl := m.SQLite
			if db.Dialect == Postgres {
				ddl = m.Postgres
			}
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				return fmt.Errorf("migrate %s/%d: %w", m.Module, m.Version, err)
			}
			for _, stmt := range splitSQL(ddl) {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					tx.Rollback()
					return fmt.Errorf("migrate %s/%d: %w\n%s", m.Module, m.Version, err, stmt)
				}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (module, version) VALUES ($1, $2)`,
				m.Module, m.Version); err != nil {
				tx.Rollback()
				return fmt.Errorf("migrate %s/%d: %w", m.Module, m.Version, err)
			}
			if err := tx.Commit(); err != nil {
				return fmt.Errorf("migrate %s/%d: %w", m.Module, m.Version, err)
			}
		}
	}
	return nil
}

// splitSQL splits a script on ";" at line ends, keeping $$-quoted function
// bodies whole.
func splitSQL(script string) []string {
	var out []string
	var cur strings.Builder
	inDollar := false
	for _, line := range strings.Split(script, "\n") {
		if strings.Count(line, "$$")%2 == 1 {
			inDollar = !inDollar
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if !inDollar && strings.HasSuffix(strings.TrimSpace(line), ";") {
			if s := strings.TrimSpace(cur.String()); s != ";" && s != "" {
				out = append(out, s)
			}
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}
