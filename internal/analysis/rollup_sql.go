package analysis

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/database"
)

// The statements of the rollup job that compute rows and move the group sums.

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
    cost, net, pre_revenue, currency_min, currency_max, pre_currency_min, pre_currency_max, last_at, attributes`

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
lv AS (` + learnedVariantsSQL + `
),
u0 AS MATERIALIZED (
    SELECT x.experiment_key, x.phase, x.shopper_id, x.variant, x.first_seen, x.attributes,
           COALESCE(p.ended_at, 'infinity'::timestamptz) AS until,
           CASE WHEN x.first_seen >= COALESCE(p.ended_at, 'infinity'::timestamptz) THEN 'late'
                WHEN x.multiple_variants THEN 'multiple' ELSE 'unit' END AS state,
           make_interval(secs => $1::float8) AS lookback, t.targets,
           COALESCE(x.variant = ANY(lv.keys), false) AS learned
    FROM %[1]s
    JOIN experiment_phases p ON p.experiment_key = x.experiment_key AND p.phase = x.phase
    JOIN t ON t.key = x.experiment_key
    LEFT JOIN lv ON lv.experiment_key = x.experiment_key AND lv.phase = x.phase
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
           GREATEST(ev.last_at, xs.last_at, b.last_at) AS last_at, u.attributes
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
	// now() is the transaction's start, the time the rows' due marks were measured against.
	if _, err := tx.ExecContext(ctx, `UPDATE analysis_rollup_state SET computed_at = now()`); err != nil {
		return fmt.Errorf("recording when the rows were computed: %w", err)
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
// those are quarantined, their rows left as they were and marked due forever, so that no
// single shopper stops the job and reports read them from events. It returns how many were
// set aside.
func (r *Rollups) recomputeSafely(ctx context.Context, tx *database.Tx, shoppers []string) (int, error) {
	if len(shoppers) == 0 {
		return 0, nil
	}
	err := tx.Savepoint(ctx, func() error {
		return recompute(ctx, tx.Tx, recomputeShoppersSQL, CUPEDLookback.Seconds(), pq.StringArray(shoppers))
	})
	if !database.Refused(err) {
		return 0, err
	}
	if len(shoppers) == 1 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO analysis_rollup_due (experiment_key, phase, shopper_id, at)
			SELECT experiment_key, phase, shopper_id, 'infinity' FROM exposures WHERE shopper_id = $1
			ON CONFLICT (experiment_key, phase, shopper_id) DO UPDATE SET at = 'infinity'`, shoppers[0]); err != nil {
			return 0, fmt.Errorf("setting aside the rows of %q: %w", shoppers[0], err)
		}
		return 1, r.quarantine.Put(ctx, tx, RollupConsumer, shoppers[0], map[string]string{"shopper_id": shoppers[0]}, err)
	}
	mid := len(shoppers) / 2
	a, err := r.recomputeSafely(ctx, tx, shoppers[:mid])
	if err != nil {
		return a, err
	}
	b, err := r.recomputeSafely(ctx, tx, shoppers[mid:])
	return a + b, err
}
