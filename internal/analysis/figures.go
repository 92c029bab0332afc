package analysis

import "strings"

// The per-shopper figures of SPEC §6 are defined once, here, as SQL: a report computes them
// from events for the shoppers it cannot read from the rollups (or for all of them), and the
// rollup job computes the rollups' rows with the very same text, so that the two cannot drift
// apart.
//
// figuresSQL needs a relation u with one row per exposed shopper to compute, with the columns
//
//	experiment_key, phase, shopper_id, variant, first_seen,
//	until    (the end of the shopper's window, exclusive),
//	lookback (an interval: how far before first_seen events count as pre-exposure revenue),
//	targets  (text[]: the SKUs whose purchase is a cross-sell, for a variant with fixed products),
//	learned  (boolean: the variant's products are learned, chosen per request; its cross-sell
//	          is a purchase of a product offered to that shopper, as exposure_offers records,
//	          in an order at or after it was first offered)
//
// and defines, keyed by (experiment_key, phase, shopper_id), only for shoppers with anything
// to count:
//
//	ev:    orders, refunded, revenue (order amounts − refunds), discount, pre_revenue, the
//	       smallest and largest currency after (cur_*) and before (pre_cur_*) first exposure,
//	       and last_at, the latest event counted after first exposure;
//	xs:    the shoppers with an order line holding a target SKU (learned: a SKU offered to them
//	       before), and its latest time;
//	bonus: the loyalty_points bonus the shopper's variant paid, reversals included, and the
//	       latest entry's time.
//
// Events count from first exposure up to until; order lines and ledger entries likewise. Each
// source is reduced to one row per shopper with a join on shopper_id bounded by that shopper's
// own window.
const figuresSQL = `
ev AS (
    SELECT u.experiment_key, u.phase, u.shopper_id,
           count(*) FILTER (WHERE e.type = 'order_completed' AND e.occurred_at >= u.first_seen) AS orders,
           COALESCE(bool_or(e.type = 'order_refunded' AND e.occurred_at >= u.first_seen), false) AS refunded,
           COALESCE(sum(CASE WHEN e.type = 'order_completed' THEN e.amount ELSE -e.amount END)
                    FILTER (WHERE e.occurred_at >= u.first_seen), 0) AS revenue,
           COALESCE(sum(e.discount) FILTER (WHERE e.type = 'order_completed' AND e.occurred_at >= u.first_seen), 0) AS discount,
           COALESCE(sum(CASE WHEN e.type = 'order_completed' THEN e.amount ELSE -e.amount END)
                    FILTER (WHERE e.occurred_at < u.first_seen), 0) AS pre_revenue,
           min(e.currency) FILTER (WHERE e.occurred_at >= u.first_seen) AS cur_min,
           max(e.currency) FILTER (WHERE e.occurred_at >= u.first_seen) AS cur_max,
           min(e.currency) FILTER (WHERE e.occurred_at < u.first_seen) AS pre_cur_min,
           max(e.currency) FILTER (WHERE e.occurred_at < u.first_seen) AS pre_cur_max,
           max(e.occurred_at) FILTER (WHERE e.occurred_at >= u.first_seen) AS last_at
    FROM u JOIN events e ON e.shopper_id = u.shopper_id
     AND e.occurred_at >= u.first_seen - u.lookback AND e.occurred_at < u.until
    WHERE e.type IN ('order_completed', 'order_refunded')
    GROUP BY u.experiment_key, u.phase, u.shopper_id
),
xs AS (
    SELECT u.experiment_key, u.phase, u.shopper_id, max(i.occurred_at) AS last_at
    FROM u JOIN order_items i ON i.shopper_id = u.shopper_id
     AND i.occurred_at >= u.first_seen AND i.occurred_at < u.until
    LEFT JOIN exposure_offers f ON u.learned
     AND f.experiment_key = u.experiment_key AND f.phase = u.phase AND f.shopper_id = u.shopper_id
    WHERE CASE WHEN u.learned
               THEN EXISTS (SELECT 1 FROM unnest(f.skus, f.offered_at) AS o(sku, at) WHERE o.sku = i.sku AND o.at <= i.occurred_at)
               ELSE i.sku = ANY(u.targets) END
    GROUP BY u.experiment_key, u.phase, u.shopper_id
),
bonus AS (
    SELECT u.experiment_key, u.phase, u.shopper_id, sum(l.points) AS points, max(l.created_at) AS last_at
    FROM u JOIN loyalty_entries l ON l.shopper_id = u.shopper_id
     AND l.created_at >= u.first_seen AND l.created_at < u.until
    LEFT JOIN loyalty_entries o ON o.id = l.reverses
    WHERE l.kind IN ('earn', 'reverse')
      ` + bonusOfVariantSQL + `
    GROUP BY u.experiment_key, u.phase, u.shopper_id
)`

// learnedVariantsSQL lists, per experiment phase, the keys of its variants whose products are
// learned (source complements, from the phase's own variants): the variants whose cross-sell
// figuresSQL judges on what each shopper was offered.
const learnedVariantsSQL = `
    SELECT p.experiment_key, p.phase, array_agg(v ->> 'key') AS keys
    FROM experiment_phases p, jsonb_array_elements(p.variants) v
    WHERE v -> 'strategy' ->> 'source' = 'complements'
    GROUP BY p.experiment_key, p.phase`

// bonusOfVariantSQL is figuresSQL's rule for which ledger entries are the bonus of u's
// variant: those its experiment and variant paid (a reversal through the entry it reverses).
// The holdout's comparison counts every experiment's bonus instead (holdout_sql.go).
const bonusOfVariantSQL = `AND COALESCE(l.experiment, o.experiment) = u.experiment_key
      AND COALESCE(l.variant, o.variant) = u.variant`

// figuresJoin joins a relation aliased u with the figures of figuresSQL, which it must follow.
const figuresJoin = `
    LEFT JOIN ev ON ev.experiment_key = u.experiment_key AND ev.phase = u.phase AND ev.shopper_id = u.shopper_id
    LEFT JOIN xs ON xs.experiment_key = u.experiment_key AND xs.phase = u.phase AND xs.shopper_id = u.shopper_id
    LEFT JOIN bonus b ON b.experiment_key = u.experiment_key AND b.phase = u.phase AND b.shopper_id = u.shopper_id`

// sqlJoin joins the parts of a statement with newlines, trimming each, for readable --sql output.
func sqlJoin(parts ...string) string {
	for i, p := range parts {
		parts[i] = strings.Trim(p, "\n")
	}
	return strings.Join(parts, "\n")
}
