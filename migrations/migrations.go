// Package migrations holds the database schema as goose SQL files embedded in the binary, and
// applies them under a Postgres advisory lock so that servers starting together do not race.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed *.sql
var files embed.FS

// FS is the embedded migration files, for tools that fingerprint the schema.
var FS = files

func provider(db *sql.DB, locked bool) (*goose.Provider, error) {
	var opts []goose.ProviderOption
	if locked {
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	return goose.NewProvider(goose.DialectPostgres, db, files, opts...)
}

// Up applies every pending migration, holding an advisory lock so that only one process
// migrates at a time; the others wait and then find nothing to do.
func Up(ctx context.Context, db *sql.DB) (applied []string, err error) {
	p, err := provider(db, true)
	if err != nil {
		return nil, err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrating the database: %w", err)
	}
	for _, r := range results {
		applied = append(applied, r.Source.Path)
	}
	return applied, nil
}

// Pending reports whether the database lacks a migration this binary has.
func Pending(ctx context.Context, db *sql.DB) (bool, error) {
	p, err := provider(db, false)
	if err != nil {
		return false, err
	}
	return p.HasPending(ctx)
}
