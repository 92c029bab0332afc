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
	set, err := unboundedBonuses(ctx, tx, bonuses)
	if err != nil {
		return err
	}
	if set == nil {
		for _, bonus := range bonuses {
			if err := b.ChargeBonus(ctx, tx, bonus); err != nil {
				return err
			}
		}
		return nil
	}
	return chargeUnbounded(ctx, tx, set)
}

// unboundedBonuses returns the spends of the bonuses when none can meet a bound, each with the
// variant Charge would record (none when the experiment lacks it), leaving out those of
// experiments that do not exist (Charge records nothing for them); nil when one is bounded.
func unboundedBonuses(ctx context.Context, tx *sqlx.Tx, bonuses []loyalty.Bonus) ([]Spend, error) {
	defs := map[[2]string]*definition{}
	set := make([]Spend, 0, len(bonuses))
	for _, bonus := range bonuses {
		if bonus.Strict {
			return nil, nil
		}
		if bonus.Points <= 0 || bonus.Experiment == "" {
			continue
		}
		key := [2]string{bonus.Experiment, bonus.Variant}
		d, seen := defs[key]
		if !seen {
			var err error
			if d, err = loadDefinition(ctx, tx, bonus.Experiment, bonus.Variant); err != nil {
				return nil, err
			}
			defs[key] = d
		}
		if d == nil {
			continue
		}
		s := Spend{Experiment: bonus.Experiment, Variant: bonus.Variant, ShopperID: bonus.ShopperID,
			Kind: experiments.BudgetPoints, Amount: bonus.Points, Ref: bonus.Ref, At: bonus.At}
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

// chargeUnbounded records spends no bound applies to (duplicates of a recorded spend charge
// nothing, as in Charge) and adds the new ones to the budgets of their experiments and
// variants, whose rows are locked in key order, the order Charge locks them in.
func chargeUnbounded(ctx context.Context, tx *sqlx.Tx, set []Spend) error {
	if len(set) == 0 {
		return nil
	}
	var exps, variants, shoppers, refs, ats []string
	var amounts []int64
	for _, s := range set {
		exps, variants, shoppers = append(exps, s.Experiment), append(variants, s.Variant), append(shoppers, s.ShopperID)
		refs, amounts, ats = append(refs, s.Ref), append(amounts, s.Amount), append(ats, s.At.Format(time.RFC3339Nano))
	}
	_, err := tx.ExecContext(ctx, `WITH s AS (
			INSERT INTO offer_spends (experiment, variant, shopper_id, kind, ref, amount, at)
			SELECT e, v, sh, $7, r, a, t FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[])
				WITH ORDINALITY AS x(e, v, sh, r, a, t, ord) ORDER BY ord
			ON CONFLICT (experiment, kind, ref) DO NOTHING
			RETURNING experiment, variant, amount
		), scoped AS (
			SELECT experiment, '' AS variant, amount FROM s
			UNION ALL SELECT experiment, variant, amount FROM s WHERE variant <> ''
		)
		INSERT INTO offer_budgets AS b (experiment, variant, kind, currency, spent)
		SELECT experiment, variant, $7, '', sum(amount)::bigint FROM scoped
		GROUP BY experiment, variant ORDER BY experiment, variant
		ON CONFLICT (experiment, variant, kind, currency) DO UPDATE SET spent = b.spent + EXCLUDED.spent`,
		pq.StringArray(exps), pq.StringArray(variants), pq.StringArray(shoppers), pq.StringArray(refs),
		pq.Int64Array(amounts), pq.StringArray(ats), string(experiments.BudgetPoints))
	if err != nil {
		return fmt.Errorf("charging the bonuses of a batch to their budgets: %w", err)
	}
	return nil
}
