package experiments

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/complements"
)

// learnedExperiment has a control and a learned bundle; shopper "qa" is forced into the bundle.
func learnedExperiment(key string, minLift float64) *Experiment {
	e := &Experiment{Definition: Definition{Key: key, Name: key, Forced: map[string]string{"qa": "learned"}, Variants: []Variant{
		{Key: "control", Name: "C", Weight: 0.5, Strategy: Strategy{Type: StrategyNone}},
		{Key: "learned", Name: "L", Weight: 0.5, Strategy: Strategy{Type: StrategyBundle, Source: SourceComplements,
			MaxProducts: ptr(2), MinLift: ptr(minLift), DiscountPercent: ptr(10.0), Timing: TimingCart}},
	}}, Status: StatusRunning, Phase: 1}
	e.Normalize()
	return e
}

// hairCare is a model: shampoo goes with conditioner (G² 40, lift 3), a mask (10, lift 1.2)
// and a comb (5, lift 2).
func hairCare() *complements.Model {
	return complements.NewModel(complements.Snapshot{Version: 1}, map[string][]complements.Complement{
		"shampoo": {{SKU: "conditioner", Score: 40, Lift: 3}, {SKU: "mask", Score: 10, Lift: 1.2}, {SKU: "comb", Score: 5, Lift: 2}},
	})
}

// answerOf is the JSON of the forced shopper's answer under offers.
func answerOf(t *testing.T, s *Snapshot, key string, offers *Offers) map[string]any {
	t.Helper()
	a := s.Assign("qa", map[string]any{}, []string{key}, nil, nil)[0]
	raw := a.AppendJSONWith(nil, offers)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("not JSON: %s: %v", raw, err)
	}
	return out
}

func TestLearnedAnswerOffersTheContextsComplements(t *testing.T) {
	s := snapshotOf(t, learnedExperiment("learned-x", 1), learnedExperiment("learned-lift", 1.5))
	var offers Offers
	offers.Reset(hairCare(), []string{"shampoo"})

	got := answerOf(t, s, "learned-x", &offers)
	// At most 2 products, best first, each with its score; the rest of the strategy as defined.
	want := map[string]any{"experiment": "learned-x", "phase": 1.0, "in_experiment": true, "variant": "learned", "reason": "forced",
		"offer": "show", "strategy": map[string]any{"type": "bundle", "source": "complements", "max_products": 2.0, "min_lift": 1.0,
			"discount_percent": 10.0, "timing": "cart", "products": []any{"conditioner", "mask"}, "scores": []any{40.0, 10.0}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("answer\n got %v\nwant %v", got, want)
	}
	// With lift at least 1.5, the mask (1.2) is not offered: the comb is.
	st := answerOf(t, s, "learned-lift", &offers)["strategy"].(map[string]any)
	if !reflect.DeepEqual(st["products"], []any{"conditioner", "comb"}) || !reflect.DeepEqual(st["scores"], []any{40.0, 5.0}) {
		t.Errorf("min lift 1.5: %v", st)
	}
}

func TestLearnedAnswerWithNothingToOffer(t *testing.T) {
	s := snapshotOf(t, learnedExperiment("learned-x", 1))
	var unknown, empty Offers
	unknown.Reset(hairCare(), []string{"toothpaste"})
	empty.Reset(hairCare(), nil)
	for name, offers := range map[string]*Offers{"unknown product": &unknown, "no context": &empty, "no offers": nil} {
		got := answerOf(t, s, "learned-x", offers)
		st := got["strategy"].(map[string]any)
		// The shopper keeps the variant; the answer says there is nothing to show.
		if got["offer"] != "no_complements" || got["variant"] != "learned" || got["in_experiment"] != true ||
			!reflect.DeepEqual(st["products"], []any{}) || !reflect.DeepEqual(st["scores"], []any{}) || st["type"] != "bundle" {
			t.Errorf("%s: %v", name, got)
		}
	}
}

// TestOverridesWinOverNoComplements checks the one offer field serving both the offer pipeline
// and learned complements: a held-out shopper is told "holdout" whatever the model chooses,
// with the control's strategy — learned products when the control's strategy is learned.
func TestOverridesWinOverNoComplements(t *testing.T) {
	learnedControl := &Experiment{Definition: Definition{Key: "learned-control", Name: "LC", Variants: []Variant{
		{Key: "control", Name: "C", Weight: 0.5, Strategy: Strategy{Type: StrategySuggestion, Source: SourceComplements,
			MaxProducts: ptr(1), MinLift: ptr(1.0), Timing: TimingCart}},
		{Key: "fixed", Name: "F", Weight: 0.5, Strategy: Strategy{Type: StrategySuggestion, Products: []string{"comb"}, Timing: TimingCart}},
	}}, Status: StatusRunning, Phase: 1}
	learnedControl.Normalize()
	s, err := NewSnapshotWith([]*Experiment{learnedExperiment("learned-x", 1), learnedControl}, time.Now(),
		SnapshotOptions{State: OfferState{Holdout: Holdout{Percent: 100, Seed: "all", Generation: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	var shampoo, nothing Offers
	shampoo.Reset(hairCare(), []string{"shampoo"})
	nothing.Reset(hairCare(), nil)
	seen := map[string]bool{}
	for i := range 40 {
		for _, a := range s.Assign(fmt.Sprintf("s-%d", i), map[string]any{}, nil, nil, nil) {
			for ctx, offers := range map[string]*Offers{"shampoo": &shampoo, "no context": &nothing} {
				var got map[string]any
				if err := json.Unmarshal(a.AppendJSONWith(nil, offers), &got); err != nil {
					t.Fatal(err)
				}
				v, _ := got["variant"].(string)
				seen[a.Experiment+"/"+v] = true
				st := got["strategy"].(map[string]any)
				want := any(nil) // learned-x: the control's strategy is none
				if a.Experiment == "learned-control" {
					want = []any{}
					if ctx == "shampoo" {
						want = []any{"conditioner"}
					}
				}
				if got["offer"] != "holdout" || got["in_experiment"] != true || !reflect.DeepEqual(st["products"], want) {
					t.Errorf("%s, %s, %s: %v", a.Experiment, v, ctx, got)
				}
			}
		}
	}
	for _, arm := range []string{"learned-x/learned", "learned-x/control", "learned-control/control", "learned-control/fixed"} {
		if !seen[arm] {
			t.Errorf("no shopper in %s: the test shows too little (%v)", arm, seen)
		}
	}
}

func TestOffersShareOneLookUpPerStrategy(t *testing.T) {
	var offers Offers
	offers.Reset(hairCare(), []string{"shampoo"})
	a := offers.choose(1, 3)
	again := offers.choose(1, 3)
	b := offers.choose(1, 1)
	c := offers.choose(1.5, 3)
	if len(offers.memo) != 3 || len(a) != 3 || &again[0] != &a[0] || len(b) != 1 || b[0].SKU != "conditioner" || len(c) != 2 {
		t.Errorf("memo %d entries; choices %v %v %v", len(offers.memo), a, b, c)
	}
	offers.Reset(hairCare(), []string{"conditioner"})
	if len(offers.memo) != 0 || len(offers.choose(1, 3)) != 0 {
		t.Errorf("a reset kept the last request's choices")
	}
}

func TestLearnedStrategyRules(t *testing.T) {
	bundle := func(edit func(*Strategy)) Definition {
		d := Definition{Key: "rules", Name: "Rules", Variants: []Variant{
			{Key: "control", Name: "C", Weight: 0.5, Strategy: Strategy{Type: StrategyNone}},
			{Key: "learned", Name: "L", Weight: 0.5, Strategy: Strategy{Type: StrategyBundle, Source: SourceComplements,
				DiscountPercent: ptr(10.0), Timing: TimingCart}},
		}}
		edit(&d.Variants[1].Strategy)
		d.Normalize()
		return d
	}
	ok := bundle(func(*Strategy) {})
	if err := ok.Validate(); err != nil {
		t.Fatalf("a learned bundle: %v", err)
	}
	if s := ok.Variants[1].Strategy; *s.MaxProducts != DefaultLearnedProducts || *s.MinLift != DefaultMinLift {
		t.Errorf("defaults: max_products %d, min_lift %v", *s.MaxProducts, *s.MinLift)
	}
	if len(ok.TargetProducts) != 0 {
		t.Errorf("target products of a learned bundle: %v", ok.TargetProducts)
	}
	const path = "variants[1].strategy."
	for _, tc := range []struct {
		name        string
		edit        func(*Strategy)
		field, code string
	}{
		{"products with complements", func(s *Strategy) { s.Products = []string{"sku-1"} }, "products", "not_allowed"},
		{"loyalty points", func(s *Strategy) {
			s.Type, s.DiscountPercent, s.BonusPoints = StrategyLoyaltyPoints, nil, ptr(int64(100))
		}, "source", "not_allowed"},
		{"max_products 0", func(s *Strategy) { s.MaxProducts = ptr(0) }, "max_products", "out_of_range"},
		{"max_products 21", func(s *Strategy) { s.MaxProducts = ptr(21) }, "max_products", "out_of_range"},
		{"min_lift negative", func(s *Strategy) { s.MinLift = ptr(-1.0) }, "min_lift", "out_of_range"},
		{"unknown source", func(s *Strategy) { s.Source = "magic" }, "source", "not_allowed"},
		{"fixed without products", func(s *Strategy) { s.Source, s.MaxProducts, s.MinLift = SourceFixed, nil, nil }, "products", "required"},
		{"fixed with max_products", func(s *Strategy) { s.Source, s.Products = SourceFixed, []string{"sku-1"}; s.MaxProducts = ptr(2) }, "max_products", "not_allowed"},
	} {
		d := bundle(tc.edit)
		err := d.Validate()
		var ae *apperr.Error
		if !asAppErr(err, &ae) || !hasDetail(ae, path+tc.field, tc.code) {
			t.Errorf("%s: %v, want %s at %s", tc.name, err, tc.code, path+tc.field)
		}
	}
	none := bundle(func(*Strategy) {})
	none.Variants[0].Strategy.Source = SourceComplements
	if err := none.Validate(); err == nil || !strings.Contains(err.Error(), "variants[0].strategy.source") {
		t.Errorf("a none strategy with a source: %v", err)
	}
}

func asAppErr(err error, target **apperr.Error) bool {
	e, ok := err.(*apperr.Error)
	*target = e
	return ok
}

func hasDetail(e *apperr.Error, field, code string) bool {
	for _, d := range e.Details {
		if d.Field == field && d.Code == code {
			return true
		}
	}
	return false
}
