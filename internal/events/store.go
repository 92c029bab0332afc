package events

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// commitLockKey is the transaction-level advisory lock every group commit takes before it
// draws seq values, so that transactions (from every server) commit in seq order and a consumer
// reading "seq > cursor" never misses a row that became visible after a larger seq did.
// The value is the first 8 bytes of sha256("xsell.events.commit").
const commitLockKey int64 = 0x2d1f5c6a9e0b7431

// insertSQL stores one group in one statement: new ids go into event_ids, and only the events
// (and order lines) whose id was new go into the partitioned tables. Ids are unique within a
// group (the committer removes repeats first), so each input row meets at most one conflict.
const insertSQL = `
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
                         $6::text[], $7::bigint[], $8::bigint[], $9::text[])
        AS t(id, type, shopper_id, occurred_at, experiment, order_id, amount, discount, currency)
), fresh AS (
    INSERT INTO event_ids (id, occurred_at)
    SELECT id, occurred_at FROM input
    ON CONFLICT (id) DO NOTHING
    RETURNING id
), stored AS (
    INSERT INTO events (id, type, shopper_id, occurred_at, experiment, order_id, amount, discount, currency)
    SELECT i.id, i.type, i.shopper_id, i.occurred_at, i.experiment, i.order_id, i.amount, i.discount, i.currency
    FROM input i JOIN fresh f ON f.id = i.id
), lines AS (
    INSERT INTO order_items (event_id, line, occurred_at, order_id, shopper_id, sku, quantity, unit_price)
    SELECT l.event_id, l.line, l.occurred_at, l.order_id, l.shopper_id, l.sku, l.quantity, l.unit_price
    FROM unnest($10::text[], $11::int[], $12::timestamptz[], $13::text[], $14::text[], $15::text[],
                $16::int[], $17::bigint[])
        AS l(event_id, line, occurred_at, order_id, shopper_id, sku, quantity, unit_price)
    JOIN fresh f ON f.id = l.event_id
)
SELECT id FROM fresh`

// columns holds a group's rows as the arrays insertSQL unnests.
type columns struct {
	id, typ, shopper, occurred, experiment, order, currency  []sql.NullString
	amount, discount                                         []sql.NullInt64
	itemEvent, itemOccurred, itemOrder, itemShopper, itemSKU []string
	itemLine, itemQty                                        []int64
	itemPrice                                                []int64
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func nullInt(v *int64) sql.NullInt64 {
	if v == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: *v, Valid: true}
}

func (c *columns) add(e *Event) {
	at := e.OccurredAt.UTC().Format(time.RFC3339Nano)
	c.id = append(c.id, nullString(e.ID))
	c.typ = append(c.typ, nullString(e.Type))
	c.shopper = append(c.shopper, nullString(e.ShopperID))
	c.occurred = append(c.occurred, nullString(at))
	c.experiment = append(c.experiment, nullString(e.Experiment))
	c.order = append(c.order, nullString(e.OrderID))
	c.amount = append(c.amount, nullInt(e.Amount))
	c.discount = append(c.discount, nullInt(e.Discount))
	c.currency = append(c.currency, nullString(e.Currency))
	for j, it := range e.Items {
		c.itemEvent = append(c.itemEvent, e.ID)
		c.itemLine = append(c.itemLine, int64(j))
		c.itemOccurred = append(c.itemOccurred, at)
		c.itemOrder = append(c.itemOrder, e.OrderID)
		c.itemShopper = append(c.itemShopper, e.ShopperID)
		c.itemSKU = append(c.itemSKU, it.SKU)
		c.itemQty = append(c.itemQty, it.Quantity)
		c.itemPrice = append(c.itemPrice, it.UnitPrice)
	}
}

// insert writes the events of one group in one transaction and returns the set of ids that
// were new, that is, stored by this call.
func insert(ctx context.Context, db *sqlx.DB, evs []*Event) (map[string]bool, error) {
	var c columns
	for _, e := range evs {
		c.add(e)
	}
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, commitLockKey); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, insertSQL,
		pq.Array(c.id), pq.Array(c.typ), pq.Array(c.shopper), pq.Array(c.occurred), pq.Array(c.experiment),
		pq.Array(c.order), pq.Array(c.amount), pq.Array(c.discount), pq.Array(c.currency),
		pq.StringArray(c.itemEvent), pq.Int64Array(c.itemLine), pq.StringArray(c.itemOccurred),
		pq.StringArray(c.itemOrder), pq.StringArray(c.itemShopper), pq.StringArray(c.itemSKU),
		pq.Int64Array(c.itemQty), pq.Int64Array(c.itemPrice))
	if err != nil {
		return nil, err
	}
	fresh := make(map[string]bool, len(evs))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		fresh[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return fresh, nil
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
