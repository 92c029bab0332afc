package loyalty

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/validate"
)

// BonusBudgets charges the bonus points of experiments' offers to their budgets
// (internal/offers), in the transaction that credits or takes them back, so that a budget is
// never overspent by concurrent credits. Without one (nil), nothing is charged.
type BonusBudgets interface {
	// ChargeBonus charges a bonus; a strict one that does not fit is refused with an
	// apperr.BudgetExhausted or apperr.ShopperLimit error, which rolls the credit back.
	ChargeBonus(ctx context.Context, tx *sqlx.Tx, b Bonus) error
	// ChargeBonuses charges a batch's bonuses (none strict) as ChargeBonus would one after
	// the other, with fewer statements where it can.
	ChargeBonuses(ctx context.Context, tx *sqlx.Tx, bs []Bonus) error
	// ReturnBonus gives back points taken back from the shopper.
	ReturnBonus(ctx context.Context, tx *sqlx.Tx, experiment, ref string, points int64) error
}

// Bonus is bonus points credited for an experiment's offer.
type Bonus struct {
	Experiment, Variant, ShopperID string
	// Ref names the credit: the order id, or "entry:<id>" for an API earn without one.
	Ref    string
	Points int64
	At     time.Time
	// Strict refuses a bonus that does not fit (an API earn); an order's is recorded as
	// overspent (the order has happened).
	Strict bool
}

// bonusRef is the budget's name for the bonus of an earn entry.
func bonusRef(orderID *string, entryID int64) string {
	if orderID != nil {
		return *orderID
	}
	return fmt.Sprintf("entry:%d", entryID)
}

// chargeBonus charges a credited bonus, when there are budgets.
func chargeBonus(ctx context.Context, tx *sqlx.Tx, budgets BonusBudgets, b Bonus) error {
	if budgets == nil || b.Points <= 0 {
		return nil
	}
	return budgets.ChargeBonus(ctx, tx, b)
}

// returnBonus gives back to its budget the points a reversal took back from an experiment's
// bonus earn.
func returnBonus(ctx context.Context, tx *sqlx.Tx, budgets BonusBudgets, o original, taken int64) error {
	if budgets == nil || o.Experiment == nil || o.Kind != KindEarn || taken <= 0 {
		return nil
	}
	return budgets.ReturnBonus(ctx, tx, *o.Experiment, bonusRef(o.OrderID, o.ID), taken)
}

// checkOffer checks the experiment and variant of an earn that is an offer's bonus: both or
// neither, each a key.
func checkOffer(p *apperr.Problems, experiment, variant string) {
	switch {
	case experiment == "" && variant == "":
		return
	case experiment == "":
		p.Add("experiment", "required", "the bonus of a variant needs its experiment")
	case variant == "":
		p.Add("variant", "required", "the bonus of an experiment's offer needs the shopper's variant")
	}
	for _, f := range [][2]string{{"experiment", experiment}, {"variant", variant}} {
		if f[1] != "" && validate.Text(p, f[0], f[1]) && !keyPattern.MatchString(f[1]) {
			p.Add(f[0], "invalid_format", "must be a key (^[a-z0-9][a-z0-9_-]{0,63}$)")
		}
	}
}

var keyPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
