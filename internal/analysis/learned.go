package analysis

import (
	"fmt"
	"strings"

	"github.com/xsell/xsell/internal/experiments"
)

// crossSellNote says, for a phase with both learned arms (products chosen per shopper by the
// complements model) and arms with fixed products or none, that cross_sell_rate counts other
// products in each: a learned arm's shoppers are cross-sold by a product they were offered,
// the others by the experiment's target products. Their difference on it is then partly a
// difference in what is counted — a shopper is likelier to buy one of the complements chosen
// for the very product they came for than a fixed list — so the report says so where it is
// read. "" when every arm counts alike.
func crossSellNote(vs []experiments.Variant, targets []string) string {
	var learned, fixed []string
	for _, v := range vs {
		if v.Strategy.Learned() {
			learned = append(learned, v.Key)
		} else {
			fixed = append(fixed, v.Key)
		}
	}
	if len(learned) == 0 || len(fixed) == 0 {
		return ""
	}
	what := "none are set"
	switch {
	case len(targets) > 0 && len(targets) <= 5:
		what = strings.Join(targets, ", ")
	case len(targets) > 5:
		what = fmt.Sprintf("%d SKUs", len(targets))
	}
	return fmt.Sprintf("cross_sell_rate counts other products by arm: in the learned arms (%s) a purchase of a product "+
		"the shopper was offered, in the others (%s) the experiment's target products (%s). Their difference on it is partly "+
		"a difference in what is counted: compare learned arms with each other on it, and with the others on conversion and revenue",
		strings.Join(learned, ", "), strings.Join(fixed, ", "), what)
}
