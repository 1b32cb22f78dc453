// Package dbtest runs a test against every store Switchboard supports: the
// embedded SQLite file and a real PostgreSQL, each test in its own SQLite file
// or PostgreSQL schema so tests never see each other's rows.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"switchboard/domain"
)

// DefaultPostgresURL is the machine's test database; override it with
// SWITCHBOARD_TEST_DATABASE_URL.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// PostgresURL is the base URL tests connect to.
func PostgresURL() string {
	if u := os.Getenv("SWITCHBOARD_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// ForEach runs fn as a subtest per store, with migrations applied.
func ForEach(t *testing.T, fn func(t *testing.T, db *domain.DB), migrations ...[]domain.Migration) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t, migrations...)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t, migrations...)) })
}

// SQLite opens a fresh migrated SQLite store in t's temp dir.
func SQLite(t testing.TB, migrations ...[]domain.Migration) *domain.DB {
	t.Helper()
	ctx := context.Background()
	db, err := domain.OpenSQLite(ctx, filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	migrate(t, db, migrations)
	return db
}

// Postgres opens a fresh migrated schema in the test database; the schema is
// dropped when the test ends.
func Postgres(t testing.TB, migrations ...[]domain.Migration) *domain.DB {
	t.Helper()
	dsn, drop := NewSchema(t)
	t.Cleanup(drop)
	db, err := domain.Open(context.Background(), domain.OpenConfig{DatabaseURL: dsn})
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	migrate(t, db, migrations)
	return db
}

// NewSchema creates an empty schema and returns a DSN whose search_path is
// that schema, and a func that drops it.
func NewSchema(t testing.TB) (dsn string, drop func()) {
	t.Helper()
	base := PostgresURL()
	admin, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		admin.Close()
		t.Fatalf("postgres (is it running on 127.0.0.1:5432?): %v", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("postgres url: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), func() {
		_, _ = admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
		_, _ = admin.Exec(`DROP PUBLICATION IF EXISTS ` + domain.OutboxPublication(schema))
		admin.Close()
	}
}

func migrate(t testing.TB, db *domain.DB, migrations [][]domain.Migration) {
	t.Helper()
	sets := append([][]domain.Migration{domain.CoreMigrations()}, migrations...)
	if err := domain.Migrate(context.Background(), db, sets...); err != nil {
		t.Fatalf("migrate %s: %v", db.Dialect, err)
	}
}
