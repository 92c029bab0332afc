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

// status is a limit against what was spent. A budget is exhausted when what it has left pays
// for no offer of the variants it covers (see Variant.MinSpend).
func (d *Definition) status(l limit, spent []BudgetSpent) BudgetStatus {
	st := BudgetStatus{Variant: l.variant, Kind: l.kind, Budget: l.amount, Currency: l.currency, Left: l.amount}
	for _, s := range spent {
		if s.Experiment != d.Key || s.Variant != l.variant || s.Kind != l.kind || s.Currency != l.currency {
			continue
		}
		st.Spent = s.Spent
		st.Left = max(l.amount-s.Spent, 0)
		st.Overspent = max(s.Spent-l.amount, 0)
		st.ExhaustedAt = s.ExhaustedAt
	}
	st.Exhausted = st.Left < d.MinSpend(l.variant, l.kind)
	if !st.Exhausted {
		st.ExhaustedAt = nil
	}
	return st
}

// BudgetStatus is every budget of the experiment against what it has spent.
func (d *Definition) BudgetStatus(spent []BudgetSpent) []BudgetStatus {
	var out []BudgetStatus
	for _, l := range d.budgetLimits() {
		out = append(out, d.status(l, spent))
	}
	return out
}

// Spends reports which budget kinds a strategy spends: bundles discounts, loyalty_points
// strategies points.
func (s *Strategy) Spends(k BudgetKind) bool {
	return (k == BudgetDiscount && s.Type == StrategyBundle) || (k == BudgetPoints && s.Type == StrategyLoyaltyPoints)
}

// MinSpend is the least one offer of the variant spends from a budget of kind: a bundle's
// fixed discount, a loyalty strategy's fixed bonus, else 1 (a percentage or a multiplier
// spends what the order makes it). 0 for a kind the variant does not spend.
func (v *Variant) MinSpend(k BudgetKind) int64 {
	st := &v.Strategy
	switch {
	case !st.Spends(k):
		return 0
	case k == BudgetDiscount && st.DiscountAmount != nil:
		return *st.DiscountAmount
	case k == BudgetPoints && st.BonusPoints != nil:
		return *st.BonusPoints
	}
	return 1
}

// MinSpend is the least an offer of the variants covered by a budget spends from it (the
// experiment's budget, variant "", covers every variant): with less left, the budget pays
// for none of them.
func (d *Definition) MinSpend(variant string, k BudgetKind) int64 {
	least := int64(0)
	for i := range d.Variants {
		v := &d.Variants[i]
		if variant != "" && v.Key != variant {
			continue
		}
		if m := v.MinSpend(k); m > 0 && (least == 0 || m < least) {
			least = m
		}
	}
	return max(least, 1)
}

// exhausted says, per variant, whether a spent budget closes its offer: its own, or the
// experiment's, of a kind its strategy spends, with less left than one of its offers spends.
// nil when none does.
func (d *Definition) exhausted(spent []BudgetSpent) []bool {
	var out []bool
	for _, l := range d.budgetLimits() {
		st := d.status(l, spent)
		for i := range d.Variants {
			v := &d.Variants[i]
			if (l.variant == "" || l.variant == v.Key) && v.Strategy.Spends(l.kind) && st.Left < v.MinSpend(l.kind) {
				if out == nil {
					out = make([]bool, len(d.Variants))
				}
				out[i] = true
			}
		}
	}
	return out
}
