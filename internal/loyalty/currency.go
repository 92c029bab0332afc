package loyalty

import (
	"math/bits"

	"github.com/xsell/xsell/internal/money"
)

// basePoints is what an order earns: earnRate points per major unit of amount − discount,
// floored (12.50 EUR at 2 points per euro is 25 points), never below zero and at most
// MaxPoints, however absurd the amount.
func basePoints(amount, discount int64, currency string, earnRate int) int64 {
	paid := amount - discount
	if paid <= 0 || earnRate <= 0 {
		return 0
	}
	per := uint64(money.Lookup(currency).MinorPerMajor())
	hi, lo := bits.Mul64(uint64(paid), uint64(earnRate))
	if hi >= per {
		return MaxPoints // the quotient would not even fit in 64 bits
	}
	q, _ := bits.Div64(hi, lo, per)
	return int64(min(q, MaxPoints))
}
