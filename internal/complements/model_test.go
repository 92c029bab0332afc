package complements_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/xsell/xsell/internal/complements"
	"github.com/xsell/xsell/internal/complements/complementstest"
)

// shop is a model with hand-made lists: shampoo goes with conditioner and a mask, a razor
// with gel and (weakly) with conditioner.
func shop() *complements.Model {
	return complements.NewModel(complements.Snapshot{Version: 1}, map[string][]complements.Complement{
		"shampoo":     {{SKU: "conditioner", Score: 40, Lift: 3}, {SKU: "mask", Score: 10, Lift: 1.2}},
		"conditioner": {{SKU: "shampoo", Score: 40, Lift: 3}},
		"razor":       {{SKU: "gel", Score: 30, Lift: 5}, {SKU: "conditioner", Score: 15, Lift: 1.6}},
	})
}

func TestForContextRanksBySummedScore(t *testing.T) {
	m := shop()
	for _, tc := range []struct {
		name    string
		context []string
		max     int
		minLift float64
		want    []string
	}{
		{"one product", []string{"shampoo"}, 3, 0, []string{"conditioner 40", "mask 10"}},
		// Conditioner goes with both lines of the cart: 40 + 15.
		{"a cart", []string{"razor", "shampoo"}, 3, 0, []string{"conditioner 55", "gel 30", "mask 10"}},
		{"at most two", []string{"razor", "shampoo"}, 2, 0, []string{"conditioner 55", "gel 30"}},
		// With lift at least 1.5, the mask (1.2) goes; razor→conditioner (1.6) stays.
		{"min lift", []string{"razor", "shampoo"}, 3, 1.5, []string{"conditioner 55", "gel 30"}},
		// What the cart holds already is not offered again.
		{"already in the cart", []string{"shampoo", "conditioner"}, 3, 0, []string{"mask 10"}},
		// Two lines of one product count once.
		{"repeated line", []string{"shampoo", "shampoo"}, 3, 0, []string{"conditioner 40", "mask 10"}},
		{"unknown product", []string{"no-such-sku"}, 3, 0, []string{}},
		{"no context", nil, 3, 0, []string{}},
		// The exported API takes any max; none asked, none given (and no panic).
		{"none asked", []string{"razor", "shampoo"}, 0, 0, []string{}},
		{"a negative max", []string{"shampoo"}, -1, 0, []string{}},
	} {
		got := brief(m.ForContext(tc.context, tc.max, tc.minLift, []complements.Suggestion{}))
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestForContextAppends(t *testing.T) {
	prefix := []complements.Suggestion{{SKU: "kept", Score: 1}}
	got := brief(shop().ForContext([]string{"conditioner"}, 3, 0, prefix))
	if want := []string{"kept 1", "shampoo 40"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// brief writes suggestions as "sku score".
func brief(list []complements.Suggestion) []string {
	out := []string{}
	for _, s := range list {
		out = append(out, fmt.Sprintf("%s %v", s.SKU, s.Score))
	}
	return out
}

func TestSuggestionSKUAsJSON(t *testing.T) {
	m := complements.NewModel(complements.Snapshot{Version: 1}, map[string][]complements.Complement{
		"a": {{SKU: `b "quoted" <&>`, Score: 1, Lift: 2}}})
	got := m.ForContext([]string{"a"}, 1, 0, nil)
	if len(got) != 1 {
		t.Fatalf("got %v", got)
	}
	// As encoding/json writes it: quotes escaped, and <, > and & as \u escapes.
	if b := got[0].AppendSKU(nil); string(b) != `"b \"quoted\" \u003c\u0026\u003e"` {
		t.Errorf("AppendSKU = %s", b)
	}
}

func TestForContextOfALargeCart(t *testing.T) {
	// 40 products, each with 5 complements among 60 SKUs: 200 candidates, more than the
	// stack holds. The reference sums scores with a map and sorts, independently.
	by := map[string][]complements.Complement{}
	for p := range 40 {
		for j := range 5 {
			by[fmt.Sprintf("p%02d", p)] = append(by[fmt.Sprintf("p%02d", p)],
				complements.Complement{SKU: fmt.Sprintf("p%02d", (p*7+j*11+3)%60), Score: float64((p+j)%9 + 1), Lift: 1 + float64(j)/2})
		}
	}
	m := complements.NewModel(complements.Snapshot{Version: 1}, by)
	var cart []string
	for p := 0; p < 40; p += 2 {
		cart = append(cart, fmt.Sprintf("p%02d", p))
	}
	sum := map[string]float64{}
	for _, p := range cart {
		for _, c := range by[p] {
			if c.Lift >= 1.5 && !slices.Contains(cart, c.SKU) {
				sum[c.SKU] += c.Score
			}
		}
	}
	var want []string
	for sku := range sum {
		want = append(want, sku)
	}
	slices.SortFunc(want, func(a, b string) int {
		if sum[a] != sum[b] {
			if sum[a] > sum[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	want = want[:10]
	var ref []string
	for _, sku := range want {
		ref = append(ref, fmt.Sprintf("%s %v", sku, sum[sku]))
	}
	if got := brief(m.ForContext(cart, 10, 1.5, nil)); !slices.Equal(got, ref) {
		t.Errorf("got %v\nwant %v", got, ref)
	}
}

func TestChooseRemembersPerContextAndBounds(t *testing.T) {
	m := shop()
	first := m.Choose([]string{"razor", "shampoo"}, 2, 0, nil)
	if got := brief(first); !slices.Equal(got, []string{"conditioner 55", "gel 30"}) {
		t.Fatalf("choice %v", got)
	}
	// The same context again: remembered, not computed.
	computed := complements.Computed(m)
	if again := m.Choose([]string{"razor", "shampoo"}, 2, 0, nil); !slices.Equal(brief(again), brief(first)) || complements.Computed(m) != computed {
		t.Errorf("the same context was chosen for again: %v, %d computed", brief(again), complements.Computed(m)-computed)
	}
	// Appended to what the caller has.
	if got := m.Choose([]string{"razor", "shampoo"}, 2, 0, []complements.Suggestion{{SKU: "x"}}); len(got) != 3 || got[0].SKU != "x" {
		t.Errorf("appended: %v", brief(got))
	}
	// Another bound, another lift or another order of the cart is another choice, equal
	// where it should be.
	for _, tc := range []struct {
		context []string
		max     int
		minLift float64
		want    []string
	}{
		{[]string{"razor", "shampoo"}, 3, 0, []string{"conditioner 55", "gel 30", "mask 10"}},
		{[]string{"razor", "shampoo"}, 2, 1.5, []string{"conditioner 55", "gel 30"}},
		{[]string{"shampoo", "razor"}, 2, 0, []string{"conditioner 55", "gel 30"}},
		{[]string{"shampoo"}, 2, 0, []string{"conditioner 40", "mask 10"}},
	} {
		if got := brief(m.Choose(tc.context, tc.max, tc.minLift, nil)); !slices.Equal(got, tc.want) {
			t.Errorf("%v max %d lift %v: %v, want %v", tc.context, tc.max, tc.minLift, got, tc.want)
		}
	}
	if m.Choose(nil, 3, 0, nil) != nil {
		t.Error("an empty context chose something")
	}
}

func TestChooseUnderConcurrentRequests(t *testing.T) {
	m := complementstest.Model(10000)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				ctx := []string{fmt.Sprintf("sku-%d", (i*31+g)%10000), fmt.Sprintf("sku-%d", (i*17)%10000)}
				got := m.Choose(ctx, 3, 1, nil)
				want := m.ForContext(ctx, 3, 1, nil)
				if !slices.Equal(brief(got), brief(want)) {
					t.Errorf("%v: remembered %v, computed %v", ctx, brief(got), brief(want))
					return
				}
				var c complements.Context
				c.Reset(m, ctx)
				json, _, _, _ := c.ChooseJSON(3, 1, nil, nil)
				if wantJSON, _ := complements.AppendJSON(nil, want); string(json) != string(wantJSON) {
					t.Errorf("%v: remembered %s, computed %s", ctx, json, wantJSON)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestScoresAreWrittenToThreeDecimals(t *testing.T) {
	for score, want := range map[float64]string{0: "0", 40: "40", 51.78277304132055: "51.783", 22.09237570334111: "22.092",
		0.5: "0.5", 0.0004: "0", 0.0005: "0.001", 1.10: "1.1", 999.9999: "1000", 12.305: "12.305"} {
		if got := string(complements.AppendScore(nil, score)); got != want {
			t.Errorf("complements.AppendScore(%v) = %s, want %s", score, got, want)
		}
	}
}

// ChooseJSON answers with the JSON of the list ForContext computes, whether the choice was
// computed, remembered as JSON (a narrow slot that has room), or remembered as a list (long
// SKUs, or more than 4 products).
func TestChooseJSONIsTheJSONOfTheChoice(t *testing.T) {
	long := strings.Repeat("x", 40)
	by := map[string][]complements.Complement{
		"shampoo": {{SKU: "conditioner", Score: 40.12345, Lift: 3}, {SKU: "mask", Score: 10, Lift: 1.2}, {SKU: `a "quoted" <sku>`, Score: 5, Lift: 2}},
		"razor":   {{SKU: "gel", Score: 30, Lift: 5}, {SKU: "conditioner", Score: 15, Lift: 1.6}},
		"long":    {{SKU: long + "1", Score: 3, Lift: 2}, {SKU: long + "2", Score: 2, Lift: 2}, {SKU: long + "3", Score: 1, Lift: 2}},
	}
	for _, p := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		by["many"] = append(by["many"], complements.Complement{SKU: p, Score: float64(len(by["many"]) + 1), Lift: 2})
	}
	m := complements.NewModel(complements.Snapshot{Version: 1}, by)
	for _, tc := range []struct {
		context []string
		max     int
		asJSON  bool // the second answer is read from the remembered JSON
	}{
		{[]string{"razor", "shampoo"}, 3, true},
		{[]string{"shampoo"}, 4, true},
		{[]string{"no-such-sku"}, 3, true},
		{[]string{"long"}, 3, false}, // 3 × 43 bytes: more than a slot keeps
		{[]string{"many"}, 6, false}, // a wide slot keeps lists only
		{[]string{"many"}, 30, false},
	} {
		want, wantAt := complements.AppendJSON([]byte("prefix"), m.ForContext(tc.context, tc.max, 1, nil))
		for round := range 2 {
			computed := complements.Computed(m)
			var c complements.Context
			c.Reset(m, tc.context)
			got, at, list, listed := c.ChooseJSON(tc.max, 1, []byte("prefix"), []complements.Suggestion{{SKU: "kept"}})
			if string(got) != string(want) || at != wantAt {
				t.Errorf("%v max %d, round %d: %s (scores at %d), want %s (at %d)", tc.context, tc.max, round, got, at, want, wantAt)
			}
			fromJSON := round == 1 && tc.asJSON
			if listed == fromJSON || len(list) < 1 || list[0].SKU != "kept" {
				t.Errorf("%v max %d, round %d: listed %v, list %v", tc.context, tc.max, round, listed, brief(list))
			}
			if listed && !slices.Equal(brief(list[1:]), brief(m.ForContext(tc.context, tc.max, 1, nil))) {
				t.Errorf("%v max %d, round %d: list %v", tc.context, tc.max, round, brief(list))
			}
			if again := complements.Computed(m) - computed; round == 1 && tc.max <= 20 && again != 0 {
				t.Errorf("%v max %d: the same context was computed again", tc.context, tc.max)
			}
		}
	}
}
