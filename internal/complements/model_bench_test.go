package complements_test

import (
	"strconv"
	"testing"

	"github.com/xsell/xsell/internal/complements"
	"github.com/xsell/xsell/internal/complements/complementstest"
)

// BenchmarkForContext chooses 3 products (max_products's default) for a 3-product cart: the
// look-up of one assign request with learned strategies, remembering nothing.
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

// BenchmarkChoose is Choose for the carts of the assign benchmark's three workloads
// (internal/httpapi's BenchmarkAssignLearned*): one cart for everyone, 1,000 carts that
// repeat, and a cart never seen on every call, each of 3 products spread over a catalog of
// 10,000.
func BenchmarkChoose(b *testing.B) {
	for _, w := range []struct {
		name string
		cart func(i int) int
	}{
		{"same", func(int) int { return 0 }},
		{"carts", func(i int) int { return i % 1000 }},
		{"new", func(i int) int { return 1000 + i }},
	} {
		b.Run(w.name, func(b *testing.B) {
			m := complementstest.Model(10000)
			const pool = 1 << 16
			carts := make([][]string, pool)
			for i := range carts {
				carts[i] = cart(w.cart(i))
			}
			out := make([]complements.Suggestion, 0, 64)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				out = m.Choose(carts[i%pool], 3, 1, out[:0])
				i++
			}
			if len(out) == 0 {
				b.Fatal("nothing chosen")
			}
		})
	}
}

// cart is the 3-product cart n of the assign benchmark (internal/httpapi's assignBody): no two
// alike up to 100,000,000.
func cart(n int) []string {
	var c []string
	q := n / 10000
	for _, sku := range [3]int{n % 10000, (n*7 + 4242 + q) % 10000, (n*13 + 9001 + 31*q) % 10000} {
		c = append(c, "sku-"+strconv.Itoa(sku))
	}
	return c
}
