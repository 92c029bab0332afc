package offers

import (
	"context"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/loyalty"
)

// ChargeBonus implements loyalty.BonusBudgets: bonus points charged to the points budgets of
// their experiment and variant. A strict bonus (an API earn) must name a variant the
// experiment has, and is refused when it does not fit.
func (b *Budgets) ChargeBonus(ctx context.Context, tx *sqlx.Tx, bonus loyalty.Bonus) error {
	if bonus.Strict {
		if err := checkVariant(ctx, tx, bonus.Experiment, bonus.Variant); err != nil {
			return err
		}
	}
	_, err := b.Charge(ctx, tx, bonusSpend(bonus))
	return err
}

// bonusSpend is the spend of a bonus's points on its experiment's points budget.
func bonusSpend(bonus loyalty.Bonus) Spend {
	return Spend{Experiment: bonus.Experiment, Variant: bonus.Variant, ShopperID: bonus.ShopperID,
		Kind: experiments.BudgetPoints, Amount: bonus.Points, Ref: bonus.Ref, At: bonus.At, Strict: bonus.Strict}
}

// ReturnBonus implements loyalty.BonusBudgets: points taken back go back to the budgets.
func (b *Budgets) ReturnBonus(ctx context.Context, tx *sqlx.Tx, experiment, ref string, points int64) error {
	return b.Return(ctx, tx, experiment, experiments.BudgetPoints, ref, points)
}

// checkVariant refuses a bonus for an experiment or variant that does not exist.
func checkVariant(ctx context.Context, tx *sqlx.Tx, experiment, variant string) error {
	d, err := loadDefinition(ctx, tx, experiment, variant)
	if err != nil {
		return err
	}
	var p apperr.Problems
	switch {
	case d == nil:
		p.Add("experiment", "unknown_experiment", "no experiment %q", experiment)
	case d.variant == nil:
		p.Add("variant", "unknown_variant", "experiment %q has no variant %q", experiment, variant)
	}
	return p.Err()
}
