package simulation

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testScenario: without an offer 40% of shoppers order, and a shampoo order (3 of 4 orders by
// weight) holds conditioner with chance 0.2, so 0.4 × 0.75 × 0.2 = 6% of shoppers cross-buy.
// The bundle multiplies the 0.2 by 1.5 (9%); points by 1 (6%).
const testScenario = `
seed: 11
shoppers: 60000
days: 10
attributes:
  country: {IT: 1, FR: 1}
catalog:
  - {sku: shampoo, price: 800, weight: 3, goes_with: {conditioner: 0.2}}
  - {sku: soap, price: 300, weight: 1}
  - {sku: conditioner, price: 1000, weight: 5}
shopper:
  conversion: 0.4
  order_value: {median: 2000, sigma: 0.5}
  refund: 0.1
effects:
  bundle: {cross_sell: 0.5}
  loyalty_points: {cross_sell: 0}
`

func parse(t *testing.T, y string) *Scenario {
	t.Helper()
	sc, err := ParseScenario([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

var (
	pct       = 10.0
	bonus     = int64(100)
	testArms  = []string{"control", "bundle", "points"}
	testOffer = map[string]Strategy{
		"control": {Type: "none"},
		"bundle":  {Type: "bundle", Products: []string{"conditioner"}, DiscountPercent: &pct, Timing: "cart"},
		"points":  {Type: "loyalty_points", Products: []string{"conditioner"}, BonusPoints: &bonus, Timing: "checkout"},
	}
)

func assignment(arm string) Assignment {
	v := arm
	return Assignment{Experiment: "x", InExperiment: true, Variant: &v, Reason: "assigned", Strategy: testOffer[arm]}
}

// TestPlantedEffects checks the shoppers' behaviour against the rates the scenario implies,
// worked out by hand above, without a server: the arm is given, not hashed.
func TestPlantedEffects(t *testing.T) {
	sc := parse(t, testScenario)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	m := newModel(sc, "x", "s", []string{"conditioner"}, now)
	want := map[string]float64{"control": 0.06, "bundle": 0.09, "points": 0.06}
	n, xs, orders := map[string]int{}, map[string]int{}, map[string]int{}
	var discount, lineValue int64
	for i := range sc.Shoppers {
		arm := testArms[i%3]
		s := m.shopper(i)
		evs, o := m.behave(s, assignment(arm))
		n[arm]++
		if o.crossSell > 0 {
			xs[arm]++
		}
		orders[arm] += int(o.orders)
		for _, e := range evs {
			if e.OccurredAt.After(now) || e.OccurredAt.Before(s.arrival) {
				t.Fatalf("event %s at %s: outside [arrival %s, now]", e.ID, e.OccurredAt, s.arrival)
			}
			if e.Type == orderCompleted {
				var sum int64
				for _, it := range e.Items {
					sum += it.Quantity * it.UnitPrice
					if it.SKU == "conditioner" && arm == "bundle" {
						lineValue += it.Quantity * it.UnitPrice
					}
				}
				if sum != *e.Amount {
					t.Fatalf("order %s: amount %d, lines add up to %d", e.OrderID, *e.Amount, sum)
				}
				if e.Discount != nil {
					discount += *e.Discount
				}
			}
		}
	}
	for _, arm := range testArms {
		got := float64(xs[arm]) / float64(n[arm])
		se := math.Sqrt(want[arm] * (1 - want[arm]) / float64(n[arm]))
		if math.Abs(got-want[arm]) > 4*se {
			t.Errorf("%s: %.4f of shoppers cross-buy, the scenario implies %.4f (±%.4f)", arm, got, want[arm], se)
		}
		conv := float64(orders[arm]) / float64(n[arm])
		if math.Abs(conv-0.4) > 4*math.Sqrt(0.24/float64(n[arm])) {
			t.Errorf("%s: %.4f orders a shopper, the scenario implies 0.4", arm, conv)
		}
	}
	// The bundle's 10% comes off every conditioner it sold, rounded per order.
	if d := float64(discount) - 0.1*float64(lineValue); math.Abs(d) > float64(xs["bundle"]) {
		t.Errorf("bundle discounts %d, 10%% of the conditioner sold is %d", discount, lineValue/10)
	}
}

// TestReproducible checks that a shopper's events depend only on the seed and the shopper's
// number, not on the order in which shoppers are drawn (the runner draws them concurrently).
func TestReproducible(t *testing.T) {
	sc := parse(t, testScenario)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	a := newModel(sc, "x", "s", []string{"conditioner"}, now)
	b := newModel(sc, "x", "s", []string{"conditioner"}, now)
	for _, i := range []int{5, 1, 40000, 3, 59999} {
		ea, _ := a.behave(a.shopper(i), assignment("bundle"))
		_, _ = b.behave(b.shopper(i+1), assignment("bundle"))
		eb, _ := b.behave(b.shopper(i), assignment("bundle"))
		if !reflect.DeepEqual(ea, eb) {
			t.Fatalf("shopper %d: different events on a second draw:\n%v\n%v", i, ea, eb)
		}
	}
	sc2 := parse(t, strings.Replace(testScenario, "seed: 11", "seed: 12", 1))
	c := newModel(sc2, "x", "s", []string{"conditioner"}, now)
	same := 0
	for i := range 100 {
		ea, _ := a.behave(a.shopper(i), assignment("control"))
		ec, _ := c.behave(c.shopper(i), assignment("control"))
		if reflect.DeepEqual(ea, ec) {
			same++
		}
	}
	if same > 80 { // shoppers who do nothing look alike under any seed: 60% of them
		t.Errorf("%d of 100 shoppers did the same under another seed", same)
	}
}

// TestDays checks that shoppers are spread over the days, each day's in one range.
func TestDays(t *testing.T) {
	sc := parse(t, testScenario)
	sc.Shoppers, sc.Days = 10, 4
	m := newModel(sc, "x", "s", nil, time.Now())
	next := 0
	for d := range sc.Days {
		lo, hi := dayRange(sc, d)
		if lo != next {
			t.Fatalf("day %d starts at %d, want %d", d, lo, next)
		}
		for i := lo; i < hi; i++ {
			if m.dayOf(i) != d {
				t.Errorf("shopper %d is in day %d's range but arrives on day %d", i, d, m.dayOf(i))
			}
		}
		next = hi
	}
	if next != sc.Shoppers {
		t.Errorf("days cover %d shoppers, want %d", next, sc.Shoppers)
	}
}

// TestScenarioProblems checks that a bad scenario is refused with every problem and its field.
func TestScenarioProblems(t *testing.T) {
	_, err := ParseScenario([]byte(`
shoppers: 0
days: 120
currency: eur
catalog:
  - {sku: a, price: 0, weight: 1, goes_with: {b: 1.5, a: 0.1}}
  - {sku: a, price: 100}
shopper: {conversion: 1.2, order_value: {median: 0}}
effects: {bundle: {cross_sell: -2}}
experiment: {name: no key}
`))
	if err == nil {
		t.Fatal("a scenario with ten mistakes was accepted")
	}
	for _, want := range []string{
		"shoppers: must be at least 1", "days: must be between 1 and 89", "currency: must be an upper-case",
		"catalog[0].price", "catalog[1].sku: \"a\" appears twice", "catalog[0].goes_with.b: is not in the catalog",
		"catalog[0].goes_with.b: must be a probability", "catalog[0].goes_with.a: a product cannot go with itself",
		"shopper.conversion", "shopper.order_value.median", "effects.bundle.cross_sell", "experiment.key: is required",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if _, err := ParseScenario([]byte("shoppers: 1\neffects: {bundle: {crosssell: 0.2}}\n")); err == nil ||
		!strings.Contains(err.Error(), "field crosssell not found") {
		t.Errorf("a misspelt effect was not refused: %v", err)
	}
}

// TestPlantedAnnoyance checks the annoyance against its definition, worked out by hand: with
// eight visits each and the offer shown at every one, the chance to order on visit k
// (1-based) is 0.4 × 0.7^max(0, k − 2), the k-th offer being the (k − 2)-th beyond the
// second; held back (the control's experience) it stays 0.4 on every visit.
func TestPlantedAnnoyance(t *testing.T) {
	sc := parse(t, testScenario+"annoyance: {after: 2, conversion: -0.3}\n")
	sc.Shopper.Visits = map[int]float64{8: 1}
	sc.Shopper.Refund = 0
	const shoppers = 20000
	// Twice as many shoppers in the scenario, so that the ones drawn here arrive in its first
	// half, with room for all their visits before the end.
	sc.Shoppers = 2 * shoppers
	m := newModel(sc, "x", "s", []string{"conditioner"}, time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	for _, arm := range []string{"bundle", "control"} {
		orders := make([]int, 8)
		for i := range shoppers {
			s := m.shopper(i)
			if s.visits != 8 {
				t.Fatalf("shopper %d makes %d visits, the scenario says 8", i, s.visits)
			}
			for {
				_, o := m.behave(s, assignment(arm))
				orders[s.visit] += int(o.orders)
				if !s.next(m.end()) {
					break
				}
			}
			if s.visit != 7 {
				t.Fatalf("shopper %d made %d visits, want 8", i, s.visit+1)
			}
		}
		for k, n := range orders {
			want := 0.4
			if arm == "bundle" {
				want *= math.Pow(0.7, math.Max(0, float64(k+1-2)))
			}
			got := float64(n) / shoppers
			if se := math.Sqrt(want * (1 - want) / shoppers); math.Abs(got-want) > 4*se {
				t.Errorf("%s, visit %d: %.4f of shoppers order, the annoyance implies %.4f (±%.4f)", arm, k+1, got, want, se)
			}
		}
	}
}
