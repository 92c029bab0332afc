package complements_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/xsell/xsell/internal/complements"
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
