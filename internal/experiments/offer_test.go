package experiments

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/apperr"
)

// offerExperiment is a running experiment with a control, a bundle and a loyalty variant.
func offerExperiment(key string) *Experiment {
	e := &Experiment{Definition: Definition{Key: key, Name: key, Variants: []Variant{
		{Key: "control", Name: "C", Weight: 0.34, Strategy: Strategy{Type: StrategyNone}},
		{Key: "bundle", Name: "B", Weight: 0.33, Strategy: Strategy{Type: StrategyBundle, Products: []string{"sku-2"},
			DiscountAmount: ptr(int64(300)), Currency: "EUR", Timing: TimingCart}},
		{Key: "points", Name: "P", Weight: 0.33, Strategy: Strategy{Type: StrategyLoyaltyPoints, Products: []string{"sku-2"},
			BonusPoints: ptr(int64(200)), Timing: TimingCheckout}},
	}}, Status: StatusRunning, Phase: 1}
	e.Normalize()
	return e
}

func TestOverriddenAnswersKeepTheVariantAndGiveTheControlsExperience(t *testing.T) {
	e := offerExperiment("ov")
	s := snapshotOf(t, e)
	c := s.byKey["ov"]
	for _, o := range overrides {
		for i, v := range e.Variants {
			a := c.override(o, i)
			var got map[string]any
			if err := json.Unmarshal(a.AppendJSON(nil), &got); err != nil {
				t.Fatal(err)
			}
			st := got["strategy"].(map[string]any)
			if got["offer"] != string(o) || got["variant"] != v.Key || got["in_experiment"] != true ||
				got["reason"] != "assigned" || st["type"] != "none" {
				t.Fatalf("%s answer of %s: %v, want the variant kept with the control's strategy", o, v.Key, got)
			}
		}
	}
	a := assignOne(s, "s-1", nil, "ov")
	if a.Offer != OfferShow {
		t.Fatalf("an answer with nothing to override says offer %q, want show", a.Offer)
	}
	if u := assignOne(s, "s-1", nil, "nope"); u.Offer != OfferShow {
		t.Fatalf("unknown experiment: offer %q", u.Offer)
	}
}

// TestAnOverrideInPlaceIsTheOverriddenAnswer checks that overriding an answer's changed
// fields in place (what a request does) leaves exactly the answer prepared for the override,
// for plain and learned variants and a learned control.
func TestAnOverrideInPlaceIsTheOverriddenAnswer(t *testing.T) {
	learned := offerExperiment("ol")
	pct := 10.0
	learned.Variants[1].Strategy = Strategy{Type: StrategyBundle, Source: SourceComplements, DiscountPercent: &pct, Timing: TimingCart}
	learned.Variants[0].Strategy = Strategy{Type: StrategySuggestion, Source: SourceComplements, Timing: TimingCart}
	learned.Normalize()
	s := snapshotOf(t, offerExperiment("ov"), learned)
	for _, key := range []string{"ov", "ol"} {
		c := s.byKey[key]
		if key == "ol" && (c.override(OfferCapped, 1).learned == nil || c.assigned[1].learned == nil) {
			t.Fatal("the learned control's overrides are not learned: the test would not cover them")
		}
		for o, offer := range overrides {
			for i := range c.variantKeys {
				got := c.assigned[i]
				c.overrideIn(&got, o)
				if want := c.override(offer, i); !reflect.DeepEqual(got, want) {
					t.Fatalf("%s, variant %d overridden %s in place:\n%+v\nwant\n%+v", key, i, offer, got, want)
				}
				if want := c.override(offer, i); string(got.AppendJSON(nil)) != string(want.AppendJSON(nil)) {
					t.Fatalf("%s, variant %d overridden %s in place encodes as %s, want %s", key, i, offer, got.AppendJSON(nil), want.AppendJSON(nil))
				}
			}
		}
	}
}

func TestHoldoutIsStableAndRaisingItKeepsEveryoneIn(t *testing.T) {
	e := experimentFor("h", []float64{0.5, 0.5}, 1)
	snap := func(percent float64, seed string) *Snapshot {
		s, err := NewSnapshotWith([]*Experiment{e}, time.Now(), SnapshotOptions{State: OfferState{
			Holdout: Holdout{Percent: percent, Seed: seed, Generation: 3}}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	five, ten, other := snap(5, "holdout-2026"), snap(10, "holdout-2026"), snap(5, "another-seed")
	const n = 40_000
	heldFive, heldTen, both := 0, 0, 0
	for i := range n {
		id := fmt.Sprintf("shopper-%d", i)
		var got []Exposure
		a := five.Assign(id, map[string]any{}, nil, nil, func(x Exposure) { got = append(got, x) })[0]
		held := a.Offer == OfferHoldout
		if held != five.InHoldout(id) {
			t.Fatalf("%s: answer says offer %s, InHoldout %v", id, a.Offer, five.InHoldout(id))
		}
		side := RestVariant
		if held {
			heldFive++
			side = HoldoutVariant
			if !a.InExperiment || a.Variant == nil || string(a.Strategy) != `{"type":"none"}` {
				t.Fatalf("held out %s: %+v, want the variant kept with the control's strategy", id, a)
			}
			if !ten.InHoldout(id) {
				t.Fatalf("%s held out at 5%% but not at 10%%", id)
			}
		}
		// A held-out shopper is recorded in the holdout only; everyone else in both.
		wantN := 2
		if held {
			wantN = 1
		}
		last := got[len(got)-1]
		if len(got) != wantN || last.Experiment != HoldoutExperiment || last.Variant != side || last.Phase != 3 {
			t.Fatalf("%s (held %v) recorded %+v", id, held, got)
		}
		if ten.InHoldout(id) {
			heldTen++
		}
		if held && other.InHoldout(id) {
			both++
		}
	}
	// Binomial bounds at ±5 standard deviations.
	within := func(name string, got int, p float64) {
		mean, sd := p*n, sqrt(p*(1-p)*n)
		if float64(got) < mean-5*sd || float64(got) > mean+5*sd {
			t.Errorf("%s: %d of %d, expected about %.0f", name, got, n, mean)
		}
	}
	within("held out at 5%", heldFive, 0.05)
	within("held out at 10%", heldTen, 0.10)
	// Another seed draws another holdout: the overlap is what chance gives (5% of 5%).
	within("held out by both seeds", both, 0.05*0.05)
}

func sqrt(x float64) float64 {
	z := x
	for range 50 {
		z = (z + x/z) / 2
	}
	return z
}

func TestASpentBudgetClosesOnlyTheVariantsThatSpendIt(t *testing.T) {
	e := offerExperiment("bud")
	e.Budget = &Budget{Discount: &Amount{Amount: 10_000, Currency: "EUR"}}
	e.Variants[2].Budget = &Budget{Points: ptr(int64(5_000))}
	offersOf := func(spent ...BudgetSpent) map[string]Offer {
		s, err := NewSnapshotWith([]*Experiment{e}, time.Now(), SnapshotOptions{State: OfferState{Budgets: spent}})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]Offer{}
		for i := range 300 {
			a := assignOne(s, fmt.Sprintf("s-%d", i), nil, "bud")
			out[*a.Variant] = a.Offer
		}
		return out
	}
	show := map[string]Offer{"control": OfferShow, "bundle": OfferShow, "points": OfferShow}
	cases := []struct {
		name  string
		spent []BudgetSpent
		want  map[string]Offer
	}{
		{"nothing spent", nil, show},
		// The bundle gives 300 off: the budget pays for one more while 300 are left.
		{"room for one more bundle", []BudgetSpent{{Experiment: "bud", Kind: BudgetDiscount, Currency: "EUR", Spent: 9_700}}, show},
		{"no room for another bundle", []BudgetSpent{{Experiment: "bud", Kind: BudgetDiscount, Currency: "EUR", Spent: 9_701}},
			map[string]Offer{"control": OfferShow, "bundle": OfferBudgetExhausted, "points": OfferShow}},
		{"discounts beyond the budget", []BudgetSpent{{Experiment: "bud", Kind: BudgetDiscount, Currency: "EUR", Spent: 10_900}},
			map[string]Offer{"control": OfferShow, "bundle": OfferBudgetExhausted, "points": OfferShow}},
		{"another currency's discounts", []BudgetSpent{{Experiment: "bud", Kind: BudgetDiscount, Currency: "USD", Spent: 50_000}}, show},
		{"the points variant's budget", []BudgetSpent{{Experiment: "bud", Variant: "points", Kind: BudgetPoints, Spent: 5_000}},
			map[string]Offer{"control": OfferShow, "bundle": OfferShow, "points": OfferBudgetExhausted}},
	}
	for _, tc := range cases {
		if got := offersOf(tc.spent...); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestBudgetStatusShowsSpentLeftAndOverspent(t *testing.T) {
	e := offerExperiment("st")
	e.Budget = &Budget{Discount: &Amount{Amount: 10_000, Currency: "EUR"}}
	e.Variants[2].Budget = &Budget{Points: ptr(int64(5_000))}
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	got := e.BudgetStatus([]BudgetSpent{
		{Experiment: "st", Kind: BudgetDiscount, Currency: "EUR", Spent: 10_450, ExhaustedAt: &at},
		{Experiment: "st", Variant: "points", Kind: BudgetPoints, Spent: 1_200},
	})
	want := []BudgetStatus{
		{Kind: BudgetDiscount, Budget: 10_000, Currency: "EUR", Spent: 10_450, Left: 0, Overspent: 450, Exhausted: true, ExhaustedAt: &at},
		{Variant: "points", Kind: BudgetPoints, Budget: 5_000, Spent: 1_200, Left: 3_800},
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("status\n got %s\nwant %s", g, w)
	}
}

func TestCapsAndBudgetsAreValidatedLikeTheRest(t *testing.T) {
	bad := func(edit func(e *Experiment)) *Experiment {
		e := offerExperiment("v")
		edit(e)
		return e
	}
	cases := []struct {
		e     *Experiment
		field string
		code  string
	}{
		{bad(func(e *Experiment) { e.FrequencyCap = &FrequencyCap{Offers: 0, Per: PeriodWeek} }), "frequency_cap.offers", "out_of_range"},
		{bad(func(e *Experiment) { e.FrequencyCap = &FrequencyCap{Offers: 3, Per: "1w"} }), "frequency_cap.per", "not_allowed"},
		{bad(func(e *Experiment) { e.FrequencyCap = &FrequencyCap{Offers: 3} }), "frequency_cap.per", "required"},
		{bad(func(e *Experiment) { e.Variants[0].FrequencyCap = &FrequencyCap{Offers: 3, Per: PeriodDay} }), "variants[0].frequency_cap", "not_allowed"},
		{bad(func(e *Experiment) { e.Budget = &Budget{} }), "budget", "required"},
		{bad(func(e *Experiment) { e.Budget = &Budget{Discount: &Amount{Amount: -1, Currency: "EUR"}} }), "budget.discount.amount", "out_of_range"},
		{bad(func(e *Experiment) { e.Budget = &Budget{Discount: &Amount{Amount: 100, Currency: "USD"}} }), "budget.discount.currency", "currency_mismatch"},
		{bad(func(e *Experiment) { e.Budget = &Budget{Discount: &Amount{Amount: 100, Currency: "eur"}} }), "budget.discount.currency", "invalid_format"},
		{bad(func(e *Experiment) { e.Budget = &Budget{Points: ptr(int64(0))} }), "budget.points", "out_of_range"},
		{bad(func(e *Experiment) { e.Variants[1].Budget = &Budget{Points: ptr(int64(10))} }), "variants[1].budget.points", "not_allowed"},
		{bad(func(e *Experiment) { e.Variants[2].Budget = &Budget{Discount: &Amount{Amount: 10, Currency: "EUR"}} }), "variants[2].budget.discount", "not_allowed"},
		{bad(func(e *Experiment) { e.Variants[0].Budget = &Budget{Points: ptr(int64(10))} }), "variants[0].budget", "not_allowed"},
		{bad(func(e *Experiment) {
			e.Budget = &Budget{PerShopper: &ShopperLimit{AcceptedOffers: ptr(0), Per: PeriodMonth}}
		}), "budget.per_shopper.accepted_offers", "out_of_range"},
		{bad(func(e *Experiment) {
			e.Budget = &Budget{PerShopper: &ShopperLimit{Discount: ptr(int64(500)), Per: PeriodMonth}}
		}), "budget.per_shopper.discount", "required_with"},
		{bad(func(e *Experiment) { e.Budget = &Budget{PerShopper: &ShopperLimit{AcceptedOffers: ptr(2)}} }), "budget.per_shopper.per", "required"},
		{bad(func(e *Experiment) { e.Budget = &Budget{PerShopper: &ShopperLimit{Per: PeriodDay}} }), "budget.per_shopper", "required"},
	}
	for _, tc := range cases {
		err := tc.e.Validate()
		ae, ok := err.(*apperr.Error)
		if !ok {
			t.Errorf("%s: got %v, want a %s problem", tc.field, err, tc.code)
			continue
		}
		found := false
		for _, d := range ae.Details {
			found = found || (d.Field == tc.field && d.Code == tc.code)
		}
		if !found {
			t.Errorf("want %s at %s, got %+v", tc.code, tc.field, ae.Details)
		}
	}
	good := offerExperiment("good")
	good.FrequencyCap = &FrequencyCap{Offers: 3, Per: PeriodWeek}
	good.Budget = &Budget{Discount: &Amount{Amount: 50_000, Currency: "EUR"}, Points: ptr(int64(100_000)),
		PerShopper: &ShopperLimit{AcceptedOffers: ptr(3), Discount: ptr(int64(1_000)), Per: PeriodMonth}}
	good.Variants[1].FrequencyCap = &FrequencyCap{Offers: 1, Per: PeriodDay}
	good.Variants[2].Budget = &Budget{Points: ptr(int64(20_000))}
	if err := good.Validate(); err != nil {
		t.Fatalf("a definition with every kind of cap and budget: %v", err)
	}
}

func TestBudgetsAndTheExperimentCapChangeWhileRunning(t *testing.T) {
	cur := offerExperiment("edit").Definition
	next := offerExperiment("edit").Definition
	next.FrequencyCap = &FrequencyCap{Offers: 3, Per: PeriodWeek}
	next.Budget = &Budget{Points: ptr(int64(1000))}
	next.Variants[1].Budget = &Budget{Discount: &Amount{Amount: 500, Currency: "EUR"}}
	changes := diff(cur, next)
	if err := editable(StatusRunning, changes); err != nil {
		t.Fatalf("caps and budgets of a running experiment: %v (changes %v)", err, changes)
	}
	if _, ok := changes[variantBudgets]; !ok || changes["variants"] != nil {
		t.Fatalf("a variant's budget shows as %v", changes)
	}
	// A variant's own cap is its treatment: it changes only with a new phase.
	next.Variants[1].FrequencyCap = &FrequencyCap{Offers: 1, Per: PeriodDay}
	err := editable(StatusRunning, diff(cur, next))
	if apperr.CodeOf(err) != apperr.RequiresNewPhase {
		t.Fatalf("changing a variant's cap while running: %v, want requires_new_phase", err)
	}
	if err := editable(StatusStopped, diff(cur, offerWith(cur, func(d *Definition) { d.Budget = &Budget{Points: ptr(int64(1))} }))); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("changing the budget of a stopped experiment: %v, want conflict", err)
	}
}

func offerWith(d Definition, edit func(*Definition)) Definition {
	d.Variants = append([]Variant(nil), d.Variants...)
	edit(&d)
	return d
}

// override is variant i's prepared answer with offer o (one of overrides) instead of its
// strategy: what compiled.overrideIn must give, written whole.
func (a *answers) override(o Offer, i int) Assignment {
	switch o {
	case OfferCapped:
		return a.overridden[overCapped][i]
	case OfferBudgetExhausted:
		return a.overridden[overBudget][i]
	default:
		return a.overridden[overHoldout][i]
	}
}
