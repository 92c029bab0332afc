package complements_test

import (
	"fmt"
	"testing"

	"github.com/xsell/xsell/internal/complements"
)

// benchModel is a model of 10,000 products, sku-0 … sku-9999, each with 10 complements.
func benchModel() *complements.Model {
	by := make(map[string][]complements.Complement, 10000)
	for p := range 10000 {
		list := make([]complements.Complement, 10)
		for j := range list {
			list[j] = complements.Complement{SKU: fmt.Sprintf("sku-%d", (p*7+j*131+1)%10000),
				Score: float64(100 - 7*j), Lift: 1.5 + float64(j%3), Orders: int64(50 - j)}
		}
		by[fmt.Sprintf("sku-%d", p)] = list
	}
	return complements.NewModel(complements.Snapshot{Version: 1}, by)
}

// BenchmarkForContext chooses 3 products (max_products's default) for a 3-product cart: the look-up of one assign
// request with learned strategies.
func BenchmarkForContext(b *testing.B) {
	m := benchModel()
	ctx := []string{"sku-17", "sku-4242", "sku-9001"}
	out := make([]complements.Suggestion, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		out = m.ForContext(ctx, 3, 1, out[:0])
	}
	if len(out) == 0 {
		b.Fatal("nothing chosen")
	}
}
