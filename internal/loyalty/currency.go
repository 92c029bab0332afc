package loyalty

import "math/bits"

// minorExponents lists the ISO 4217 currencies whose minor unit is not 1/100 of the major
// unit; every other currency has two decimals. It is the one place that knows this.
var minorExponents = map[string]int{
	// No minor unit.
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
	"PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	// Thousandths.
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	// Ten-thousandths.
	"CLF": 4, "UYW": 4,
}

// minorPerMajor is how many minor units make one major unit of currency.
func minorPerMajor(currency string) int64 {
	exp, ok := minorExponents[currency]
	if !ok {
		exp = 2
	}
	n := int64(1)
	for range exp {
		n *= 10
	}
	return n
}

// basePoints is what an order earns: earnRate points per major unit of amount − discount,
// floored (12.50 EUR at 2 points per euro is 25 points), never below zero and at most
// MaxPoints, however absurd the amount.
func basePoints(amount, discount int64, currency string, earnRate int) int64 {
	paid := amount - discount
	if paid <= 0 || earnRate <= 0 {
		return 0
	}
	per := uint64(minorPerMajor(currency))
	hi, lo := bits.Mul64(uint64(paid), uint64(earnRate))
	if hi >= per {
		return MaxPoints // the quotient would not even fit in 64 bits
	}
	q, _ := bits.Div64(hi, lo, per)
	return int64(min(q, MaxPoints))
}
