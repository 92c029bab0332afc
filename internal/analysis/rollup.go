package analysis

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// The rollup job keeps the report rollups (migrations/00007_rollups.sql): per exposure, the
// shopper's figures (analysis_rollups), and per experiment, phase, variant and day, their exact
// sums (analysis_rollup_groups), so that a report reads a few sums per variant and day instead
// of every event (statement.go, groups.go).
//
// A row is never adjusted by the difference an event makes: the job finds the shoppers whose
// figures something may have changed and computes their rows again, whole, from the events,
// order lines, ledger and exposures (figuresSQL, the text reports use too), then moves the
// group sums by the difference between the old and new rows, in the same statement. Every
// step is idempotent, so out-of-order events, late exposures, refunds before their order, a
// job interrupted mid-way or two servers running it cannot leave a wrong row behind. What
// changes a shopper's figures, and how the job learns of it:
//
//   - an order or refund: the events outbox, read by seq with a cursor that moves in the same
//     transaction as the rows, as loyalty's crediting does;
//   - an exposure (a new experiment for the shopper, one written after their orders, a second
//     variant seen) or a ledger entry of a bonus or a reversal: analysis_rollup_queue, which
//     statement triggers fill in the writer's own transaction;
//   - the end of a phase: rows that counted past the new end are computed again, clipped;
//   - a new point value: cost and net of rows with bonus points, and every group sum, again.
//
// A report trusts a row only when none of these is pending for its shopper (staleSQL), and
// computes the others from events; so a report is exact at any moment, and fast once the job
// has caught up.

// RollupOptions tune the rollup job; zero values take the defaults.
type RollupOptions struct {
	// Every is the pause between passes once caught up (1 s).
	Every time.Duration
	// Batch is the most order events one transaction reads (5,000).
	Batch int
	// Log receives failed passes (nil: nowhere).
	Log *slog.Logger
}

// Rollups is the background job that keeps analysis_rollups up to date.
type Rollups struct {
	db    *sqlx.DB
	every time.Duration
	batch int
	log   *slog.Logger
}

// NewRollups returns the rollup job on db.
func NewRollups(db *sqlx.DB, o RollupOptions) *Rollups {
	if o.Every <= 0 {
		o.Every = time.Second
	}
	if o.Batch <= 0 {
		o.Batch = 5000
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Rollups{db: db, every: o.Every, batch: o.Batch, log: o.Log}
}

// Run advances the rollups until ctx ends, pausing Every between passes once caught up. A
// failed pass is logged and tried again at the next tick; Run returns nil when ctx ends.
func (r *Rollups) Run(ctx context.Context) error {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		if _, err := r.Advance(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("analysis rollups: a pass failed; trying again", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RollupProgress is what one call of Advance did.
type RollupProgress struct {
	Events   int   // order and refund events read
	Shoppers int   // shoppers whose rows were computed again
	Cursor   int64 // the last event read (events.seq)
	Rebuilt  bool  // every row was computed from scratch (the first run on a database with events)
	Queue    int   // queue rows (statements of other writers) read
	Sealed   int   // phases whose end clipped rows
	Poisoned int   // shoppers whose rows the database refused, left to be read from events
	Duration time.Duration
}

// Advance brings the rollups up to date with everything committed when it started, in
// transactions of at most Batch order events, and says what it did.
func (r *Rollups) Advance(ctx context.Context) (RollupProgress, error) {
	start := time.Now()
	var total RollupProgress
	for {
		p, more, err := r.pass(ctx)
		total.Events += p.Events
		total.Shoppers += p.Shoppers
		total.Queue += p.Queue
		total.Sealed += p.Sealed
		total.Poisoned += p.Poisoned
		total.Rebuilt = total.Rebuilt || p.Rebuilt
		if p.Cursor > 0 {
			total.Cursor = p.Cursor
		}
		if err != nil {
			return total, fmt.Errorf("advancing the analysis rollups: %w", err)
		}
		if !more || ctx.Err() != nil {
			total.Duration = time.Since(start)
			return total, ctx.Err()
		}
	}
}

// pass runs one transaction and reports whether there is more to read.
func (r *Rollups) pass(ctx context.Context) (p RollupProgress, more bool, err error) {
	err = inTx(ctx, r.db, func(tx *sqlx.Tx) error {
		p, more = RollupProgress{}, false
		var cursor int64
		// Servers running the job queue on this row; the rows are theirs while they hold it.
		if err := tx.GetContext(ctx, &cursor, `SELECT seq FROM analysis_rollup_state FOR UPDATE`); err != nil {
			return fmt.Errorf("locking the job's state: %w", err)
		}
		p.Cursor = cursor
		if err := syncPointValue(ctx, tx); err != nil {
			return err
		}
		if cursor == 0 {
			built, err := rebuild(ctx, tx, &p)
			if err != nil || built {
				more = built // what was written during the rebuild comes next
				return err
			}
		}
		var evs []struct {
			Seq       int64  `db:"seq"`
			ShopperID string `db:"shopper_id"`
		}
		// internal/events makes rows visible in seq order, so nothing appears later below the cursor.
		if err := tx.SelectContext(ctx, &evs, `SELECT seq, shopper_id FROM events
			WHERE seq > $1 AND type IN ('order_completed', 'order_refunded') ORDER BY seq LIMIT $2`, cursor, r.batch); err != nil {
			return fmt.Errorf("reading order events: %w", err)
		}
		var buyers []string
		for _, e := range evs {
			buyers = append(buyers, e.ShopperID)
		}
		if err := noteBuyers(ctx, tx, buyers); err != nil {
			return err
		}
		queued, n, err := readQueue(ctx, tx)
		if err != nil {
			return err
		}
		p.Queue = n
		sealed, phases, err := sealPhases(ctx, tx)
		if err != nil {
			return err
		}
		p.Sealed = phases
		shoppers := slices.Concat(buyers, queued, sealed)
		slices.Sort(shoppers)
		shoppers = slices.Compact(shoppers)
		if p.Poisoned, err = recomputeSafely(ctx, tx, shoppers); err != nil {
			return err
		}
		p.Events, p.Shoppers = len(evs), len(shoppers)
		if len(evs) > 0 {
			p.Cursor = evs[len(evs)-1].Seq
			if _, err := tx.ExecContext(ctx, `UPDATE analysis_rollup_state SET seq = $1`, p.Cursor); err != nil {
				return fmt.Errorf("moving the cursor: %w", err)
			}
		}
		more = len(evs) == r.batch || n == queueBatch
		return nil
	})
	return p, more, err
}

// noteBuyers records shoppers with an order, refund or bonus read, whose exposures need their
// events read from now on.
func noteBuyers(ctx context.Context, tx *sqlx.Tx, shoppers []string) error {
	if len(shoppers) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO analysis_rollup_shoppers (shopper_id)
		SELECT DISTINCT s FROM unnest($1::text[]) s ON CONFLICT DO NOTHING`, pq.StringArray(shoppers))
	if err != nil {
		return fmt.Errorf("noting the buyers: %w", err)
	}
	return nil
}

// syncPointValue makes cost and net follow the loyalty program's point value: when it changed
// since they were computed, every row with bonus points gets them again and the groups are
// summed again. Reports meanwhile read events (their point value differs from the state's).
func syncPointValue(ctx context.Context, tx *sqlx.Tx) error {
	var pv struct {
		Current int64         `db:"current"`
		Used    sql.NullInt64 `db:"used"`
	}
	if err := tx.GetContext(ctx, &pv, `SELECT COALESCE((SELECT point_value FROM loyalty_program LIMIT 1), 0)::bigint AS current,
		(SELECT point_value FROM analysis_rollup_state) AS used`); err != nil {
		return fmt.Errorf("reading the point value: %w", err)
	}
	if pv.Used.Valid && pv.Used.Int64 == pv.Current {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE analysis_rollups SET cost = discount + bonus_points * $1,
		net = revenue - discount - bonus_points * $1 WHERE bonus_points <> 0`, pv.Current); err != nil {
		return fmt.Errorf("costing bonus points at the new point value: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM analysis_rollup_groups`); err != nil {
		return fmt.Errorf("emptying the groups: %w", err)
	}
	if _, err := tx.ExecContext(ctx, rebuildGroupsSQL); err != nil {
		return fmt.Errorf("summing the groups again: %w", err)
	}
	_, err := tx.ExecContext(ctx, `UPDATE analysis_rollup_state SET point_value = $1`, pv.Current)
	return err
}

// queueBatch is how many queue rows (one per writer's statement) one transaction reads.
const queueBatch = 200

// readQueue takes queue rows and returns the shoppers whose rows to compute again: the
// shoppers of new or flagged exposures, and of bonus entries and reversals, who become buyers.
func readQueue(ctx context.Context, tx *sqlx.Tx) ([]string, int, error) {
	var rows []struct {
		Source   string         `db:"source"`
		Shoppers pq.StringArray `db:"shoppers"`
	}
	if err := tx.SelectContext(ctx, &rows, `DELETE FROM analysis_rollup_queue WHERE id IN
		(SELECT id FROM analysis_rollup_queue ORDER BY id LIMIT $1) RETURNING source, shoppers`, queueBatch); err != nil {
		return nil, 0, fmt.Errorf("reading the queue: %w", err)
	}
	var all, ledger []string
	for _, r := range rows {
		all = append(all, r.Shoppers...)
		if r.Source == "loyalty" {
			ledger = append(ledger, r.Shoppers...)
		}
	}
	return all, len(rows), noteBuyers(ctx, tx, ledger)
}

// sealPhases finds the phases that ended since their rows were last clipped, records their
// end, and returns the shoppers whose rows count past it or were first exposed after it. The
// rows are computed again in a later statement, which sees at least these ends.
func sealPhases(ctx context.Context, tx *sqlx.Tx) ([]string, int, error) {
	var ended []struct {
		Experiment string    `db:"experiment_key"`
		Phase      int       `db:"phase"`
		EndedAt    time.Time `db:"ended_at"`
	}
	if err := tx.SelectContext(ctx, &ended, `SELECT p.experiment_key, p.phase, p.ended_at
		FROM experiment_phases p LEFT JOIN analysis_rollup_phases s USING (experiment_key, phase)
		WHERE p.ended_at IS NOT NULL AND p.ended_at IS DISTINCT FROM s.ended_at`); err != nil {
		return nil, 0, fmt.Errorf("reading the phases' ends: %w", err)
	}
	var shoppers []string
	for _, ph := range ended {
		var past []string
		if err := tx.SelectContext(ctx, &past, `SELECT shopper_id FROM analysis_rollups
			WHERE experiment_key = $1 AND phase = $2 AND (last_at >= $3 OR first_seen >= $3)`,
			ph.Experiment, ph.Phase, ph.EndedAt); err != nil {
			return nil, 0, fmt.Errorf("finding the rows past the end of %s phase %d: %w", ph.Experiment, ph.Phase, err)
		}
		shoppers = append(shoppers, past...)
		if _, err := tx.ExecContext(ctx, `INSERT INTO analysis_rollup_phases (experiment_key, phase, ended_at)
			VALUES ($1, $2, $3) ON CONFLICT (experiment_key, phase) DO UPDATE SET ended_at = EXCLUDED.ended_at`,
			ph.Experiment, ph.Phase, ph.EndedAt); err != nil {
			return nil, 0, fmt.Errorf("recording the end of %s phase %d: %w", ph.Experiment, ph.Phase, err)
		}
	}
	return shoppers, len(ended), nil
}

// rebuild computes every row from scratch when the job first runs on a database that holds
// events already (a new installation, a migration, a bulk load): one set-based statement is
// far cheaper than reading the history in batches. It reports whether it did.
func rebuild(ctx context.Context, tx *sqlx.Tx, p *RollupProgress) (bool, error) {
	var last int64
	if err := tx.GetContext(ctx, &last, `SELECT COALESCE(max(seq), 0) FROM events`); err != nil {
		return false, fmt.Errorf("reading the last event: %w", err)
	}
	if last == 0 {
		return false, nil
	}
	// Each statement below sees at least what the ones before it saw: the buyers up to the
	// cursor, the queue rows taken (their exposures and entries are in the rebuild), the phase
	// ends recorded (the rebuild clips at them or at later ones).
	if _, err := tx.ExecContext(ctx, `INSERT INTO analysis_rollup_shoppers (shopper_id)
		SELECT shopper_id FROM events WHERE seq <= $1 AND type IN ('order_completed', 'order_refunded')
		UNION SELECT shopper_id FROM loyalty_entries WHERE experiment IS NOT NULL OR reverses IS NOT NULL
		ON CONFLICT DO NOTHING`, last); err != nil {
		return false, fmt.Errorf("noting the buyers: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM analysis_rollup_queue`); err != nil {
		return false, fmt.Errorf("emptying the queue: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO analysis_rollup_phases (experiment_key, phase, ended_at)
		SELECT experiment_key, phase, ended_at FROM experiment_phases WHERE ended_at IS NOT NULL
		ON CONFLICT (experiment_key, phase) DO UPDATE SET ended_at = EXCLUDED.ended_at`); err != nil {
		return false, fmt.Errorf("recording the phases' ends: %w", err)
	}
	if err := recompute(ctx, tx, recomputeAllSQL, CUPEDLookback.Seconds()); err != nil {
		return false, fmt.Errorf("computing every row: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE analysis_rollup_state SET seq = $1`, last); err != nil {
		return false, fmt.Errorf("moving the cursor: %w", err)
	}
	p.Rebuilt, p.Cursor = true, last
	return true, nil
}

// groupSums are the sums analysis_rollup_groups keeps, each an SQL expression of one row's
// values: o (orders), xs, rf (cross-sell and refunded, booleans), r, c, n, p (revenue, cost,
// net and pre-exposure revenue). The job sums them exactly, as numeric, over uncapped rows; a
// report sums the same expressions over its capped corrections, as float8.
var groupSums = []struct {
	col, expr string
	count     bool // a number of units, bigint in a report
	pre       bool // of the pre-exposure revenue, which a report counts only with CUPED
}{
	{"units", "1", true, false}, {"cross_sell", "xs::int", true, false}, {"converted", "(o > 0)::int", true, false},
	{"refunded", "rf::int", true, false}, {"orders", "o", false, false}, {"orders_sq", "o * o", false, false},
	{"revenue", "r", false, false}, {"revenue_sq", "r * r", false, false}, {"revenue_cu", "r * r * r", false, false},
	{"revenue_nz", "(r <> 0)::int", true, false}, {"revenue_orders", "r * o", false, false},
	{"cost", "c", false, false}, {"cost_sq", "c * c", false, false}, {"cost_cu", "c * c * c", false, false},
	{"cost_nz", "(c <> 0)::int", true, false},
	{"net", "n", false, false}, {"net_sq", "n * n", false, false}, {"net_cu", "n * n * n", false, false},
	{"net_nz", "(n <> 0)::int", true, false},
	{"pre", "p", false, true}, {"pre_sq", "p * p", false, true}, {"pre_nz", "(p <> 0)::int", true, true},
	{"revenue_pre", "r * p", false, true}, {"cost_pre", "c * p", false, true}, {"net_pre", "n * p", false, true},
}

// sumsSQL lists groupSums as "sum(sign * (expr)) AS col", one a line, for a relation with a
// sign column and the value columns of groupSums.
func sumsSQL(indent string) string {
	var b strings.Builder
	for i, s := range groupSums {
		if i > 0 {
			b.WriteString(",\n" + indent)
		}
		fmt.Fprintf(&b, "sum(sign * (%s)) AS %s", s.expr, s.col)
	}
	return b.String()
}

// groupColumns lists the columns of groupSums, with prefix before each.
func groupColumns(prefix, sep string) string {
	var cols []string
	for _, s := range groupSums {
		cols = append(cols, prefix+s.col)
	}
	return strings.Join(cols, sep)
}

// rollupColumns are analysis_rollups' columns after its key, in table order.
const rollupColumns = `variant, first_seen, state, orders, cross_sell, refunded, revenue, discount, bonus_points,
    cost, net, pre_revenue, currency_min, currency_max, pre_currency_min, pre_currency_max, last_at`

// deltaRow turns rows of analysis_rollups (or of the same shape) aliased %[1]s into the group
// key, the sign %[2]s and the values groupSums reads, exact.
const deltaRow = `%[1]s.experiment_key, %[1]s.phase, %[1]s.state, %[1]s.variant,
           (%[1]s.first_seen AT TIME ZONE 'UTC')::date AS day, %[2]s AS sign,
           %[1]s.orders::numeric AS o, %[1]s.cross_sell AS xs, %[1]s.refunded AS rf, %[1]s.revenue::numeric AS r,
           %[1]s.cost::numeric AS c, %[1]s.net::numeric AS n, %[1]s.pre_revenue::numeric AS p,
           %[1]s.currency_min, %[1]s.currency_max, %[1]s.pre_currency_min, %[1]s.pre_currency_max`

// groupInsert sums a relation of deltaRow rows, delta, into analysis_rollup_groups.
func groupInsert() string {
	var set []string
	for _, s := range groupSums {
		set = append(set, fmt.Sprintf("%[1]s = g.%[1]s + EXCLUDED.%[1]s", s.col))
	}
	return `INSERT INTO analysis_rollup_groups AS g (experiment_key, phase, state, variant, day, ` + groupColumns("", ", ") + `,
        currency_min, currency_max, pre_currency_min, pre_currency_max)
    SELECT experiment_key, phase, state, variant, day,
           ` + sumsSQL("           ") + `,
           min(currency_min) FILTER (WHERE sign > 0), max(currency_max) FILTER (WHERE sign > 0),
           min(pre_currency_min) FILTER (WHERE sign > 0), max(pre_currency_max) FILTER (WHERE sign > 0)
    FROM delta GROUP BY experiment_key, phase, state, variant, day
    ON CONFLICT (experiment_key, phase, state, variant, day) DO UPDATE SET
        ` + strings.Join(set, ", ") + `,
        currency_min = LEAST(g.currency_min, EXCLUDED.currency_min),
        currency_max = GREATEST(g.currency_max, EXCLUDED.currency_max),
        pre_currency_min = LEAST(g.pre_currency_min, EXCLUDED.pre_currency_min),
        pre_currency_max = GREATEST(g.pre_currency_max, EXCLUDED.pre_currency_max)`
}

// recomputeSQL computes from scratch the rows of the exposures a FROM clause (%[1]s, yielding
// exposures x) names, writes those that changed, moves the group sums by the difference, and
// notes the rows due for another look; $1 is the CUPED lookback in seconds. A row counts up
// to its phase's end as it stands, without end while the phase runs, and with the point
// value of analysis_rollup_state. Only units with an order, refund or bonus read (buyers)
// have their events read; everyone else's row is zeros. It returns the groups whose
// currencies may have shrunk (a row's currencies changed or it left the group), whose
// bounds the caller computes again from their rows.
var recomputeSQL = `
WITH st AS (SELECT point_value FROM analysis_rollup_state),
t AS (SELECT key, ARRAY(SELECT jsonb_array_elements_text(target_products)) AS targets FROM experiments),
u0 AS MATERIALIZED (
    SELECT x.experiment_key, x.phase, x.shopper_id, x.variant, x.first_seen,
           COALESCE(p.ended_at, 'infinity'::timestamptz) AS until,
           CASE WHEN x.first_seen >= COALESCE(p.ended_at, 'infinity'::timestamptz) THEN 'late'
                WHEN x.multiple_variants THEN 'multiple' ELSE 'unit' END AS state,
           make_interval(secs => $1::float8) AS lookback, t.targets
    FROM %[1]s
    JOIN experiment_phases p ON p.experiment_key = x.experiment_key AND p.phase = x.phase
    JOIN t ON t.key = x.experiment_key
),
u AS (
    SELECT * FROM u0
    WHERE state = 'unit' AND EXISTS (SELECT 1 FROM analysis_rollup_shoppers h WHERE h.shopper_id = u0.shopper_id)
),` + figuresSQL + `,
new AS MATERIALIZED (
    SELECT u.experiment_key, u.phase, u.shopper_id, u.variant, u.first_seen, u.state,
           COALESCE(ev.orders, 0)::bigint AS orders, xs.shopper_id IS NOT NULL AS cross_sell,
           COALESCE(ev.refunded, false) AS refunded, COALESCE(ev.revenue, 0)::bigint AS revenue,
           COALESCE(ev.discount, 0)::bigint AS discount, COALESCE(b.points, 0)::bigint AS bonus_points,
           (COALESCE(ev.discount, 0) + COALESCE(b.points, 0) * st.point_value)::bigint AS cost,
           (COALESCE(ev.revenue, 0) - COALESCE(ev.discount, 0) - COALESCE(b.points, 0) * st.point_value)::bigint AS net,
           COALESCE(ev.pre_revenue, 0)::bigint AS pre_revenue,
           ev.cur_min AS currency_min, ev.cur_max AS currency_max,
           ev.pre_cur_min AS pre_currency_min, ev.pre_cur_max AS pre_currency_max,
           GREATEST(ev.last_at, xs.last_at, b.last_at) AS last_at
    FROM u0 AS u CROSS JOIN st` + figuresJoin + `
),
old AS MATERIALIZED (
    SELECT r.* FROM u0 JOIN analysis_rollups r
      ON r.experiment_key = u0.experiment_key AND r.phase = u0.phase AND r.shopper_id = u0.shopper_id
),
changed AS MATERIALIZED (
    SELECT n.* FROM new n LEFT JOIN old o
      ON o.experiment_key = n.experiment_key AND o.phase = n.phase AND o.shopper_id = n.shopper_id
    WHERE o.shopper_id IS NULL OR (` + prefixed("n.", rollupColumns) + `)
        IS DISTINCT FROM (` + prefixed("o.", rollupColumns) + `)
),
written AS (
    INSERT INTO analysis_rollups (experiment_key, phase, shopper_id, ` + rollupColumns + `)
    SELECT * FROM changed
    ON CONFLICT (experiment_key, phase, shopper_id) DO UPDATE SET (` + rollupColumns + `) =
        (` + prefixed("EXCLUDED.", rollupColumns) + `)
),
delta AS (
    SELECT ` + fmt.Sprintf(deltaRow, "c", "1") + ` FROM changed c
    UNION ALL
    SELECT ` + fmt.Sprintf(deltaRow, "o", "-1") + `
    FROM old o JOIN changed c ON c.experiment_key = o.experiment_key AND c.phase = o.phase AND c.shopper_id = o.shopper_id
),
grouped AS (
    ` + groupInsert() + `
),
due AS (
    INSERT INTO analysis_rollup_due (experiment_key, phase, shopper_id, at)
    SELECT experiment_key, phase, shopper_id, GREATEST(last_at, first_seen) FROM new
    WHERE GREATEST(last_at, first_seen) >= now()
    ON CONFLICT (experiment_key, phase, shopper_id) DO UPDATE SET at = EXCLUDED.at
),
undue AS (
    DELETE FROM analysis_rollup_due d USING new n
    WHERE d.experiment_key = n.experiment_key AND d.phase = n.phase AND d.shopper_id = n.shopper_id
      AND GREATEST(n.last_at, n.first_seen) < now()
)
SELECT DISTINCT o.experiment_key, o.phase, o.state, o.variant, (o.first_seen AT TIME ZONE 'UTC')::date AS day
FROM old o JOIN changed c ON c.experiment_key = o.experiment_key AND c.phase = o.phase AND c.shopper_id = o.shopper_id
WHERE (o.currency_min IS NOT NULL OR o.pre_currency_min IS NOT NULL)
  AND (c.state <> o.state OR (c.currency_min, c.currency_max, c.pre_currency_min, c.pre_currency_max)
       IS DISTINCT FROM (o.currency_min, o.currency_max, o.pre_currency_min, o.pre_currency_max))`

// prefixed puts prefix before every column of a comma-separated list.
func prefixed(prefix, columns string) string {
	var out []string
	for _, c := range strings.Split(columns, ",") {
		out = append(out, prefix+strings.TrimSpace(c))
	}
	return strings.Join(out, ", ")
}

var (
	// recomputeShoppersSQL computes the rows of the shoppers in $2.
	recomputeShoppersSQL = fmt.Sprintf(recomputeSQL, `unnest($2::text[]) AS s(shopper_id) JOIN exposures x ON x.shopper_id = s.shopper_id`)
	// recomputeAllSQL computes every row.
	recomputeAllSQL = fmt.Sprintf(recomputeSQL, `exposures x`)
)

// groupKey is one group of analysis_rollup_groups.
type groupKey struct {
	Experiment string    `db:"experiment_key"`
	Phase      int       `db:"phase"`
	State      string    `db:"state"`
	Variant    string    `db:"variant"`
	Day        time.Time `db:"day"`
}

// recompute computes the rows of the exposures recomputeSQL's variant q names, then the
// currency bounds of the groups that may have lost a currency.
func recompute(ctx context.Context, tx *sqlx.Tx, q string, args ...any) error {
	var shrunk []groupKey
	if err := tx.SelectContext(ctx, &shrunk, q, args...); err != nil {
		return err
	}
	for _, g := range shrunk {
		if _, err := tx.ExecContext(ctx, `UPDATE analysis_rollup_groups g SET (currency_min, currency_max, pre_currency_min, pre_currency_max) =
			(SELECT min(currency_min), max(currency_max), min(pre_currency_min), max(pre_currency_max) FROM analysis_rollups
			 WHERE experiment_key = $1 AND phase = $2 AND state = $3 AND variant = $4 AND (first_seen AT TIME ZONE 'UTC')::date = $5)
			WHERE experiment_key = $1 AND phase = $2 AND state = $3 AND variant = $4 AND day = $5`,
			g.Experiment, g.Phase, g.State, g.Variant, g.Day); err != nil {
			return fmt.Errorf("computing the currencies of a group again: %w", err)
		}
	}
	return nil
}

// rebuildGroupsSQL computes every group's sums from the rows.
var rebuildGroupsSQL = `WITH delta AS (SELECT ` + fmt.Sprintf(deltaRow, "r", "1") + ` FROM analysis_rollups r)
` + groupInsert()

// recomputeSafely computes the shoppers' rows again. When the database refuses the statement
// (a sum beyond bigint, say), the shoppers are halved until the ones it refuses are found;
// their rows are left as they were and marked due forever, so that no single shopper stops
// the job and reports read them from events. It returns how many were set aside.
func recomputeSafely(ctx context.Context, tx *sqlx.Tx, shoppers []string) (int, error) {
	if len(shoppers) == 0 {
		return 0, nil
	}
	err := savepoint(ctx, tx, func() error {
		return recompute(ctx, tx, recomputeShoppersSQL, CUPEDLookback.Seconds(), pq.StringArray(shoppers))
	})
	if err == nil || !refused(err) {
		return 0, err
	}
	if len(shoppers) == 1 {
		// Due forever: reports read this shopper from events until a later pass succeeds.
		_, err := tx.ExecContext(ctx, `INSERT INTO analysis_rollup_due (experiment_key, phase, shopper_id, at)
			SELECT experiment_key, phase, shopper_id, 'infinity' FROM exposures WHERE shopper_id = $1
			ON CONFLICT (experiment_key, phase, shopper_id) DO UPDATE SET at = 'infinity'`, shoppers[0])
		if err != nil {
			return 0, fmt.Errorf("setting aside the rows of %q: %w", shoppers[0], err)
		}
		return 1, nil
	}
	mid := len(shoppers) / 2
	a, err := recomputeSafely(ctx, tx, shoppers[:mid])
	if err != nil {
		return a, err
	}
	b, err := recomputeSafely(ctx, tx, shoppers[mid:])
	return a + b, err
}

// refused reports whether the database refused a statement for what it held (a data
// exception or a violated constraint) rather than failing for want of a connection or time.
func refused(err error) bool {
	var pe *pq.Error
	if !errors.As(err, &pe) {
		return false
	}
	class := pe.Code.Class()
	return class == "22" || class == "23"
}

// savepoint runs fn inside a savepoint of tx, rolling back what it did when it fails.
func savepoint(ctx context.Context, tx *sqlx.Tx, fn func() error) error {
	if _, err := tx.ExecContext(ctx, `SAVEPOINT rollup`); err != nil {
		return err
	}
	if err := fn(); err != nil {
		if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT rollup`); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	_, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT rollup`)
	return err
}

// inTx runs fn in a READ COMMITTED transaction and commits when fn returns nil.
func inTx(ctx context.Context, db *sqlx.DB, fn func(tx *sqlx.Tx) error) error {
	tx, err := db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
