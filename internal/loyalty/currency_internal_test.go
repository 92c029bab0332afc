package loyalty

import "testing"

func TestBasePointsAndMulDiv(t *testing.T) {
	cases := []struct {
		amount, discount int64
		currency         string
		rate             int
		want             int64
	}{
		{12_550, 550, "EUR", 2, 240},
		{1_250, 0, "USD", 2, 25},
		{99, 0, "EUR", 1, 0},
		{1_234, 0, "JPY", 1, 1_234},
		{12_345, 0, "KWD", 2, 24},
		{100, 200, "EUR", 1, 0},
		{9_000_000_000_000_000_000, 0, "EUR", 10_000, MaxPoints}, // capped, not wrapped around
		{500_000_000_000, 0, "EUR", 3, MaxPoints},
	}
	for _, c := range cases {
		if got := basePoints(c.amount, c.discount, c.currency, c.rate); got != c.want {
			t.Errorf("basePoints(%d, %d, %s, %d) = %d, want %d", c.amount, c.discount, c.currency, c.rate, got, c.want)
		}
	}
	// 10^12 × 9·10^12 overflows int64; the quotient does not.
	if got := mulDiv(1_000_000_000_000, 9_000_000_000_000, 10_000_000_000_000); got != 900_000_000_000 {
		t.Errorf("mulDiv = %d, want 900000000000", got)
	}
	if got := mulDiv(7, 1, 3); got != 2 {
		t.Errorf("mulDiv(7, 1, 3) = %d, want 2", got)
	}
}
