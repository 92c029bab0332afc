// Package dbtest gives each test its own freshly migrated Postgres database, cloned from a
// template so that it costs milliseconds rather than a migration run.
package dbtest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"testing"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // the driver the whole project uses
	"github.com/peterldowns/pgtestdb"

	"github.com/xsell/xsell/migrations"
)

// migrator builds pgtestdb templates with the embedded goose migrations.
type migrator struct{}

// Hash fingerprints the migration files, so that a schema change makes a new template.
func (migrator) Hash() (string, error) {
	h := sha256.New()
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := fs.ReadFile(migrations.FS, n)
		if err != nil {
			return "", err
		}
		h.Write([]byte(n))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// Migrate applies the migrations to the template database.
func (migrator) Migrate(ctx context.Context, db *sql.DB, _ pgtestdb.Config) error {
	_, err := migrations.Up(ctx, db)
	return err
}

// config reads the server to use from DATABASE_URL, which make test sets; a test run without
// it fails, never skips, so a missing database cannot pass for green.
func config(t testing.TB) pgtestdb.Config {
	t.Helper()
	raw := os.Getenv("DATABASE_URL")
	if raw == "" {
		t.Fatal("DATABASE_URL is not set: run the tests with `make test`, which starts a throwaway cluster")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		t.Fatalf("DATABASE_URL must be a postgres:// URL for the tests: %v", err)
	}
	pw, _ := u.User.Password()
	q := u.Query()
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "5432"
	}
	// A unix socket directory stays in the query, where lib/pq reads it; the URL's host part
	// cannot hold a path.
	if q.Get("sslmode") == "" {
		q.Set("sslmode", "disable")
	}
	return pgtestdb.Config{
		DriverName: "postgres",
		Host:       host,
		Port:       port,
		User:       u.User.Username(),
		Password:   pw,
		Database:   "postgres",
		Options:    q.Encode(),
		// Tests that start servers or stop mid-way may leave connections behind; dropping the
		// database must not fail because of them.
		ForceTerminateConnections: true,
	}
}

// New returns a connection pool to a new migrated database that is dropped when the test ends.
func New(t testing.TB) *sqlx.DB {
	t.Helper()
	db := pgtestdb.New(t, config(t), migrator{})
	return sqlx.NewDb(db, "postgres")
}

// URL returns the connection string of a new migrated database that is dropped when the test
// ends, for tests that start a server process against it.
func URL(t testing.TB) string {
	t.Helper()
	url := pgtestdb.Custom(t, config(t), migrator{}).URL()
	// Runs before the drop (cleanups run last first): a server the test killed leaves its
	// sessions running until Postgres notices, mid-statement, that nobody listens, and a
	// database with sessions cannot be dropped.
	t.Cleanup(func() { endSessions(t, url) })
	return url
}

// endSessions ends every session of the test's role still connected to the database at url,
// waiting for each to be gone: the servers the test started. (Sessions of other roles, such as
// the harness's own, are not the test's to end.)
func endSessions(t testing.TB, url string) {
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Errorf("ending the sessions of the test database: %v", err)
		return
	}
	defer db.Close()
	_, err = db.ExecContext(context.Background(), `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
		WHERE datname = current_database() AND usename = current_user AND pid <> pg_backend_pid()`)
	if err != nil {
		t.Errorf("ending the sessions of the test database: %v", err)
	}
}

// Count runs a query that returns one number, such as SELECT count(*), and fails the test on
// an error: what tests ask of the database to see what a request stored.
func Count(t testing.TB, db *sqlx.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.GetContext(context.Background(), &n, query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
