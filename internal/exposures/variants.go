package exposures

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Variant is the one variant of an experiment's current phase that a shopper was exposed to.
type Variant struct {
	Experiment string `db:"experiment"`
	Phase      int    `db:"phase"`
	ShopperID  string `db:"shopper_id"`
	Variant    string `db:"variant"`
}

// Pair names an experiment and a shopper whose variant in it is wanted.
type Pair struct {
	Experiment string
	ShopperID  string
}

// RunningVariants reads the variant each of the shoppers was exposed to in the current phase
// of every running experiment, ordered by shopper then experiment. See VariantsOf for what
// counts.
func RunningVariants(ctx context.Context, q sqlx.QueryerContext, shoppers []string) ([]Variant, error) {
	if len(shoppers) == 0 {
		return nil, nil
	}
	var out []Variant
	if err := sqlx.SelectContext(ctx, q, &out, runningVariantsSQL, pq.StringArray(shoppers)); err != nil {
		return nil, fmt.Errorf("reading the variants of %d shoppers in running experiments: %w", len(shoppers), err)
	}
	return out, nil
}

// VariantsOf reads the variant each pair's shopper was exposed to in the current phase of the
// pair's experiment, whatever the experiment's status, ordered by shopper then experiment.
//
// Exposures count whether merged into exposures or still staged in exposure_log: the
// background merge may trail assignment by a minute or more under load (docs/assignment.md),
// and whoever acts on an exposure — a bonus credited, a discount charged to a budget — must
// not depend on how far it has got. Both tables are read in one statement, so in one snapshot:
// a row the merge moves meanwhile is seen in exactly one of them. A shopper seen in two
// variants of a phase, merged or staged or one of each, is in none and is left out, as
// analysis leaves them out.
func VariantsOf(ctx context.Context, q sqlx.QueryerContext, pairs []Pair) ([]Variant, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	keys, shoppers := make([]string, len(pairs)), make([]string, len(pairs))
	for i, p := range pairs {
		keys[i], shoppers[i] = p.Experiment, p.ShopperID
	}
	var out []Variant
	if err := sqlx.SelectContext(ctx, q, &out, pairVariantsSQL, pq.StringArray(shoppers), pq.StringArray(keys)); err != nil {
		return nil, fmt.Errorf("reading the variants of %d experiment and shopper pairs: %w", len(pairs), err)
	}
	return out, nil
}

// variantsSQL reads the exposures of the shoppers in $1 to the current phase of the
// experiments (x) that %[1]s admits, merged (s is an exposures row) and staged (s is an
// exposure_log row, u one of its exposures), and keeps one variant per experiment and shopper
// where there is exactly one. Staged rows are found by a scan of exposure_log, which has no
// index on shopper_id on purpose: it is a queue that the merge empties, and an index would
// slow the COPY that staging depends on.
const variantsSQL = `WITH seen AS (
		SELECT x.key, x.phase, s.shopper_id, s.variant, s.multiple_variants AS multiple
		FROM exposures s JOIN experiments x ON x.key = s.experiment_key AND x.phase = s.phase
		WHERE s.shopper_id = ANY($1::text[]) AND %[1]s
		UNION ALL
		SELECT x.key, x.phase, s.shopper_id, u.variant, false
		FROM exposure_log s CROSS JOIN LATERAL unnest(s.experiments, s.phases, s.variants) AS u(key, phase, variant)
		JOIN experiments x ON x.key = u.key AND x.phase = u.phase
		WHERE s.shopper_id = ANY($1::text[]) AND %[1]s
	)
	SELECT key AS experiment, phase, shopper_id, min(variant) AS variant FROM seen
	GROUP BY key, phase, shopper_id
	HAVING NOT bool_or(multiple) AND count(DISTINCT variant) = 1
	ORDER BY shopper_id, key`

var (
	runningVariantsSQL = fmt.Sprintf(variantsSQL, `x.status = 'running'`)
	pairVariantsSQL    = fmt.Sprintf(variantsSQL, `(x.key, s.shopper_id) IN (SELECT * FROM unnest($2::text[], $1::text[]))`)
)
