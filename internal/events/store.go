package events

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/database"
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
type groupText struct{ ids, events, items copyText }

// add appends the COPY rows of the events whose id is in fresh.
func (t *groupText) add(rows []*Event, fresh map[string]bool) {
	// Room for typical rows up front (ids ~60 bytes a row, events ~150, an order's lines ~110
	// each), so that the buffers do not grow row by row.
	t.ids.b = slices.Grow(t.ids.b, 64*len(fresh))
	t.events.b = slices.Grow(t.events.b, 160*len(fresh))
	var buf [32]byte
	for _, e := range rows {
		if !fresh[e.ID] {
			continue
		}
		at := appendTimestamp(buf[:0], e.OccurredAt)
		t.ids.text(e.ID).raw(at).end()
		t.events.text(e.ID).text(e.Type).text(e.ShopperID).raw(at).opt(e.Experiment).opt(e.OrderID).
			num(e.Amount).num(e.Discount).opt(e.Currency).end()
		for j, it := range e.Items {
			q, line := it.Quantity, int64(j)
			t.items.text(e.ID).num(&line).raw(at).text(e.OrderID).text(e.ShopperID).text(it.SKU).
				num(&q).num(&it.UnitPrice).end()
		}
	}
}

// appendTimestamp appends t in UTC as 2006-01-02T15:04:05.123456789Z, the form COPY reads
// for timestamptz. It is time.Format for the years 0–9999 without parsing a layout per call:
// formatting the timestamps was the largest part of building a group's COPY text.
func appendTimestamp(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, time.RFC3339Nano)
	}
	hour, minute, sec := t.Clock()
	digits := func(dst []byte, v, n int) []byte {
		start := len(dst)
		dst = append(dst, "000000000"[:n]...)
		for i := start + n - 1; i >= start; i-- {
			dst[i] = byte('0' + v%10)
			v /= 10
		}
		return dst
	}
	dst = digits(dst, year, 4)
	dst = append(dst, '-')
	dst = digits(dst, int(month), 2)
	dst = append(dst, '-')
	dst = digits(dst, day, 2)
	dst = append(dst, 'T')
	dst = digits(dst, hour, 2)
	dst = append(dst, ':')
	dst = digits(dst, minute, 2)
	dst = append(dst, ':')
	dst = digits(dst, sec, 2)
	dst = append(dst, '.')
	dst = digits(dst, t.Nanosecond(), 9)
	return append(dst, 'Z')
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
		if err := copyIn(ctx, dc, `COPY event_ids (id, occurred_at) FROM STDIN`, t.ids); err != nil {
			return err
		}
		if err := copyIn(ctx, dc, `COPY events (id, type, shopper_id, occurred_at, experiment, order_id, amount, discount, currency) FROM STDIN`, t.events); err != nil {
			return err
		}
		return copyIn(ctx, dc, `COPY order_items (event_id, line, occurred_at, order_id, shopper_id, sku, quantity, unit_price) FROM STDIN`, t.items)
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

// copyText builds rows in COPY's text format: tab-separated, \N for NULL, backslash escapes.
type copyText struct {
	b      []byte
	midRow bool
}

func (c *copyText) sep() {
	if c.midRow {
		c.b = append(c.b, '\t')
	}
	c.midRow = true
}

func (c *copyText) text(s string) *copyText {
	c.sep()
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		switch s[i] {
		case '\\', '\n', '\r', '\t':
			plain = false
		}
	}
	if plain { // nearly every id, type and SKU: copied whole rather than byte by byte
		c.b = append(c.b, s...)
		return c
	}
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; ch {
		case '\\':
			c.b = append(c.b, '\\', '\\')
		case '\n':
			c.b = append(c.b, '\\', 'n')
		case '\r':
			c.b = append(c.b, '\\', 'r')
		case '\t':
			c.b = append(c.b, '\\', 't')
		default:
			c.b = append(c.b, ch)
		}
	}
	return c
}

// raw appends a value that needs no escaping (a formatted time).
func (c *copyText) raw(v []byte) *copyText {
	c.sep()
	c.b = append(c.b, v...)
	return c
}

// opt appends s, or NULL when it is empty.
func (c *copyText) opt(s string) *copyText {
	if s == "" {
		c.sep()
		c.b = append(c.b, '\\', 'N')
		return c
	}
	return c.text(s)
}

func (c *copyText) num(v *int64) *copyText {
	c.sep()
	if v == nil {
		c.b = append(c.b, '\\', 'N')
	} else {
		c.b = strconv.AppendInt(c.b, *v, 10)
	}
	return c
}

func (c *copyText) end() {
	c.b = append(c.b, '\n')
	c.midRow = false
}

// copyData is lib/pq's COPY statement, which takes ready-made COPY text.
type copyData interface {
	CopyData(ctx context.Context, line string) (driver.Result, error)
}

// copyIn runs one COPY ... FROM STDIN with the given text on the driver connection dc.
func copyIn(ctx context.Context, dc any, query string, data copyText) error {
	if len(data.b) == 0 {
		return nil
	}
	conn, ok := dc.(driver.Conn)
	if !ok {
		return fmt.Errorf("events: the driver connection is a %T, not a driver.Conn", dc)
	}
	stmt, err := conn.Prepare(query)
	if err != nil {
		return err
	}
	defer stmt.Close()
	cd, ok := stmt.(copyData)
	if !ok {
		return fmt.Errorf("events: the COPY statement is a %T without CopyData (not lib/pq?)", stmt)
	}
	// CopyData adds the final newline itself.
	if _, err := cd.CopyData(ctx, string(data.b[:len(data.b)-1])); err != nil {
		return err
	}
	_, err = stmt.Exec(nil) //nolint:staticcheck // lib/pq ends a COPY with Exec(nil)
	return err
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
