package offers

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/database"
	"github.com/xsell/xsell/internal/experiments"
)

// OfferState implements experiments.OfferSource: the holdout, the global cap and what every
// budget has spent, for the assignment cache.
func (s *Store) OfferState(ctx context.Context) (experiments.OfferState, error) {
	r, err := readSettings(ctx, s.db, false)
	if err != nil {
		return experiments.OfferState{}, database.Wrap(err, "reading the offer settings")
	}
	set, err := r.settings()
	if err != nil {
		return experiments.OfferState{}, err
	}
	st := experiments.OfferState{
		Holdout:   experiments.Holdout{Percent: r.Percent, Seed: r.Seed, Generation: r.Generation},
		GlobalCap: set.GlobalCap,
	}
	st.Budgets, err = spentOf(ctx, s.db, "")
	return st, err
}

type budgetRow struct {
	Experiment  string     `db:"experiment"`
	Variant     string     `db:"variant"`
	Kind        string     `db:"kind"`
	Currency    string     `db:"currency"`
	Spent       int64      `db:"spent"`
	ExhaustedAt *time.Time `db:"exhausted_at"`
}

// spentOf reads the budget rows of one experiment, or of all when key is "".
func spentOf(ctx context.Context, q sqlx.QueryerContext, key string) ([]experiments.BudgetSpent, error) {
	var rows []budgetRow
	if err := sqlx.SelectContext(ctx, q, &rows, `SELECT experiment, variant, kind, currency, spent, exhausted_at
		FROM offer_budgets WHERE $1 = '' OR experiment = $1 ORDER BY experiment, variant, kind, currency`, key); err != nil {
		return nil, database.Wrap(err, "reading what the offer budgets spent")
	}
	out := make([]experiments.BudgetSpent, len(rows))
	for i, r := range rows {
		if r.ExhaustedAt != nil {
			t := r.ExhaustedAt.UTC()
			r.ExhaustedAt = &t
		}
		out[i] = experiments.BudgetSpent{Experiment: r.Experiment, Variant: r.Variant, Kind: experiments.BudgetKind(r.Kind),
			Currency: r.Currency, Spent: r.Spent, ExhaustedAt: r.ExhaustedAt}
	}
	return out, nil
}

// Status is an experiment's budgets against what they spent, for its GET.
func (b *Budgets) Status(ctx context.Context, e *experiments.Experiment) ([]experiments.BudgetStatus, error) {
	if !e.Limited() {
		return nil, nil
	}
	spent, err := spentOf(ctx, b.db, e.Key)
	if err != nil {
		return nil, err
	}
	return e.BudgetStatus(spent), nil
}

// ExperimentBudgets is one experiment's budgets, for /metrics.
type ExperimentBudgets struct {
	Experiment string
	Budgets    []experiments.BudgetStatus
}

// AllStatus is every experiment's budgets against what they spent.
func (b *Budgets) AllStatus(ctx context.Context) ([]ExperimentBudgets, error) {
	var defs []struct {
		Key      string `db:"key"`
		Variants []byte `db:"variants"`
		Budget   []byte `db:"budget"`
	}
	if err := b.db.SelectContext(ctx, &defs, `SELECT key, variants, budget FROM experiments
		WHERE budget IS NOT NULL OR variants::text LIKE '%"budget"%' ORDER BY key`); err != nil {
		return nil, database.Wrap(err, "reading the offer budgets")
	}
	spent, err := spentOf(ctx, b.db, "")
	if err != nil {
		return nil, err
	}
	var out []ExperimentBudgets
	for _, d := range defs {
		def := experiments.Definition{Key: d.Key}
		if unmarshalOptional(d.Variants, &def.Variants) != nil || unmarshalOptional(d.Budget, &def.Budget) != nil {
			continue
		}
		if st := def.BudgetStatus(spent); len(st) > 0 {
			out = append(out, ExperimentBudgets{Experiment: d.Key, Budgets: st})
		}
	}
	return out, nil
}
