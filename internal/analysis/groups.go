package analysis

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/jmoiron/sqlx"
)

// The groups form of the aggregate statement (statement.go). The rollup job keeps, per
// variant and day of first exposure, the exact sums of every figure over the shoppers' rows
// (analysis_rollup_groups). A report needs the sums of capped values over its units, so it
// corrects the stored sums where they differ:
//
//   - the stale shoppers (staleSQL): their rows' sums come out (sr), and their figures computed
//     from events go in, capped (per);
//   - the shoppers with a value beyond a cap (ext): their uncapped sums come out and their
//     capped ones go in.
//
// The caps are the pooled percentiles of all units, as percentile_cont computes them: each is
// read from two order statistics, which lie among the few largest or smallest values. Those
// come from the partial indexes of non-zero values, merged with the zeros (counted, not
// indexed) and the stale units' values. Every shopper beyond a cap is among them too, except
// when a cap excludes 0 (fewer zeros than the capped share), when the units at 0 are all
// capped and are read by a scan of the phase's rows.
//
// Removed sums are exact (numeric), so that taking a large uncapped value out cannot lose the
// small rest to rounding; only the capped values, which are bounded, are summed as float8.

// groupMetrics are the capped metrics: the name of their caps, the rollup column holding the
// value, the column of pst (stale units) or expression, the parameter with the units at 0,
// the group sum of the non-zero units, and the condition under which the metric is capped.
var groupMetrics = []struct {
	name, rollup, per, zeros, nz, when string
}{
	{"rev", "revenue", "revenue", "$15", "revenue_nz", "true"},
	{"cost", "cost", "cost", "$16", "cost_nz", "true"},
	{"net", "net", "revenue - cost", "$17", "net_nz", "true"},
	{"pre", "pre_revenue", "pre", "$18", "pre_nz", "$7::float8 > 0"},
}

// capsFromIndexesSQL finds the caps (a caps CTE, as percentileCapsSQL makes) from the indexes
// of the largest and smallest values, the zero counts and the stale units (pst), and the rows
// of the stale shoppers (sr).
var capsFromIndexesSQL = func() string {
	var b strings.Builder
	b.WriteString(`
sr AS MATERIALIZED (
    SELECT r.* FROM stale s JOIN analysis_rollups r ON r.experiment_key = $1 AND r.phase = $2 AND r.shopper_id = s.shopper_id
),`)
	// The candidates: the non-zero values of the units read from rows, from each end. They are
	// read through the indexes with as many more as there are stale rows, then those are left
	// out: left out first, the planner would not trust the index to keep the order.
	for _, m := range groupMetrics {
		for _, end := range []struct{ name, order, limit string }{{"lo", "", "$12"}, {"hi", " DESC", "$13"}} {
			fmt.Fprintf(&b, `
%[1]s_%[2]s AS MATERIALIZED (
    SELECT * FROM (
        SELECT r.* FROM analysis_rollups r
        WHERE r.experiment_key = $1 AND r.phase = $2 AND r.%[3]s <> 0 AND r.state = 'unit'
          AND $8::float8 IS NOT NULL AND %[4]s
        ORDER BY r.%[3]s%[5]s LIMIT %[6]s + 1 + $19) c
    WHERE NOT EXISTS (SELECT 1 FROM stale s WHERE s.shopper_id = c.shopper_id)
),`, end.name, m.name, m.rollup, m.when, end.order, end.limit)
		}
	}
	// The order statistics each cap needs, among candidates, zeros and stale units.
	b.WriteString(`
os AS MATERIALIZED (
    SELECT`)
	for i, m := range groupMetrics {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `
        (SELECT array_agg(v ORDER BY v) FROM (SELECT v FROM (
            SELECT %[2]s::float8 AS v FROM lo_%[1]s
            UNION ALL SELECT 0 FROM generate_series(1, LEAST(%[4]s, $12 + 1))
            UNION ALL SELECT %[3]s FROM pst) c ORDER BY v OFFSET $11 LIMIT $12 - $11 + 1) o) AS %[1]s_lo,
        (SELECT array_agg(v ORDER BY v) FROM (SELECT v FROM (
            SELECT %[2]s::float8 AS v FROM hi_%[1]s
            UNION ALL SELECT 0 FROM generate_series(1, LEAST(%[4]s, $13 + 1))
            UNION ALL SELECT %[3]s FROM pst) c ORDER BY v DESC OFFSET $14 LIMIT $13 - $14 + 1) o) AS %[1]s_hi`,
			m.name, m.rollup, m.per, m.zeros)
	}
	b.WriteString(`
),
caps AS MATERIALIZED (
    SELECT rev, cost, net, pre, rev[1] AS rev_lo, rev[2] AS rev_hi, cost[1] AS cost_lo, cost[2] AS cost_hi,
           net[1] AS net_lo, net[2] AS net_hi, pre[1] AS pre_lo, pre[2] AS pre_hi
    FROM (SELECT`)
	for i, m := range groupMetrics {
		if i > 0 {
			b.WriteString(",")
		}
		// percentile_cont's interpolation: first + (h − floor h)·(second − first), h = q·(n − 1).
		fmt.Fprintf(&b, `
        CASE WHEN $8::float8 IS NULL OR $10 = 0 OR NOT (%[2]s) THEN NULL ELSE ARRAY[
            CASE WHEN $12 > $11 THEN %[1]s_lo[1] + (((1 - $8::float8) * ($10 - 1) - $11) * (%[1]s_lo[2] - %[1]s_lo[1])) ELSE %[1]s_lo[1] END,
            CASE WHEN $13 > $14 THEN %[1]s_hi[1] + (($8::float8 * ($10 - 1) - ($10 - 1 - $13)) * (%[1]s_hi[2] - %[1]s_hi[1])) ELSE %[1]s_hi[1] END]
        END AS %[1]s`, m.name, m.when)
	}
	b.WriteString(`
    FROM os) c
),`)
	return b.String()
}()

// groupsTailSQL follows the caps in groupsAggregateSQL: the stored sums, corrected.
var groupsTailSQL = func() string {
	var b strings.Builder
	var zeroClamped, lists, beyond []string
	for _, m := range groupMetrics {
		zeroClamped = append(zeroClamped, fmt.Sprintf("%[1]s_lo > 0 OR %[1]s_hi < 0", m.name))
		lists = append(lists, "SELECT * FROM lo_"+m.name, "SELECT * FROM hi_"+m.name)
		beyond = append(beyond, fmt.Sprintf("c.%[2]s::float8 < caps.%[1]s_lo OR c.%[2]s::float8 > caps.%[1]s_hi", m.name, m.rollup))
	}
	// The units beyond a cap: among the candidates, or, when a cap excludes 0, every unit at 0.
	b.WriteString(`
ext AS (
    SELECT DISTINCT ON (c.shopper_id) c.* FROM (
        ` + strings.Join(lists, "\n        UNION ALL ") + `
        UNION ALL SELECT r.* FROM analysis_rollups r
        WHERE (SELECT COALESCE(` + strings.Join(zeroClamped, " OR ") + `, false) FROM caps)
          AND r.experiment_key = $1 AND r.phase = $2 AND r.state = 'unit'
          AND NOT EXISTS (SELECT 1 FROM stale s WHERE s.shopper_id = r.shopper_id)
    ) c CROSS JOIN caps
    WHERE ` + strings.Join(beyond, "\n       OR ") + `
),`)
	// What comes out of the stored sums, exactly; what goes in, capped.
	row := func(src, sign string) string {
		return fmt.Sprintf(`SELECT variant, (first_seen AT TIME ZONE 'UTC')::date AS day, %[2]s AS sign,
           orders::numeric AS o, cross_sell AS xs, refunded AS rf, revenue::numeric AS r, cost::numeric AS c,
           net::numeric AS n, (CASE WHEN $7::float8 > 0 THEN pre_revenue ELSE 0 END)::numeric AS p
    FROM %[1]s`, src, sign)
	}
	clamp := func(v, m string) string { return fmt.Sprintf("LEAST(GREATEST(%s, caps.%s_lo), caps.%s_hi)", v, m, m) }
	outside := func(v, m string) string { return fmt.Sprintf("(%s < caps.%s_lo OR %s > caps.%s_hi)", v, m, v, m) }
	b.WriteString(`
out_ AS (
    ` + row("ext", "-1") + `
    UNION ALL
    ` + row("sr", "-1") + ` WHERE state = 'unit'
),
in_ AS (
    SELECT e.variant, (e.first_seen AT TIME ZONE 'UTC')::date AS day, 1 AS sign, false AS fe,
           e.orders::float8 AS o, e.cross_sell AS xs, e.refunded AS rf,
           ` + clamp("e.revenue::float8", "rev") + ` AS r, ` + clamp("e.cost::float8", "cost") + ` AS c,
           ` + clamp("e.net::float8", "net") + ` AS n,
           CASE WHEN $7::float8 > 0 THEN ` + clamp("e.pre_revenue::float8", "pre") + ` ELSE 0 END AS p,
           ` + outside("e.revenue::float8", "rev") + ` AS rev_capped, ` + outside("e.cost::float8", "cost") + ` AS cost_capped,
           ` + outside("e.net::float8", "net") + ` AS net_capped, ` + outside("e.pre_revenue::float8", "pre") + ` AS pre_capped,
           NULL::char(3) AS cur_min, NULL::char(3) AS cur_max
    FROM ext e CROSS JOIN caps
    UNION ALL
    SELECT p.variant, p.day, 1, true, p.orders::float8, p.cross_sell, p.refunded,
           ` + clamp("p.revenue", "rev") + `, ` + clamp("p.cost", "cost") + `, ` + clamp("p.revenue - p.cost", "net") + `,
           ` + clamp("p.pre", "pre") + `,
           ` + outside("p.revenue", "rev") + `, ` + outside("p.cost", "cost") + `, ` + outside("p.revenue - p.cost", "net") + `,
           ` + outside("p.pre", "pre") + `, p.cur_min, p.cur_max
    FROM pst p CROSS JOIN caps
),
sums_out AS (
    SELECT variant, day, ` + sumsSQL("           ") + `
    FROM out_ GROUP BY variant, day
),
sums_in AS (
    SELECT variant, day, ` + sumsSQL("           ") + `,
           count(*) FILTER (WHERE fe) AS from_events,
           count(*) FILTER (WHERE rev_capped) AS revenue_capped, count(*) FILTER (WHERE cost_capped) AS cost_capped,
           count(*) FILTER (WHERE net_capped) AS net_capped, count(*) FILTER (WHERE pre_capped) AS pre_capped,
           min(cur_min) AS cur_min, max(cur_max) AS cur_max
    FROM in_ GROUP BY variant, day
),
g AS (SELECT * FROM analysis_rollup_groups WHERE experiment_key = $1 AND phase = $2 AND state = 'unit'),
k AS (SELECT variant, day FROM g UNION SELECT variant, day FROM sums_out UNION SELECT variant, day FROM sums_in),
fin AS (
    SELECT k.variant, k.day,`)
	for _, s := range groupSums {
		stored := fmt.Sprintf("COALESCE(g.%[1]s, 0) + COALESCE(o.%[1]s, 0)", s.col)
		if s.pre {
			stored = fmt.Sprintf("CASE WHEN $7::float8 > 0 THEN COALESCE(g.%[1]s, 0) ELSE 0 END + COALESCE(o.%[1]s, 0)", s.col)
		}
		typ := "float8"
		if s.count {
			typ = "bigint"
		}
		fmt.Fprintf(&b, "\n           (%s)::%s + COALESCE(i.%s, 0) AS %s,", stored, typ, s.col, s.col)
	}
	b.WriteString(`
           COALESCE(i.from_events, 0) AS from_events,
           COALESCE(i.revenue_capped, 0) AS revenue_capped, COALESCE(i.cost_capped, 0) AS cost_capped,
           COALESCE(i.net_capped, 0) AS net_capped, COALESCE(i.pre_capped, 0) AS pre_capped,
           LEAST(g.currency_min, CASE WHEN $7::float8 > 0 THEN g.pre_currency_min END, i.cur_min) AS cur_min,
           GREATEST(g.currency_max, CASE WHEN $7::float8 > 0 THEN g.pre_currency_max END, i.cur_max) AS cur_max
    FROM k LEFT JOIN g ON g.variant = k.variant AND g.day = k.day
    LEFT JOIN sums_out o ON o.variant = k.variant AND o.day = k.day
    LEFT JOIN sums_in i ON i.variant = k.variant AND i.day = k.day
)
SELECT false AS excluded, variant, '' AS segment, day, 0 AS period, units, from_events, cross_sell, converted, refunded,
       orders::bigint AS orders, orders_sq, revenue, revenue_sq, revenue_cu, revenue_nz, revenue_capped, revenue_orders,
       cost, cost_sq, cost_cu, cost_nz, cost_capped, net, net_sq, net_cu, net_nz, net_capped,
       pre, pre_sq, pre_capped, revenue_pre, cost_pre, net_pre,
       COALESCE(cur_min, '') AS cur_min, COALESCE(cur_max, '') AS cur_max,
       (SELECT rev FROM caps) AS cap_revenue, (SELECT cost FROM caps) AS cap_cost,
       (SELECT net FROM caps) AS cap_net, (SELECT pre FROM caps) AS cap_pre
FROM fin WHERE units > 0
UNION ALL
SELECT true, '', '', NULL, 0,
       ` + excludedFromRollupsSQL + `,
       0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
       0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '', '', NULL, NULL, NULL, NULL`)
	return b.String()
}()

// groupCountsSQL counts what the groups form needs to know before it can pick the order
// statistics: the report's units and, among those read from rows, how many are 0 in each
// capped metric. $1 experiment, $2 phase, $3 end of the window, $4 the cursor.
var groupCountsSQL = `WITH ` + strings.TrimSpace(fmt.Sprintf(staleSQLFor, "$4")) + `
sr AS (
    SELECT r.revenue, r.cost, r.net, r.pre_revenue FROM stale s
    JOIN analysis_rollups r ON r.experiment_key = $1 AND r.phase = $2 AND r.shopper_id = s.shopper_id
    WHERE r.state = 'unit'
),
g AS (
    SELECT COALESCE(sum(units), 0) AS units, COALESCE(sum(revenue_nz), 0) AS revenue, COALESCE(sum(cost_nz), 0) AS cost,
           COALESCE(sum(net_nz), 0) AS net, COALESCE(sum(pre_nz), 0) AS pre
    FROM analysis_rollup_groups WHERE experiment_key = $1 AND phase = $2 AND state = 'unit'
),
rows AS (
    SELECT g.units - count(sr.revenue) AS units, g.revenue - count(*) FILTER (WHERE sr.revenue <> 0) AS revenue,
           g.cost - count(*) FILTER (WHERE sr.cost <> 0) AS cost, g.net - count(*) FILTER (WHERE sr.net <> 0) AS net,
           g.pre - count(*) FILTER (WHERE sr.pre_revenue <> 0) AS pre
    FROM g LEFT JOIN sr ON true GROUP BY g.units, g.revenue, g.cost, g.net, g.pre
)
SELECT (SELECT count(*) FROM sr) AS stale_rows,
       rows.units + (SELECT count(*) FROM stale s JOIN exposures x ON x.experiment_key = $1 AND x.phase = $2
                     AND x.shopper_id = s.shopper_id WHERE NOT x.multiple_variants AND x.first_seen < $3) AS units,
       rows.units - rows.revenue AS zero_revenue, rows.units - rows.cost AS zero_cost,
       rows.units - rows.net AS zero_net, rows.units - rows.pre AS zero_pre
FROM rows`

// groupCounts is the result of groupCountsSQL.
type groupCounts struct {
	StaleRows   int64 `db:"stale_rows"`
	Units       int64 `db:"units"`
	ZeroRevenue int64 `db:"zero_revenue"`
	ZeroCost    int64 `db:"zero_cost"`
	ZeroNet     int64 `db:"zero_net"`
	ZeroPre     int64 `db:"zero_pre"`
}

// groupArgs counts the units (groupCountsSQL) and returns the groups form's parameters after
// the first nine: the units, the ranks of the order statistics and the zero counts.
//
// With n units sorted, percentile_cont(q) reads the values at 0-based ranks floor(h) and
// ceil(h), h = q·(n − 1). The lower cap (1 − cap) needs ranks a1, a2 from the bottom; the upper
// cap needs b1, b2, that is n−1−b1 and n−1−b2 from the top (t1 ≥ t2).
func groupArgs(ctx context.Context, q sqlx.QueryerContext, experiment string, phase int, end any, cursor int64, capQ float64) ([]any, error) {
	var c groupCounts
	if err := sqlx.GetContext(ctx, q, &c, groupCountsSQL, experiment, phase, end, cursor); err != nil {
		return nil, fmt.Errorf("counting the units of %q: %w", experiment, err)
	}
	var a1, a2, t1, t2 int64
	if c.Units > 0 && capQ > 0 {
		lo, hi := (1-capQ)*float64(c.Units-1), capQ*float64(c.Units-1)
		a1, a2 = int64(math.Floor(lo)), int64(math.Ceil(lo))
		t1, t2 = c.Units-1-int64(math.Floor(hi)), c.Units-1-int64(math.Ceil(hi))
	}
	return []any{c.Units, a1, a2, t1, t2, c.ZeroRevenue, c.ZeroCost, c.ZeroNet, c.ZeroPre, c.StaleRows}, nil
}
