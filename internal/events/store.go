package events

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/pgcopy"
)

// commitLockKey is the transaction-level advisory lock every group commit takes before it
// draws seq values, so that transactions (from every server) commit in seq order and a consumer
// reading "seq > cursor" never misses a row that became visible after a larger seq did.
// The value is the first 8 bytes of sha256("xsell.events.commit").
const commitLockKey int64 = 0x2d1f5c6a9e0b7431

// The group commit writes a group in two steps: lookUpNew and groupText.add outside any lock,
// while the previous group is still being written, then copyGroup under commitLockKey. Rows
// go in with COPY rather than INSERT ... ON CONFLICT: COPY into the partitioned tables batches
// rows per partition and is two to three times as fast. Without ON CONFLICT, an id stored by
// another transaction between the look-up and the COPY fails the primary key and the whole
// transaction; the caller then writes each batch with insert, which looks its ids up under
// the lock, where no group commit can race it.
//
// The COPY text is written here and handed to lib/pq in one piece (CopyData): its per-row
// Exec through database/sql costs about ten times as much CPU, and the writer is serial.

// beginLocked opens the transaction and takes the commit lock in one round trip (the simple
// query protocol runs both statements); the look-up plan setting rides along.
var beginLocked = fmt.Sprintf(`BEGIN; SELECT pg_advisory_xact_lock(%d); SET LOCAL enable_seqscan = off`, commitLockKey)

// lookUpNew returns the set of the rows' ids that event_ids does not hold yet.
func lookUpNew(ctx context.Context, db *sqlx.DB, rows []*Event) (map[string]bool, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() //nolint:errcheck // read-only; nothing to keep
	// A thousand ids are a thousand primary-key probes; left to itself the planner prefers a
	// sequential scan of event_ids once that is a few thousand pages, which makes each group
	// cost as much as the table is big.
	if _, err := tx.ExecContext(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
		return nil, err
	}
	return newIDs(ctx, tx, ids(rows))
}

func ids(rows []*Event) []string {
	out := make([]string, len(rows))
	for i, e := range rows {
		out[i] = e.ID
	}
	return out
}

// groupText is the COPY text of a group's new rows, one per table.
type groupText struct{ ids, events, items pgcopy.Rows }

// add appends the COPY rows of the events whose id is in fresh.
func (t *groupText) add(rows []*Event, fresh map[string]bool) {
	// Room for typical rows up front (ids ~60 bytes a row, events ~150, an order's lines ~110
	// each), so that the buffers do not grow row by row.
	t.ids.B = slices.Grow(t.ids.B, 64*len(fresh))
	t.events.B = slices.Grow(t.events.B, 160*len(fresh))
	var buf [32]byte
	for _, e := range rows {
		if !fresh[e.ID] {
			continue
		}
		at := pgcopy.AppendTimestamp(buf[:0], e.OccurredAt)
		t.ids.Text(e.ID).Raw(at).End()
		t.events.Text(e.ID).Text(e.Type).Text(e.ShopperID).Raw(at).Opt(e.Experiment).Opt(e.OrderID).
			Num(e.Amount).Num(e.Discount).Opt(e.Currency).End()
		for j, it := range e.Items {
			q, line := it.Quantity, int64(j)
			t.items.Text(e.ID).Num(&line).Raw(at).Text(e.OrderID).Text(e.ShopperID).Text(it.SKU).
				Num(&q).Num(&it.UnitPrice).End()
		}
	}
}

// copyGroup writes a prepared group in one transaction under the commit lock.
func copyGroup(ctx context.Context, db *sqlx.DB, t groupText) error {
	return inCommitTx(ctx, db, func(conn *sql.Conn) error { return copyText3(ctx, conn, t) })
}

// insert writes events (ids unique among them) in one transaction, looking their ids up under
// the commit lock, and returns the set of ids it stored.
func insert(ctx context.Context, db *sqlx.DB, evs []*Event) (fresh map[string]bool, err error) {
	err = inCommitTx(ctx, db, func(conn *sql.Conn) error {
		if fresh, err = newIDs(ctx, conn, ids(evs)); err != nil {
			return err
		}
		var t groupText
		t.add(evs, fresh)
		return copyText3(ctx, conn, t)
	})
	return fresh, err
}

// inCommitTx runs fn in a transaction holding the commit lock, on a connection of its own,
// and commits.
func inCommitTx(ctx context.Context, db *sqlx.DB, fn func(*sql.Conn) error) error {
	return pgcopy.Tx(ctx, db.DB, beginLocked, fn)
}

// copyText3 COPYs a group's rows into event_ids, events and order_items.
func copyText3(ctx context.Context, conn *sql.Conn, t groupText) error {
	return conn.Raw(func(dc any) error {
		if err := pgcopy.In(ctx, dc, `COPY event_ids (id, occurred_at) FROM STDIN`, t.ids.B); err != nil {
			return err
		}
		if err := pgcopy.In(ctx, dc, `COPY events (id, type, shopper_id, occurred_at, experiment, order_id, amount, discount, currency) FROM STDIN`, t.events.B); err != nil {
			return err
		}
		return pgcopy.In(ctx, dc, `COPY order_items (event_id, line, occurred_at, order_id, shopper_id, sku, quantity, unit_price) FROM STDIN`, t.items.B)
	})
}

// querier is a connection or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// newIDs returns those of ids that event_ids does not hold.
func newIDs(ctx context.Context, conn querier, ids []string) (map[string]bool, error) {
	fresh := make(map[string]bool, len(ids))
	for _, id := range ids {
		fresh[id] = true
	}
	rows, err := conn.QueryContext(ctx, `SELECT id FROM event_ids WHERE id = ANY($1)`, pq.StringArray(ids))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		delete(fresh, id)
	}
	return fresh, rows.Err()
}

// partitionedTables are created month by month together, so that an order's event and its
// lines always sit in partitions of the same month.
var partitionedTables = []string{"events", "order_items"}

// monthStart is the first instant of t's month in UTC.
func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// PartitionName is the name of table's partition for the month holding t.
func PartitionName(table string, t time.Time) string {
	m := monthStart(t)
	return fmt.Sprintf("%s_y%04dm%02d", table, m.Year(), int(m.Month()))
}

// ensurePartitions creates the monthly partitions from monthsBack before now's month to
// monthsAhead after it. A month whose rows already sit in the DEFAULT partition (events
// back-filled before its partition existed) keeps them there: Postgres refuses to create the
// partition, which is harmless, so it is skipped and reported in skipped.
func ensurePartitions(ctx context.Context, db *sqlx.DB, now time.Time, monthsBack, monthsAhead int) (skipped []string, err error) {
	first := monthStart(now).AddDate(0, -monthsBack, 0)
	for m := range monthsBack + monthsAhead + 1 {
		from := first.AddDate(0, m, 0)
		to := from.AddDate(0, 1, 0)
		for _, table := range partitionedTables {
			name := PartitionName(table, from)
			if err := createPartition(ctx, db, table, name, from, to); err != nil {
				var pqErr *pq.Error
				if errors.As(err, &pqErr) && pqErr.Code == "23514" { // check_violation: rows in DEFAULT
					skipped = append(skipped, name)
					continue
				}
				// duplicate_table: a server starting at the same time made it first, and the
				// re-check under the lock can miss a table committed a moment ago (to_regclass reads
				// the catalog cache, which the advisory lock does not refresh).
				if errors.As(err, &pqErr) && pqErr.Code == "42P07" {
					continue
				}
				return skipped, fmt.Errorf("creating partition %s: %w", name, err)
			}
		}
	}
	return skipped, nil
}

// createPartition creates one partition unless it exists. The advisory lock serialises servers
// starting together, whose CREATE TABLE would otherwise race on the catalog.
func createPartition(ctx context.Context, db *sqlx.DB, table, name string, from, to time.Time) error {
	var exists bool
	if err := db.GetContext(ctx, &exists, `SELECT to_regclass($1) IS NOT NULL`, name); err != nil || exists {
		return err
	}
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, commitLockKey+1); err != nil {
		return err
	}
	if err := tx.GetContext(ctx, &exists, `SELECT to_regclass($1) IS NOT NULL`, name); err != nil || exists {
		return err
	}
	ddl := fmt.Sprintf(`CREATE TABLE %s PARTITION OF %s FOR VALUES FROM (%s) TO (%s)`,
		pq.QuoteIdentifier(name), pq.QuoteIdentifier(table),
		pq.QuoteLiteral(from.Format(time.RFC3339)), pq.QuoteLiteral(to.Format(time.RFC3339)))
	if _, err := tx.ExecContext(ctx, ddl); err != nil {
		return err
	}
	return tx.Commit()
}
