package money_test

import (
	"testing"

	"github.com/xsell/xsell/internal/money"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		code string
		exp  int
		err  error
	}{
		{"EUR", 2, nil}, {"USD", 2, nil}, {"JPY", 0, nil}, {"KWD", 3, nil}, {"CLF", 4, nil},
		// ISO 4217 exponents, not CLDR display digits (x/text says 0 for these).
		{"IQD", 3, nil}, {"IDR", 2, nil}, {"COP", 2, nil}, {"ALL", 2, nil}, {"AMD", 2, nil},
		{"eur", 0, money.ErrFormat}, {"EURO", 0, money.ErrFormat}, {"", 0, money.ErrFormat},
		{"E\x00R", 0, money.ErrFormat}, {"ÉUR", 0, money.ErrFormat},
		{"ABC", 0, money.ErrUnknown}, {"XXX", 0, money.ErrUnknown}, {"XAU", 0, money.ErrUnknown},
		{"XTS", 0, money.ErrUnknown},
	} {
		c, err := money.Parse(tc.code)
		if err != tc.err {
			t.Errorf("Parse(%q): error %v, want %v", tc.code, err, tc.err)
			continue
		}
		if err == nil && c.Exponent() != tc.exp {
			t.Errorf("Parse(%q).Exponent() = %d, want %d", tc.code, c.Exponent(), tc.exp)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		code  string
		minor int64
		want  string
	}{
		{"EUR", 2904, "EUR 29.04"},
		{"EUR", 5, "EUR 0.05"},
		{"EUR", -150, "EUR -1.50"},
		{"EUR", 123456789, "EUR 1,234,567.89"},
		{"JPY", 1500, "JPY 1,500"},
		{"KWD", 1234, "KWD 1.234"},
		{"EUR", money.MaxAmount, "EUR 10,000,000,000.00"},
	} {
		if got := money.MustParse(tc.code).Format(tc.minor); got != tc.want {
			t.Errorf("Format(%d %s) = %q, want %q", tc.minor, tc.code, got, tc.want)
		}
	}
	if got := money.MustParse("EUR").FormatFloat(2903.6); got != "EUR 29.04" {
		t.Errorf("FormatFloat rounds to the minor unit: got %q, want EUR 29.04", got)
	}
}

func TestSymbol(t *testing.T) {
	for _, tc := range []struct {
		code  string
		minor float64
		want  string
	}{
		{"EUR", 2904, "€29.04"},
		{"EUR", -150, "-€1.50"},
		{"GBP", 100, "£1.00"},
		{"CHF", 500, "CHF 5.00"},
	} {
		if got := money.MustParse(tc.code).Symbol(tc.minor); got != tc.want {
			t.Errorf("Symbol(%v %s) = %q, want %q", tc.minor, tc.code, got, tc.want)
		}
	}
}
