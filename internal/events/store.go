package events

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
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
func inCommitTx(ctx context.Context, db *sqlx.DB, fn func(*sql.Conn) error) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			// Whatever state the session is in (mid-COPY, aborted transaction), dropping the
			// connection rolls it back; the pool opens a fresh one.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}()
	if _, err := conn.ExecContext(ctx, beginLocked); err != nil {
		return err
	}
	if err := fn(conn); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, `COMMIT`)
	return err
}

// copyText3 COPYs a group's rows into event_ids, events and order_items.
func copyText3(ctx context.Context, conn *sql.Conn, t groupText) error {
	return conn.Raw(func(dc any) error {
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
