package targeting

import (
	"math"
	"testing"
)

// Expected strings are what JavaScript's String(n) prints.
func TestJSNumberFormatting(t *testing.T) {
	cases := []struct {
		in   float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "0"}, {100, "100"}, {-1.5, "-1.5"},
		{0.30000000000000004, "0.30000000000000004"}, {1e21, "1e+21"}, {1.5e300, "1.5e+300"},
		{123456789012345680000, "123456789012345680000"}, {0.000001, "0.000001"},
		{1e-7, "1e-7"}, {1.25e-7, "1.25e-7"}, {math.Inf(1), "Infinity"}, {math.NaN(), "NaN"},
		{5e-324, "5e-324"}, {2147483648, "2147483648"},
	}
	for _, c := range cases {
		if got := string(appendJSNumber(nil, c.in)); got != c.want {
			t.Errorf("String(%v) = %q; want %q", c.in, got, c.want)
		}
	}
}

// Expected numbers are what JavaScript's Number(s) returns.
func TestJSStringToNumber(t *testing.T) {
	cases := []struct {
		in   string
		want float64
	}{
		{"", 0}, {"  ", 0}, {" 12 ", 12}, {"\u00a0 7\n", 7}, {"+5", 5}, {"-2.5e1", -25},
		{".5", 0.5}, {"5.", 5}, {"1e3", 1000}, {"0x1F", 31}, {"0b101", 5}, {"0o17", 15},
		{"Infinity", math.Inf(1)}, {"-Infinity", math.Inf(-1)}, {"1e400", math.Inf(1)},
		{"0x10000000000000000", 18446744073709551616},
	}
	for _, c := range cases {
		if got := stringToNumber(c.in); got != c.want {
			t.Errorf("Number(%q) = %v; want %v", c.in, got, c.want)
		}
	}
	for _, in := range []string{"1_0", "inf", "NaN", "-0x1", "1e", "e1", ".", "0x", "12px", "0x1p3", "+-1"} {
		if got := stringToNumber(in); !math.IsNaN(got) {
			t.Errorf("Number(%q) = %v; want NaN", in, got)
		}
	}
}
