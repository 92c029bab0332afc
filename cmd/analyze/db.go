package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // the project's Postgres driver

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/pgcluster"
	"github.com/xsell/xsell/migrations"
)

// connectTimeout bounds how long an unreachable database can keep the analyst waiting.
const connectTimeout = 10 * time.Second

// openSource connects to $DATABASE_URL, or to the private cluster that `make run` uses, which
// it starts when needed and stops on close only if it started it.
func openSource(ctx context.Context, stage func(string)) (*analysis.Source, func(), error) {
	db, closeAll, err := openDB(ctx, stage)
	if err != nil {
		return nil, nil, err
	}
	return analysis.NewSource(db, time.Now), closeAll, nil
}

// openDB is openSource's connection, for commands that read through other packages.
func openDB(ctx context.Context, stage func(string)) (*sqlx.DB, func(), error) {
	dsn := os.Getenv("DATABASE_URL")
	where := "DATABASE_URL (" + redact(dsn) + ")"
	var cluster *pgcluster.Cluster
	if dsn == "" {
		dir := os.Getenv("XSELL_DATA_DIR")
		if dir == "" {
			dir = ".xsell"
		}
		stage("starting the private PostgreSQL cluster in " + dir)
		c, err := pgcluster.StartPrivate(ctx, dir, func(f string, a ...any) { stage(fmt.Sprintf(f, a...)) })
		if err != nil {
			return nil, nil, fmt.Errorf("DATABASE_URL is unset and the private cluster in %s did not start: %v", dir, err)
		}
		cluster, dsn, where = c, c.URL(), "the private cluster in "+dir
	}
	stopCluster := func() {
		if cluster != nil {
			_ = cluster.Stop()
		}
	}
	stage("connecting to " + where)
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		stopCluster()
		return nil, nil, fmt.Errorf("database unreachable: %s is not a valid connection string: %v", where, err)
	}
	closeAll := func() { db.Close(); stopCluster() }
	pctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("database unreachable at %s: %v", where, err)
	}
	pending, err := migrations.Pending(ctx, db.DB)
	if err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("checking the schema of %s: %v", where, err)
	}
	if pending {
		if cluster == nil {
			closeAll()
			return nil, nil, fmt.Errorf("the database at %s lacks migrations: run `server migrate` first", where)
		}
		// Our own cluster: bring it up to date, as `make run` would, so a fresh clone works.
		stage("applying migrations")
		if _, err := migrations.Up(ctx, db.DB); err != nil {
			closeAll()
			return nil, nil, err
		}
	}
	return db, closeAll, nil
}

// redact shows where a connection string points without its password.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "unparseable"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.Redacted()
}
