package events

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/database"
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

// lockCommit takes the commit lock as a transaction's first statement; the look-up plan
// setting rides along in the same round trip (the simple query protocol runs both).
var lockCommit = fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d); SET LOCAL enable_seqscan = off`, commitLockKey)

// lookUpNew returns the set of the rows' ids that event_ids does not hold yet.
func lookUpNew(ctx context.Context, db *sqlx.DB, rows []*Event) (fresh map[string]bool, err error) {
	err = database.Transact(ctx, db, nil, func(tx *database.Tx) error {
		// A thousand ids are a thousand primary-key probes; left to itself the planner prefers
		// a sequential scan of event_ids once that is a few thousand pages, which makes each
		// group cost as much as the table is big.
		if _, err := tx.ExecContext(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			return err
		}
		fresh, err = newIDs(ctx, tx, ids(rows))
		return err
	})
	return fresh, database.Wrap(err, "looking up %d event ids", len(rows))
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
	err := inCommitTx(ctx, db, func(tx *database.Tx) error { return copyText3(ctx, tx, t) })
	return database.Wrap(err, "writing a group of events")
}

// insert writes events (ids unique among them) in one transaction, looking their ids up under
// the commit lock, and returns the set of ids it stored.
func insert(ctx context.Context, db *sqlx.DB, evs []*Event) (fresh map[string]bool, err error) {
	err = inCommitTx(ctx, db, func(tx *database.Tx) error {
		if fresh, err = newIDs(ctx, tx, ids(evs)); err != nil {
			return err
		}
		var t groupText
		t.add(evs, fresh)
		return copyText3(ctx, tx, t)
	})
	return fresh, database.Wrap(err, "writing %d events", len(evs))
}

// inCommitTx runs fn in a transaction holding the commit lock.
func inCommitTx(ctx context.Context, db *sqlx.DB, fn func(tx *database.Tx) error) error {
	return database.Transact(ctx, db, nil, func(tx *database.Tx) error {
		if _, err := tx.ExecContext(ctx, lockCommit); err != nil {
			return err
		}
		return fn(tx)
	})
}

// copyText3 COPYs a group's rows into event_ids, events and order_items.
func copyText3(ctx context.Context, tx *database.Tx, t groupText) error {
	return tx.Raw(func(dc any) error {
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

// partition is one monthly partition of a table.
type partition struct {
	table, name string
	from, to    time.Time
}

// ensurePartitions creates the monthly partitions from monthsBack before now's month to
// monthsAhead after it. A month whose rows already sit in the DEFAULT partition (events
// back-filled before its partition existed) keeps them there: Postgres refuses to create the
// partition, which is harmless, so it is skipped and reported in skipped.
func ensurePartitions(ctx context.Context, db *sqlx.DB, now time.Time, monthsBack, monthsAhead int) (skipped []string, err error) {
	var want []partition
	first := monthStart(now).AddDate(0, -monthsBack, 0)
	for m := range monthsBack + monthsAhead + 1 {
		from := first.AddDate(0, m, 0)
		for _, table := range partitionedTables {
			want = append(want, partition{table, PartitionName(table, from), from, from.AddDate(0, 1, 0)})
		}
	}
	if missing, err := missingPartitions(ctx, db, want); err != nil || len(missing) == 0 {
		return nil, database.Wrap(err, "looking up partitions")
	}
	err = database.Transact(ctx, db, nil, func(tx *database.Tx) error {
		skipped = nil
		// The lock serialises servers starting together, whose CREATE TABLE would otherwise
		// race on the catalog; what another server made meanwhile is then found. DDL may wait
		// for the locks of long readers of events (an analysis), so it gets longer than the
		// pool's statement timeout, which is sized for requests.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`SET LOCAL statement_timeout = '1min'; SELECT pg_advisory_xact_lock(%d)`,
			commitLockKey+1)); err != nil {
			return err
		}
		missing, err := missingPartitions(ctx, tx, want)
		if err != nil {
			return err
		}
		for _, p := range missing {
			err := tx.Savepoint(ctx, func() error { return createPartition(ctx, tx, p) })
			switch database.SQLState(err) {
			case "":
				if err != nil {
					return fmt.Errorf("creating partition %s: %w", p.name, err)
				}
			case "23514": // check_violation: rows of the month in DEFAULT
				skipped = append(skipped, p.name)
			case "42P07":
				// duplicate_table: a server starting at the same time made it first, and the
				// look-up under the lock can miss a table committed a moment ago (to_regclass
				// reads the catalog cache, which the advisory lock does not refresh).
			default:
				return fmt.Errorf("creating partition %s: %w", p.name, err)
			}
		}
		return nil
	})
	return skipped, database.Wrap(err, "making partitions")
}

// missingPartitions are those of want that do not exist.
func missingPartitions(ctx context.Context, q sqlx.QueryerContext, want []partition) ([]partition, error) {
	names := make([]string, len(want))
	for i, p := range want {
		names[i] = p.name
	}
	var absent []string
	if err := sqlx.SelectContext(ctx, q, &absent, `SELECT n FROM unnest($1::text[]) AS n WHERE to_regclass(n) IS NULL`,
		pq.StringArray(names)); err != nil {
		return nil, err
	}
	var out []partition
	for _, p := range want {
		if slices.Contains(absent, p.name) {
			out = append(out, p)
		}
	}
	return out, nil
}

func createPartition(ctx context.Context, tx *database.Tx, p partition) error {
	_, err := tx.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE %s PARTITION OF %s FOR VALUES FROM (%s) TO (%s)`,
		pq.QuoteIdentifier(p.name), pq.QuoteIdentifier(p.table),
		pq.QuoteLiteral(p.from.Format(time.RFC3339)), pq.QuoteLiteral(p.to.Format(time.RFC3339))))
	return err
}
