package analysis

import (
	"fmt"
	"strings"
)

// The aggregate statement reduces the exposed shoppers of one experiment phase to sufficient
// statistics per (variant, segment, day of first exposure); no per-shopper row leaves Postgres.
// It comes in three forms, one per place the figures are read from (DataSource):
//
//   - groups (the default report): the exact sums that the rollup job keeps per variant and
//     day (analysis_rollup_groups), corrected for the few shoppers whose values are capped
//     (found through the indexes of the largest and smallest values) and for the shoppers
//     whose rows are behind (stale), whose figures are computed from events. Its cost does
//     not grow with the number of shoppers.
//   - rows (a segment): one rollup row per shopper, which holds the exposure's attributes and
//     so the segment, capped with the caps the groups form finds; the stale shoppers computed
//     from events. It reads no exposure but the stale shoppers'.
//   - events: every shopper's figures computed from events (figuresSQL), where the rollups
//     cannot answer: a conversion window, rollups not built or being brought up to date.
//
// All three give every shopper the same figures and cap them at the same pooled percentiles
// (PostgreSQL's percentile_cont, computed in groups form from the order statistics it needs),
// so they agree to rounding: with capping off every value is a whole number and the sums of
// values are exact; squares, cubes and products are float8 since they only feed variances and
// skewness.
//
// Parameters: $1 experiment, $2 phase, $3 end of the analysis window, $4 conversion window in
// seconds (NULL: none), $5 target SKUs, $6 segment attribute (empty for none), $7 CUPED lookback
// in seconds (0 when CUPED is off, so the events before exposure are not read at all), $8 the
// capping quantile of revenue-like values (NULL: no capping, and no percentile is computed).
// Events: $9 the starts of a bandit's periods after the first (empty otherwise: every shopper in
// period 0; a report with periods reads events). Rows and groups: $9 the rollup job's cursor when the report began. Groups: $10 the units,
// $11–$14 the ranks of the order statistics (groupArgs), $15–$18 the units of the rollups
// whose revenue, cost, net and pre-exposure revenue are 0, $19 the rollup rows of stale units.

// exposedSQL reads the phase's exposures once (x); the shoppers seen in two variants are only
// counted (summarySQL's last part). %[1]s is each shopper's period (a bandit's; 0 otherwise),
// %[2]s more conditions on the exposures ("" for none; the holdout's first exposure since).
const exposedSQL = `
WITH x AS MATERIALIZED (
    SELECT shopper_id, variant, first_seen, multiple_variants, %[1]s AS period,
           CASE WHEN $6::text = '' THEN '' ELSE COALESCE(attributes ->> $6::text, '') END AS segment,
           CASE WHEN $4::float8 IS NULL THEN $3::timestamptz
                ELSE LEAST($3::timestamptz, first_seen + make_interval(secs => $4::float8)) END AS until
    FROM exposures
    WHERE experiment_key = $1 AND phase = $2 AND first_seen < $3::timestamptz%[2]s
),`

// staleSQL lists the shoppers whose rollup rows a report does not trust: an order or refund
// after the job's cursor, an exposure or ledger entry still in the job's queue, a row that
// counts at or after the window's end (or that the database refused to write). Everything a
// report reads is one snapshot, so a shopper is either in here or up to date.
var staleSQL = fmt.Sprintf(staleSQLFor, "$9")

// staleSQLFor is staleSQL with the cursor's parameter left as %s.
const staleSQLFor = `
stale AS MATERIALIZED (
    SELECT e.shopper_id FROM events e WHERE e.seq > %s AND e.type IN ('order_completed', 'order_refunded')
    UNION SELECT unnest(shoppers) FROM analysis_rollup_queue
    UNION SELECT shopper_id FROM analysis_rollup_due WHERE experiment_key = $1 AND phase = $2 AND at >= $3::timestamptz
),`

// staleExposedSQL reads the exposures of the stale shoppers only (x), for the groups form.
const staleExposedSQL = `
x AS MATERIALIZED (
    SELECT x.shopper_id, x.variant, x.first_seen, x.multiple_variants, 0 AS period,
           CASE WHEN $6::text = '' THEN '' ELSE COALESCE(x.attributes ->> $6::text, '') END AS segment,
           CASE WHEN $4::float8 IS NULL THEN $3::timestamptz
                ELSE LEAST($3::timestamptz, x.first_seen + make_interval(secs => $4::float8)) END AS until
    FROM stale s JOIN exposures x ON x.experiment_key = $1 AND x.phase = $2 AND x.shopper_id = s.shopper_id
    WHERE x.first_seen < $3::timestamptz
),`

// fromEventsSQL makes u, the shoppers whose figures come from events, out of the relation %s.
var fromEventsSQL = `
lv AS (` + learnedVariantsSQL + `
),
u AS (
    SELECT $1::text AS experiment_key, $2::integer AS phase, shopper_id, variant, first_seen, period, segment, until,
           make_interval(secs => $7::float8) AS lookback, $5::text[] AS targets,
           EXISTS (SELECT 1 FROM lv WHERE lv.experiment_key = $1 AND lv.phase = $2 AND variant = ANY(lv.keys)) AS learned
    FROM %s
),`

// The point value that prices bonus points: the program's when reading events; the one the
// rollups were computed with otherwise (the report reads events when the two differ).
const (
	programPointValueSQL = `
pv AS (SELECT COALESCE((SELECT point_value FROM loyalty_program LIMIT 1), 0)::bigint AS point_value),`
	rollupPointValueSQL = `
pv AS (SELECT point_value FROM analysis_rollup_state),`
)

// perFromEventsSQL is each shopper of u with the figures computed from events, in the CTE
// named %s: per when every shopper comes from events, pst (the stale ones) otherwise. The
// caller closes it.
const perFromEventsSQL = `
%s AS MATERIALIZED (
    SELECT u.variant, u.segment, (u.first_seen AT TIME ZONE 'UTC')::date AS day, u.period, true AS from_events,
           COALESCE(ev.orders, 0)::bigint AS orders,
           (xs.shopper_id IS NOT NULL) AS cross_sell,
           COALESCE(ev.refunded, false) AS refunded,
           COALESCE(ev.revenue, 0)::float8 AS revenue,
           (COALESCE(ev.discount, 0) + COALESCE(b.points, 0) * pv.point_value)::float8 AS cost,
           COALESCE(ev.pre_revenue, 0)::float8 AS pre,
           LEAST(ev.cur_min, ev.pre_cur_min) AS cur_min, GREATEST(ev.cur_max, ev.pre_cur_max) AS cur_max
    FROM u CROSS JOIN pv` + figuresJoin

// perFromRowsSQL is per for the rows form: the stale shoppers from events (pst), and everyone
// else's rollup row, whose segment attribute it keeps (so no exposure is read for it). The
// pre-exposure figures count only with CUPED, as they do when computed from events with a
// lookback of 0.
const perFromRowsSQL = `
per AS (
    SELECT * FROM pst
    UNION ALL
    SELECT r.variant, CASE WHEN $6::text = '' THEN '' ELSE COALESCE(r.attributes ->> $6::text, '') END,
           (r.first_seen AT TIME ZONE 'UTC')::date, 0, false,
           r.orders, r.cross_sell, r.refunded, r.revenue::float8, r.cost::float8,
           CASE WHEN $7::float8 > 0 THEN r.pre_revenue ELSE 0 END::float8,
           CASE WHEN $7::float8 > 0 THEN LEAST(r.currency_min, r.pre_currency_min) ELSE r.currency_min END,
           CASE WHEN $7::float8 > 0 THEN GREATEST(r.currency_max, r.pre_currency_max) ELSE r.currency_max END
    FROM analysis_rollups r
    WHERE r.experiment_key = $1 AND r.phase = $2 AND r.state = 'unit'
      AND NOT EXISTS (SELECT 1 FROM stale s WHERE s.shopper_id = r.shopper_id)
),`

// percentileCapsSQL closes per and finds the caps: the pooled percentiles of every unit's
// values. A caps CTE has each metric's bounds as an array (rev, cost, net, pre; NULL when not
// capped) and as scalars (rev_lo, rev_hi, ...), which capping reads row by row.
const percentileCapsSQL = `
),
caps AS MATERIALIZED (
    SELECT rev, cost, net, pre, rev[1] AS rev_lo, rev[2] AS rev_hi, cost[1] AS cost_lo, cost[2] AS cost_hi,
           net[1] AS net_lo, net[2] AS net_hi, pre[1] AS pre_lo, pre[2] AS pre_hi
    FROM (
        SELECT percentile_cont(ARRAY[1 - $8::float8, $8::float8]) WITHIN GROUP (ORDER BY revenue) FILTER (WHERE $8::float8 IS NOT NULL) AS rev,
               percentile_cont(ARRAY[1 - $8::float8, $8::float8]) WITHIN GROUP (ORDER BY cost) FILTER (WHERE $8::float8 IS NOT NULL) AS cost,
               percentile_cont(ARRAY[1 - $8::float8, $8::float8]) WITHIN GROUP (ORDER BY revenue - cost) FILTER (WHERE $8::float8 IS NOT NULL) AS net,
               percentile_cont(ARRAY[1 - $8::float8, $8::float8]) WITHIN GROUP (ORDER BY pre) FILTER (WHERE $8::float8 IS NOT NULL AND $7::float8 > 0) AS pre
        FROM per
    ) c
),`

// cappedSQL caps per's values and sums them per group; x gives the shoppers seen in two
// variants, who are only counted.
const cappedSQL = `
capped AS (
    SELECT per.variant, per.segment, per.day, per.period, per.from_events, per.orders, per.cross_sell, per.refunded, per.cur_min, per.cur_max,
           LEAST(GREATEST(per.revenue, caps.rev_lo), caps.rev_hi) AS rv,
           LEAST(GREATEST(per.cost, caps.cost_lo), caps.cost_hi) AS cv,
           LEAST(GREATEST(per.revenue - per.cost, caps.net_lo), caps.net_hi) AS nv,
           LEAST(GREATEST(per.pre, caps.pre_lo), caps.pre_hi) AS pv,
           (per.revenue < caps.rev_lo OR per.revenue > caps.rev_hi) AS rev_capped,
           (per.cost < caps.cost_lo OR per.cost > caps.cost_hi) AS cost_capped,
           (per.revenue - per.cost < caps.net_lo OR per.revenue - per.cost > caps.net_hi) AS net_capped,
           (per.pre < caps.pre_lo OR per.pre > caps.pre_hi) AS pre_capped
    FROM per CROSS JOIN caps
)
SELECT false AS excluded, variant, segment, day, period,
       count(*) AS units, count(*) FILTER (WHERE from_events) AS from_events,
       count(*) FILTER (WHERE cross_sell) AS cross_sell,
       count(*) FILTER (WHERE orders > 0) AS converted,
       count(*) FILTER (WHERE refunded) AS refunded,
       sum(orders)::bigint AS orders,
       sum(orders::float8 * orders) AS orders_sq,
       sum(rv) AS revenue, sum(rv * rv) AS revenue_sq, sum(rv * rv * rv) AS revenue_cu,
       count(*) FILTER (WHERE rv <> 0) AS revenue_nz, count(*) FILTER (WHERE rev_capped) AS revenue_capped,
       sum(rv * orders) AS revenue_orders,
       sum(cv) AS cost, sum(cv * cv) AS cost_sq, sum(cv * cv * cv) AS cost_cu,
       count(*) FILTER (WHERE cv <> 0) AS cost_nz, count(*) FILTER (WHERE cost_capped) AS cost_capped,
       sum(nv) AS net, sum(nv * nv) AS net_sq, sum(nv * nv * nv) AS net_cu,
       count(*) FILTER (WHERE nv <> 0) AS net_nz, count(*) FILTER (WHERE net_capped) AS net_capped,
       sum(pv) AS pre, sum(pv * pv) AS pre_sq, count(*) FILTER (WHERE pre_capped) AS pre_capped,
       sum(rv * pv) AS revenue_pre, sum(cv * pv) AS cost_pre, sum(nv * pv) AS net_pre,
       COALESCE(min(cur_min), '') AS cur_min, COALESCE(max(cur_max), '') AS cur_max,
       (SELECT rev FROM caps) AS cap_revenue, (SELECT cost FROM caps) AS cap_cost,
       (SELECT net FROM caps) AS cap_net, (SELECT pre FROM caps) AS cap_pre
FROM capped GROUP BY variant, segment, day, period
UNION ALL
SELECT true, '', '', NULL, 0, %s, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
       0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '', '', NULL, NULL, NULL, NULL`

// excludedFromExposuresSQL counts the shoppers seen in two variants among the exposures x (the
// whole phase's); excludedFromRollupsSQL counts them as the groups form does: the rollups'
// count, less the stale rows (sr), plus the stale shoppers' exposures (x holds only those).
const (
	excludedFromExposuresSQL = `(SELECT count(*) FROM x WHERE multiple_variants)`
	excludedFromRollupsSQL   = `(SELECT COALESCE(sum(units), 0) FROM analysis_rollup_groups WHERE experiment_key = $1 AND phase = $2 AND state = 'multiple')
       - (SELECT count(*) FROM sr WHERE state = 'multiple') + (SELECT count(*) FROM x WHERE multiple_variants)`
)

var (
	// eventsAggregateSQL computes every shopper's figures from events.
	eventsAggregateSQL = sqlJoin(fmt.Sprintf(exposedSQL, "width_bucket(first_seen, $9::text[]::timestamptz[])", ""), fmt.Sprintf(fromEventsSQL, "x WHERE NOT multiple_variants"), figuresSQL+",",
		programPointValueSQL, fmt.Sprintf(perFromEventsSQL, "per"), percentileCapsSQL, fmt.Sprintf(cappedSQL, excludedFromExposuresSQL))
	// staleFromEventsSQL computes the stale shoppers of x from events (pst).
	staleFromEventsSQL = sqlJoin(fmt.Sprintf(fromEventsSQL, "x WHERE NOT multiple_variants AND shopper_id IN (SELECT shopper_id FROM stale)"),
		figuresSQL+",", rollupPointValueSQL, fmt.Sprintf(perFromEventsSQL, "pst")+"\n),")
	// rowsAggregateSQL reads each shopper's rollup row, and computes the stale ones from events.
	rowsAggregateSQL = sqlJoin("WITH "+strings.TrimSpace(staleSQL), staleExposedSQL, staleFromEventsSQL, perFromRowsSQL,
		capsFromIndexesSQL, fmt.Sprintf(cappedSQL, excludedFromRollupsSQL))
	// groupsAggregateSQL reads the groups' sums and corrects them (groups.go).
	groupsAggregateSQL = sqlJoin("WITH "+strings.TrimSpace(staleSQL), staleExposedSQL, staleFromEventsSQL,
		capsFromIndexesSQL, groupsTailSQL)
)
