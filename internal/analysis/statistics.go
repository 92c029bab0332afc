package analysis

import (
	"context"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// analyseStale runs ANALYZE on those of tables whose planner statistics are missing (never
// analysed, and not empty) or stale (changed by more than a fifth since the last analysis, and
// by at least 200 rows), and returns them. Changes count once the backend that made them has
// reported them (at its commit when it asked for it with pg_stat_force_next_flush, else within
// a second or so); the size of a table never analysed is read from its files. autovacuum gets there too, but a minute or more after a table's first rows, and never
// analyses a partitioned table's parent (events, order_items), whose statistics the planner
// uses for the table as a whole; meanwhile it guesses, and its guesses on this schema are
// plans tens of times slower. ANALYZE samples rows, so its cost stays small however large the
// table (docs/benchmarks.md, analyze report).
//
// On a hot standby or in a read-only session it does nothing and reports nothing: ANALYZE
// would fail there, and a standby's statistics are the primary's, replicated with the data.
// The tables are constants of the caller, never input.
func analyseStale(ctx context.Context, db *sqlx.DB, tables []string) ([]string, error) {
	var readOnly bool
	if err := db.GetContext(ctx, &readOnly, `SELECT pg_is_in_recovery() OR current_setting('transaction_read_only')::bool`); err != nil {
		return nil, fmt.Errorf("asking whether the database is read-only: %w", err)
	}
	if readOnly {
		return nil, nil
	}
	var stale []string
	// An ordinary table: by its own counters, as autovacuum judges it. A partitioned one has
	// no counters of its own, and its partitions' are reset when autovacuum analyses them (not
	// it): it is stale when its partitions hold a fifth more or fewer rows than it had when it
	// was last analysed, or never was.
	if err := db.SelectContext(ctx, &stale, `
		SELECT c.relname FROM pg_class c JOIN pg_stat_user_tables t ON t.relid = c.oid
		WHERE c.relname = ANY($1) AND c.relkind = 'r'
		  AND (coalesce(t.last_analyze, t.last_autoanalyze) IS NULL AND pg_relation_size(c.oid) > 0
		       OR t.n_mod_since_analyze > greatest(0.2 * t.n_live_tup, 200))
		UNION
		SELECT p.relname FROM pg_class p
		JOIN pg_inherits i ON i.inhparent = p.oid JOIN pg_stat_user_tables t ON t.relid = i.inhrelid
		WHERE p.relname = ANY($1) AND p.relkind = 'p'
		GROUP BY p.relname, p.reltuples
		HAVING p.reltuples < 0 AND sum(pg_relation_size(t.relid)) > 0
		    OR abs(sum(t.n_live_tup) - p.reltuples) > greatest(0.2 * p.reltuples, 200)
		ORDER BY 1`, pq.Array(tables)); err != nil {
		return nil, fmt.Errorf("finding tables with stale statistics: %w", err)
	}
	var done []string
	for _, table := range stale {
		ok, err := analyse(ctx, db, table)
		if err != nil {
			return done, err
		}
		if ok {
			done = append(done, table)
		}
	}
	return done, nil
}

// analyse runs ANALYZE on table unless a vacuum or another analysis holds it (then it reports
// false, and the next call tries again): waiting would stall the caller for as long as a
// vacuum takes, and waiting past deadlock_timeout would cancel autovacuum's work.
func analyse(ctx context.Context, db *sqlx.DB, table string) (bool, error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("analysing %s: %w", table, err)
	}
	defer tx.Rollback() //nolint:errcheck // committed below when it worked
	if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '200ms'`); err != nil {
		return false, fmt.Errorf("analysing %s: %w", table, err)
	}
	if _, err := tx.ExecContext(ctx, `ANALYZE `+pq.QuoteIdentifier(table)); err != nil {
		var pqErr *pq.Error
		if errors.As(err, &pqErr) && pqErr.Code == "55P03" { // lock_not_available
			return false, nil
		}
		return false, fmt.Errorf("analysing %s: %w", table, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("analysing %s: %w", table, err)
	}
	return true, nil
}
