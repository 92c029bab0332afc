package offers

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/experiments"
)

// Budgets charges offer budgets where money moves (docs/offers.md): the discount of an order
// won by an offer (the spend consumer), and the bonus points credited for one (loyalty). Each
// spend is recorded and charged in the caller's transaction, under the lock of each budget
// row it charges, so that concurrent spends are counted one after another: a strict spend
// that does not fit is refused, and none is ever counted twice.
type Budgets struct {
	db  *sqlx.DB
	now func() time.Time
}

// NewBudgets returns the budgets kept in db; now is the clock (time.Now when nil).
func NewBudgets(db *sqlx.DB, now func() time.Time) *Budgets {
	if now == nil {
		now = time.Now
	}
	return &Budgets{db: db, now: now}
}

// Spend is one charge to an experiment's budgets.
type Spend struct {
	Experiment string
	Variant    string // the shopper's variant; "" when unknown (the experiment's budget only)
	ShopperID  string
	Kind       experiments.BudgetKind
	Amount     int64  // minor units of Currency, or points
	Currency   string // a discount's; "" for points
	// Base is what a refund is a share of: the order's amount, for a discount.
	Base int64
	// Ref names the spend: the order id, or an API earn's idempotency key. One spend per
	// (experiment, kind, ref): the same again is a duplicate and charges nothing.
	Ref string
	At  time.Time
	// Strict refuses a spend that does not fit a budget or a per-shopper limit (an API earn)
	// instead of recording the excess as overspent (an order, which has happened).
	Strict bool
}

// SpendResult is what a spend did.
type SpendResult struct {
	Duplicate bool
	// Over is the part no budget or per-shopper limit had room for (orders only).
	Over int64
	// Closed is set when the spend closed a budget or the shopper's offer.
	Closed bool
}

// definition is what a spend reads of its experiment.
type definition struct {
	exp     experiments.Definition
	variant *experiments.Variant // nil when the spend names none, or one no longer defined
}

// loadDefinition reads what a spend needs of experiment key, and holds the experiment's row
// (FOR SHARE) until the spend's transaction ends: a budget or limit added meanwhile waits for
// the spends that read the definition without it, rather than letting a batch of them charged
// as unbounded run past it.
func loadDefinition(ctx context.Context, tx *sqlx.Tx, key, variant string) (*definition, error) {
	var row struct {
		Variants []byte `db:"variants"`
		Budget   []byte `db:"budget"`
	}
	err := tx.GetContext(ctx, &row, `SELECT variants, budget FROM experiments WHERE key = $1 FOR SHARE`, key)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the budgets of experiment %q: %w", key, err)
	}
	d := &definition{exp: experiments.Definition{Key: key}}
	if err := unmarshalOptional(row.Variants, &d.exp.Variants); err != nil {
		return nil, err
	}
	if err := unmarshalOptional(row.Budget, &d.exp.Budget); err != nil {
		return nil, err
	}
	for i := range d.exp.Variants {
		if d.exp.Variants[i].Key == variant && variant != "" {
			d.variant = &d.exp.Variants[i]
		}
	}
	return d, nil
}

// budgetOf is the budget of a scope: the experiment's ("") or the variant's.
func (d *definition) budgetOf(scope string) *experiments.Budget {
	if scope == "" {
		return d.exp.Budget
	}
	if d.variant != nil {
		return d.variant.Budget
	}
	return nil
}

// limitOf is the scope's limit of the spend's kind and currency, or -1 for none.
func (d *definition) limitOf(scope string, s *Spend) int64 {
	b := d.budgetOf(scope)
	switch {
	case b == nil:
	case s.Kind == experiments.BudgetDiscount && b.Discount != nil && b.Discount.Currency == s.Currency:
		return b.Discount.Amount
	case s.Kind == experiments.BudgetPoints && b.Points != nil:
		return *b.Points
	}
	return -1
}

// Charge records a spend and charges it, in tx, to the experiment's budget and to the
// variant's. A strict spend that does not fit is refused with BudgetExhausted or ShopperLimit
// (the caller's transaction should then roll back); otherwise the excess is recorded as over.
// Locks are taken in one order — the shopper's, then the experiment's budget, then the
// variant's — so that concurrent spends queue rather than deadlock.
func (b *Budgets) Charge(ctx context.Context, tx *sqlx.Tx, s Spend) (SpendResult, error) {
	var res SpendResult
	if s.Amount <= 0 || s.Experiment == "" {
		return res, nil
	}
	d, err := loadDefinition(ctx, tx, s.Experiment, s.Variant)
	if err != nil || d == nil {
		return res, err
	}
	if d.variant == nil {
		s.Variant = ""
	}
	var id int64
	err = tx.GetContext(ctx, &id, `INSERT INTO offer_spends (experiment, variant, shopper_id, kind, ref, amount, currency, base, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (experiment, kind, ref) DO NOTHING RETURNING id`,
		s.Experiment, s.Variant, s.ShopperID, string(s.Kind), s.Ref, s.Amount, s.Currency, s.Base, s.At)
	if errors.Is(err, sql.ErrNoRows) {
		res.Duplicate = true
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("recording a spend of %s: %w", s.Experiment, err)
	}
	over, closed, err := b.chargeShopper(ctx, tx, d, &s, id)
	if err != nil {
		return res, err
	}
	res.Over, res.Closed = over, closed
	scopes := []string{""}
	if s.Variant != "" {
		scopes = append(scopes, s.Variant)
	}
	for _, scope := range scopes {
		o, c, err := b.chargeBudget(ctx, tx, d, &s, scope)
		if err != nil {
			return res, err
		}
		res.Over, res.Closed = max(res.Over, o), res.Closed || c
	}
	if res.Over > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE offer_spends SET over = $2 WHERE id = $1`, id, min(res.Over, s.Amount)); err != nil {
			return res, fmt.Errorf("recording an overspend: %w", err)
		}
	}
	return res, nil
}

// chargeBudget charges one scope's budget row, under its lock; it reports the part over the
// limit and whether the charge closed the budget.
func (b *Budgets) chargeBudget(ctx context.Context, tx *sqlx.Tx, d *definition, s *Spend, scope string) (int64, bool, error) {
	key := []any{s.Experiment, scope, string(s.Kind), s.Currency}
	if _, err := tx.ExecContext(ctx, `INSERT INTO offer_budgets (experiment, variant, kind, currency)
		VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, key...); err != nil {
		return 0, false, fmt.Errorf("making a budget row: %w", err)
	}
	limit := d.limitOf(scope, s)
	var row struct {
		Spent     int64 `db:"spent"`
		WasClosed bool  `db:"was_closed"`
	}
	// A strict spend that does not fit updates nothing and is refused; nothing is written,
	// since the budget closes by what it has left (experiments.Definition.MinSpend).
	err := tx.GetContext(ctx, &row, `UPDATE offer_budgets SET spent = spent + $5
		WHERE experiment = $1 AND variant = $2 AND kind = $3 AND currency = $4 AND ($6 < 0 OR NOT $7 OR spent + $5 <= $6)
		RETURNING spent, exhausted_at IS NOT NULL AS was_closed`, append(key, s.Amount, limit, s.Strict)...)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, budgetExhausted(s, scope)
	}
	if err != nil {
		return 0, false, fmt.Errorf("charging a budget: %w", err)
	}
	if limit < 0 {
		return 0, false, nil
	}
	least := d.exp.MinSpend(scope, s.Kind)
	if row.WasClosed && limit-(row.Spent-s.Amount) >= least {
		// Closed at a lower limit, since raised: it had opened again before this spend.
		if err := b.reopen(ctx, tx, key, row.Spent-s.Amount, limit); err != nil {
			return 0, false, err
		}
		row.WasClosed = false
	}
	closed := false
	if limit-row.Spent < least && !row.WasClosed {
		if err := b.close(ctx, tx, key, limit, row.Spent, b.closedAt(s)); err != nil {
			return 0, false, err
		}
		closed = true
	}
	return max(min(row.Spent-limit, s.Amount), 0), closed, nil
}

func budgetExhausted(s *Spend, scope string) error {
	whose := "experiment " + s.Experiment
	if scope != "" {
		whose = "variant " + scope + " of experiment " + s.Experiment
	}
	return apperr.New(apperr.BudgetExhausted, "the %s budget of %s has no room for %d more", s.Kind, whose, s.Amount)
}

// closedAt is when a spend that closes a budget spent it: when its money moved (the order's
// or the credit's time), or now if that is later, as it is for an order reported late.
// Live, the two are within the spender's period; for back-dated traffic (the simulator's
// past days) the order's time is the day the budget ran out (docs/offers.md).
func (b *Budgets) closedAt(s *Spend) time.Time {
	now := b.now()
	if !s.At.IsZero() && s.At.Before(now) {
		return s.At.UTC()
	}
	return now.UTC()
}

// close marks a budget row exhausted at at, logs it and tells every server's assignment cache
// (NOTIFY at commit).
func (b *Budgets) close(ctx context.Context, tx *sqlx.Tx, key []any, limit, spent int64, at time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE offer_budgets SET exhausted_at = $5
		WHERE experiment = $1 AND variant = $2 AND kind = $3 AND currency = $4`, append(key, at)...); err != nil {
		return fmt.Errorf("closing a budget: %w", err)
	}
	return b.logBudgetAt(ctx, tx, key, "exhausted", spent, limit, at)
}

// reopen marks a budget row open again, logs it and tells the caches.
func (b *Budgets) reopen(ctx context.Context, tx *sqlx.Tx, key []any, spent, limit int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE offer_budgets SET exhausted_at = NULL
		WHERE experiment = $1 AND variant = $2 AND kind = $3 AND currency = $4`, key...); err != nil {
		return fmt.Errorf("opening a budget: %w", err)
	}
	return b.logBudget(ctx, tx, key, "reopened", spent, limit)
}

// logBudget records a budget's closing or opening now and notifies the assignment caches.
func (b *Budgets) logBudget(ctx context.Context, tx *sqlx.Tx, key []any, event string, spent, limit int64) error {
	return b.logBudgetAt(ctx, tx, key, event, spent, limit, b.now().UTC())
}

// logBudgetAt is logBudget at a given time.
func (b *Budgets) logBudgetAt(ctx context.Context, tx *sqlx.Tx, key []any, event string, spent, limit int64, at time.Time) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO offer_budget_log (experiment, variant, kind, event, spent, budget, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, key[0], key[1], key[2], event, spent, limit, at); err != nil {
		return fmt.Errorf("logging a budget change: %w", err)
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, experiments.NotifyChannel, key[0])
	return err
}

// Return gives back to the budgets part of a spend: a refunded order's discount, or bonus
// points taken back; never more than the spend. A budget that gets money back below its limit
// opens again.
func (b *Budgets) Return(ctx context.Context, tx *sqlx.Tx, experiment string, kind experiments.BudgetKind, ref string, amount int64) error {
	if amount <= 0 {
		return nil
	}
	var sp struct {
		Variant  string `db:"variant"`
		Currency string `db:"currency"`
		Given    int64  `db:"given"`
	}
	err := tx.GetContext(ctx, &sp, `WITH old AS (
			SELECT id, returned FROM offer_spends WHERE experiment = $1 AND kind = $2 AND ref = $3 FOR UPDATE)
		UPDATE offer_spends s SET returned = LEAST(s.amount, old.returned + $4) FROM old WHERE s.id = old.id
		RETURNING s.variant, s.currency, s.returned - old.returned AS given`,
		experiment, string(kind), ref, amount)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // nothing was charged for it
	}
	if err != nil {
		return fmt.Errorf("returning a spend of %s: %w", experiment, err)
	}
	if sp.Given <= 0 {
		return nil
	}
	d, err := loadDefinition(ctx, tx, experiment, sp.Variant)
	if err != nil || d == nil {
		return err
	}
	s := Spend{Experiment: experiment, Variant: sp.Variant, Kind: kind, Currency: sp.Currency, Amount: sp.Given}
	scopes := []string{""}
	if sp.Variant != "" {
		scopes = append(scopes, sp.Variant)
	}
	for _, scope := range scopes {
		if err := b.giveBack(ctx, tx, d, &s, scope); err != nil {
			return err
		}
	}
	return nil
}

// giveBack takes a returned amount off what one scope's budget has spent, and opens it again
// when it was closed and now has room for an offer.
func (b *Budgets) giveBack(ctx context.Context, tx *sqlx.Tx, d *definition, s *Spend, scope string) error {
	key := []any{s.Experiment, scope, string(s.Kind), s.Currency}
	var row struct {
		Spent     int64 `db:"spent"`
		WasClosed bool  `db:"was_closed"`
	}
	err := tx.GetContext(ctx, &row, `UPDATE offer_budgets SET spent = GREATEST(spent - $5, 0)
		WHERE experiment = $1 AND variant = $2 AND kind = $3 AND currency = $4
		RETURNING spent, exhausted_at IS NOT NULL AS was_closed`, append(key, s.Amount)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("giving back to a budget: %w", err)
	}
	limit := d.limitOf(scope, s)
	if row.WasClosed && (limit < 0 || limit-row.Spent >= d.exp.MinSpend(scope, s.Kind)) {
		return b.reopen(ctx, tx, key, row.Spent, limit)
	}
	return nil
}
