package offers

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/loyalty"
)

// ChargeBonuses implements loyalty.BonusBudgets: the bonuses of a crediting batch, charged as
// ChargeBonus would charge them one after the other. When no experiment among them bounds
// points (no points budget, no per-shopper limit, on the experiment or the variant) and none
// is strict, nothing can go over or close, so the charges commute: they are recorded and
// summed into their budgets with two statements for the whole batch. Otherwise they go one by
// one, in order, since each may find its budget changed by the ones before.
func (b *Budgets) ChargeBonuses(ctx context.Context, tx *sqlx.Tx, bonuses []loyalty.Bonus) error {
	spends := make([]Spend, 0, len(bonuses))
	for _, bonus := range bonuses {
		if bonus.Strict {
			spends = nil
			break
		}
		spends = append(spends, bonusSpend(bonus))
	}
	var set []Spend
	if spends != nil {
		var err error
		if set, err = unboundedSpends(ctx, tx, spends); err != nil {
			return err
		}
	}
	if set == nil {
		for _, bonus := range bonuses {
			if err := b.ChargeBonus(ctx, tx, bonus); err != nil {
				return err
			}
		}
		return nil
	}
	_, err := chargeUnbounded(ctx, tx, experiments.BudgetPoints, set)
	return err
}

// unboundedSpends returns the spends (none strict, all of one kind) when none can meet a
// bound, each with the variant Charge would record (none when the experiment lacks it),
// leaving out those Charge records nothing for (no amount, an experiment that does not
// exist); nil when one is bounded.
func unboundedSpends(ctx context.Context, tx *sqlx.Tx, spends []Spend) ([]Spend, error) {
	defs := map[[2]string]*definition{}
	set := make([]Spend, 0, len(spends))
	for _, s := range spends {
		if s.Amount <= 0 || s.Experiment == "" {
			continue
		}
		key := [2]string{s.Experiment, s.Variant}
		d, seen := defs[key]
		if !seen {
			var err error
			if d, err = loadDefinition(ctx, tx, s.Experiment, s.Variant); err != nil {
				return nil, err
			}
			defs[key] = d
		}
		if d == nil {
			continue
		}
		if d.variant == nil {
			s.Variant = ""
		}
		if len(d.shopperLimits(s.Variant)) > 0 || d.limitOf("", &s) >= 0 || (s.Variant != "" && d.limitOf(s.Variant, &s) >= 0) {
			return nil, nil
		}
		set = append(set, s)
	}
	return set, nil
}

// chargeUnbounded records spends of one kind no bound applies to (duplicates of a recorded
// spend charge nothing, as in Charge; of two in set with one ref, the first is recorded) and
// adds the new ones to the budgets of their experiments and variants in their currencies,
// whose rows are locked in key order, the order Charge locks them in. It returns the refs of
// the spends recorded.
func chargeUnbounded(ctx context.Context, tx *sqlx.Tx, kind experiments.BudgetKind, set []Spend) ([]string, error) {
	if len(set) == 0 {
		return nil, nil
	}
	var exps, variants, shoppers, refs, ats, currencies []string
	var amounts, bases []int64
	for _, s := range set {
		exps, variants, shoppers = append(exps, s.Experiment), append(variants, s.Variant), append(shoppers, s.ShopperID)
		refs, amounts, ats = append(refs, s.Ref), append(amounts, s.Amount), append(ats, s.At.Format(time.RFC3339Nano))
		currencies, bases = append(currencies, s.Currency), append(bases, s.Base)
	}
	var recorded []string
	err := tx.SelectContext(ctx, &recorded, `WITH s AS (
			INSERT INTO offer_spends (experiment, variant, shopper_id, kind, ref, amount, at, currency, base)
			SELECT e, v, sh, $7, r, a, t, c, b FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],
				$6::timestamptz[], $8::text[], $9::bigint[]) WITH ORDINALITY AS x(e, v, sh, r, a, t, c, b, ord) ORDER BY ord
			ON CONFLICT (experiment, kind, ref) DO NOTHING
			RETURNING experiment, variant, currency, amount, ref
		), scoped AS (
			SELECT experiment, '' AS variant, currency, amount FROM s
			UNION ALL SELECT experiment, variant, currency, amount FROM s WHERE variant <> ''
		), charged AS (
			INSERT INTO offer_budgets AS b (experiment, variant, kind, currency, spent)
			SELECT experiment, variant, $7, currency, sum(amount)::bigint FROM scoped
			GROUP BY experiment, variant, currency ORDER BY experiment, variant, currency
			ON CONFLICT (experiment, variant, kind, currency) DO UPDATE SET spent = b.spent + EXCLUDED.spent
		)
		SELECT ref FROM s`,
		pq.StringArray(exps), pq.StringArray(variants), pq.StringArray(shoppers), pq.StringArray(refs),
		pq.Int64Array(amounts), pq.StringArray(ats), string(kind), pq.StringArray(currencies), pq.Int64Array(bases))
	if err != nil {
		return nil, fmt.Errorf("charging the %s spends of a batch to their budgets: %w", kind, err)
	}
	return recorded, nil
}
