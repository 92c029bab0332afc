// Package complementstest builds complements models for tests and benchmarks of the packages
// that read one, without a database.
package complementstest

import (
	"fmt"

	"github.com/xsell/xsell/internal/complements"
)

// Model is a model of products SKUs, sku-0 … sku-(products−1), each with 10 complements
// spread over the catalog (scores 100, 93, …; lifts cycling 1.5, 2.5, 3.5), learned from a
// million orders.
func Model(products int) *complements.Model {
	by := make(map[string][]complements.Complement, products)
	for p := range products {
		list := make([]complements.Complement, 10)
		for j := range list {
			list[j] = complements.Complement{SKU: fmt.Sprintf("sku-%d", (p*7+j*131+1)%products),
				Score: float64(100 - 7*j), Lift: 1.5 + float64(j%3), Confidence: 0.2, Support: 0.01, Orders: int64(50 - j)}
		}
		by[fmt.Sprintf("sku-%d", p)] = list
	}
	return complements.NewModel(complements.Snapshot{Version: 1, Orders: 1000000, Catalog: products, Products: products}, by)
}
