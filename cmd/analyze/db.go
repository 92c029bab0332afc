package main

import (
	"context"
	"flag"
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

// databaseFlag is --database-url, which every command that reads the database takes.
type databaseFlag struct{ url string }

func (d *databaseFlag) register(fs *flag.FlagSet) {
	fs.StringVar(&d.url, "database-url", "", "the database to read, e.g. a read-only hot standby (default: $ANALYZE_DATABASE_URL, then $DATABASE_URL)")
}

// target is the database to read and how to name it in messages: --database-url, else
// $ANALYZE_DATABASE_URL (so that analysts' reports go to a replica while the servers' own
// DATABASE_URL stays the primary), else $DATABASE_URL; "" for the private cluster.
func (d databaseFlag) target() (dsn, name string) {
	switch {
	case d.url != "":
		return d.url, "--database-url"
	case os.Getenv("ANALYZE_DATABASE_URL") != "":
		return os.Getenv("ANALYZE_DATABASE_URL"), "ANALYZE_DATABASE_URL"
	}
	return os.Getenv("DATABASE_URL"), "DATABASE_URL"
}

// openSource connects to the database d names, or to the private cluster that `make run`
// uses, which it starts when needed and stops on close only if it started it. It only reads,
// so a hot standby serves it.
func openSource(ctx context.Context, d databaseFlag, stage func(string)) (*analysis.Source, func(), error) {
	db, closeAll, err := openDB(ctx, d, stage)
	if err != nil {
		return nil, nil, err
	}
	return analysis.NewSource(db, time.Now), closeAll, nil
}

// openDB is openSource's connection, for commands that read through other packages.
func openDB(ctx context.Context, d databaseFlag, stage func(string)) (*sqlx.DB, func(), error) {
	dsn, name := d.target()
	where := name + " (" + redact(dsn) + ")"
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
			return nil, nil, fmt.Errorf("the database at %s lacks migrations: run `server migrate` on the primary first", where)
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
