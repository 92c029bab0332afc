package complements

import "strings"

// The model's SQL, in pieces that the build, the pair table of `analyze affinity` and the
// offline evaluation compose, so that each measure is written once. Each piece is the body of
// common table expressions; placeholders are filled by the composer (see sqlArgs).

// basketsSQL reads each order of [{from}, {until}) as one basket: when it was placed, how many
// distinct products it holds, and those that are not excluded, sorted.
const basketsSQL = `
SELECT order_id, min(occurred_at) AS placed_at, count(DISTINCT sku) AS size,
       array_agg(DISTINCT sku ORDER BY sku) FILTER (WHERE NOT (sku = ANY ({excluded}))) AS skus
FROM order_items
WHERE occurred_at >= {from} AND occurred_at < {until}
GROUP BY order_id`

// countsCTE counts, over the baskets of relation {baskets} of at most {max_basket} products,
// the orders (totals.n, and totals.skipped the larger ones left out), the orders of each product
// (items) and the orders of each pair bought together at least {min_orders} times (pairs, a < b,
// with both products' counts and n alongside).
const countsCTE = `
totals AS (
    SELECT count(*) FILTER (WHERE size <= {max_basket}) AS n,
           count(*) FILTER (WHERE size > {max_basket}) AS skipped
    FROM {baskets}
),
kept AS MATERIALIZED (
    SELECT skus FROM {baskets} WHERE size <= {max_basket} AND cardinality(skus) > 0
),
items AS (
    SELECT sku, count(*) AS c FROM kept, unnest(skus) AS sku GROUP BY sku
),
pair_counts AS (
    SELECT k.skus[i] AS a, k.skus[j] AS b, count(*) AS ab
    FROM kept k,
         generate_series(1, cardinality(k.skus) - 1) AS i,
         generate_series(i + 1, cardinality(k.skus)) AS j
    GROUP BY 1, 2
    HAVING count(*) >= {min_orders}
),
pairs AS (
    SELECT p.a, p.b, p.ab, ia.c AS ca, ib.c AS cb, t.n
    FROM pair_counts p
    JOIN items ia ON ia.sku = p.a
    JOIN items ib ON ib.sku = p.b
    CROSS JOIN totals t
)`

// measuredSQL adds to each pair of relation {pairs} its measures: support, confidence both
// ways, lift, and the log-likelihood ratio G² — 0 for a pair bought together no more often than
// independence predicts (ab·n ≤ ca·cb), since G² is two-sided and a pair that avoids each other
// is no complement however significant.
const measuredSQL = `
SELECT a, b, ab, ca, cb, n,
       ab::float8 / n AS support,
       ab::float8 / ca AS confidence_ab,
       ab::float8 / cb AS confidence_ba,
       ab::float8 * n / (ca::float8 * cb) AS lift,
       CASE WHEN ab::float8 * n > ca::float8 * cb
            THEN complements_llr(ab, ca - ab, cb - ab, n - ca - cb + ab) ELSE 0 END AS llr
FROM {pairs}`

// rankedCTE turns the measured pairs of relation {measured} into each product's complements:
// pairs bought together more often than by chance (lift above 1) that pass the thresholds,
// ranked by G² (the strength of the evidence that they go together), then lift, then SKU in
// byte order. The caller keeps rank <= max_complements.
const rankedCTE = `
directed AS (
    SELECT a AS sku, b AS complement, ab, ca AS sku_orders, cb AS complement_orders,
           support, confidence_ab AS confidence, lift, llr
    FROM {measured}
    UNION ALL
    SELECT b, a, ab, cb, ca, support, confidence_ba, lift, llr FROM {measured}
),
ranked AS (
    SELECT sku, complement, ab AS orders, sku_orders, complement_orders, support, confidence, lift, llr,
           row_number() OVER (PARTITION BY sku ORDER BY llr DESC, lift DESC, complement COLLATE "C") AS rank
    FROM directed
    WHERE lift > 1 AND ab >= {min_orders} AND confidence >= {min_confidence}
      AND lift >= {min_lift} AND llr >= {min_llr}
)`

// fill replaces each {name} of q by its value.
func fill(q string, names map[string]string) string {
	pairs := make([]string, 0, 2*len(names))
	for k, v := range names {
		pairs = append(pairs, "{"+k+"}", v)
	}
	return strings.NewReplacer(pairs...).Replace(q)
}
