package experiments

import "time"

// BudgetStatus is one budget of an experiment with what it has spent and has left, as the
// experiment's GET shows it.
type BudgetStatus struct {
	// Variant is the variant whose budget this is; absent for the experiment's own.
	Variant  string     `json:"variant,omitempty"`
	Kind     BudgetKind `json:"kind"`
	Budget   int64      `json:"budget"`
	Currency string     `json:"currency,omitempty"`
	Spent    int64      `json:"spent"`
	Left     int64      `json:"left"`
	// Overspent is what orders took beyond the budget: offers shown before it closed and
	// accepted after (an order cannot be refused after the fact).
	Overspent   int64      `json:"overspent"`
	Exhausted   bool       `json:"exhausted"`
	ExhaustedAt *time.Time `json:"exhausted_at,omitempty"`
}

// limit is one budget limit of a definition: experiment-wide (variant "") or a variant's.
type limit struct {
	variant  string
	kind     BudgetKind
	amount   int64
	currency string
}

func (b *Budget) limits(variant string) []limit {
	var out []limit
	if b == nil {
		return nil
	}
	if b.Discount != nil {
		out = append(out, limit{variant, BudgetDiscount, b.Discount.Amount, b.Discount.Currency})
	}
	if b.Points != nil {
		out = append(out, limit{variant, BudgetPoints, *b.Points, ""})
	}
	return out
}

// budgetLimits lists the experiment's budgets, its own first, then the variants' in order.
func (d *Definition) budgetLimits() []limit {
	out := d.Budget.limits("")
	for _, v := range d.Variants {
		out = append(out, v.Budget.limits(v.Key)...)
	}
	return out
}

// status is a limit against what was spent.
func (l limit) status(spent []BudgetSpent, experiment string) BudgetStatus {
	st := BudgetStatus{Variant: l.variant, Kind: l.kind, Budget: l.amount, Currency: l.currency, Left: l.amount}
	for _, s := range spent {
		if s.Experiment != experiment || s.Variant != l.variant || s.Kind != l.kind || s.Currency != l.currency {
			continue
		}
		st.Spent = s.Spent
		st.Left = max(l.amount-s.Spent, 0)
		st.Overspent = max(s.Spent-l.amount, 0)
		refused := s.ExhaustedLimit != nil && *s.ExhaustedLimit >= l.amount
		st.Exhausted = st.Left == 0 || refused
		if st.Exhausted {
			st.ExhaustedAt = s.ExhaustedAt
		}
	}
	return st
}

// BudgetStatus is every budget of the experiment against what it has spent.
func (d *Definition) BudgetStatus(spent []BudgetSpent) []BudgetStatus {
	var out []BudgetStatus
	for _, l := range d.budgetLimits() {
		out = append(out, l.status(spent, d.Key))
	}
	return out
}

// Spends reports which budget kinds a strategy spends: bundles discounts, loyalty_points
// strategies points.
func (s *Strategy) Spends(k BudgetKind) bool {
	return (k == BudgetDiscount && s.Type == StrategyBundle) || (k == BudgetPoints && s.Type == StrategyLoyaltyPoints)
}

// exhausted says, per variant, whether a spent budget closes its offer: its own, or the
// experiment's, of a kind its strategy spends. nil when none does.
func (d *Definition) exhausted(spent []BudgetSpent) []bool {
	var out []bool
	for _, st := range d.BudgetStatus(spent) {
		if !st.Exhausted {
			continue
		}
		for i, v := range d.Variants {
			if (st.Variant == "" || st.Variant == v.Key) && v.Strategy.Spends(st.Kind) {
				if out == nil {
					out = make([]bool, len(d.Variants))
				}
				out[i] = true
			}
		}
	}
	return out
}
