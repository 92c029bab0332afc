// Package database is the one way xsell talks to Postgres: it opens the pool with its limits,
// runs transactions (retrying serialization failures and deadlocks), wraps every store error
// with what was being done (an outage becoming apperr.Unavailable), and quarantines the rows
// a background consumer cannot write, so that no single row stops it.
package database

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Options are the limits of a pool.
type Options struct {
	// MaxConns bounds the open connections (and the idle ones kept); 0 leaves database/sql's
	// default, no bound.
	MaxConns int
	// StatementTimeout is the longest one statement may run, set on every connection of the
	// pool (statement_timeout); a statement waiting on a lock counts. 0: no limit, for
	// migrations and tools.
	StatementTimeout time.Duration
}

// Open returns a pool on url (a postgres:// URL or key=value string) and checks that the
// database answers.
func Open(ctx context.Context, url string, o Options) (*sqlx.DB, error) {
	cfg, err := pq.NewConfig(url)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if o.StatementTimeout > 0 {
		if cfg.Runtime == nil {
			cfg.Runtime = map[string]string{}
		}
		// Sent in the start-up message, so that it holds for every connection, before any
		// statement, without a round trip of its own.
		cfg.Runtime["statement_timeout"] = strconv.FormatInt(max(o.StatementTimeout.Milliseconds(), 1), 10)
	}
	connector, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	db := sqlx.NewDb(sql.OpenDB(connector), "postgres")
	if o.MaxConns > 0 {
		db.SetMaxOpenConns(o.MaxConns)
		db.SetMaxIdleConns(o.MaxConns)
	}
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, Wrap(err, "connecting to the database")
	}
	return db, nil
}
