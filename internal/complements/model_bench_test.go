package complements_test

import (
	"testing"

	"github.com/xsell/xsell/internal/complements"
	"github.com/xsell/xsell/internal/complements/complementstest"
)

// BenchmarkForContext chooses 3 products (max_products's default) for a 3-product cart: the look-up of one assign
// request with learned strategies.
func BenchmarkForContext(b *testing.B) {
	m := complementstest.Model(10000)
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
