// Package money is the one place that knows currencies: which ISO 4217 codes are money, how
// many minor units make a major one, the bounds of an amount, and how an amount is shown to
// people ("EUR 29.04", never "2904").
package money

import (
	"errors"
	"fmt"
	"math"

	"golang.org/x/text/currency"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/number"
)

// MaxAmount is the largest amount, in minor units, that one order, refund, discount or unit
// price may carry: 10^12 (ten billion euros). It leaves room to add a million of them in an
// int64 without overflow, and no real basket comes near it.
const MaxAmount int64 = 1_000_000_000_000

// Currency is an ISO 4217 currency that money can be held in.
type Currency struct {
	code string
	exp  int
}

// ErrFormat is returned for a code that is not three upper-case letters.
var ErrFormat = errors.New("must be an upper-case ISO 4217 code such as EUR")

// ErrUnknown is returned for three letters that name no currency money can be held in.
var ErrUnknown = errors.New("is not an ISO 4217 currency code")

// exponents lists the currencies whose minor unit is not a hundredth of the major unit, as
// ISO 4217 defines them (the exponent payment processors send amounts in). CLDR, and so
// golang.org/x/text, gives display digits instead (IQD, IDR, COP, ALL, AMD with none), which
// would misread amounts that checkout sends in ISO minor units.
var exponents = map[string]int{
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
	"PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	"CLF": 4,
}

// notMoney are ISO 4217 codes that x/text knows but that no shop takes payment in: precious
// metals, fund units, the test code and "no currency".
var notMoney = map[string]bool{
	"XAG": true, "XAU": true, "XPD": true, "XPT": true, "XBA": true, "XBB": true, "XBC": true,
	"XBD": true, "XDR": true, "XSU": true, "XUA": true, "XTS": true, "XXX": true,
}

// Parse returns the currency of an upper-case ISO 4217 code.
func Parse(code string) (Currency, error) {
	if len(code) != 3 || !upper(code) {
		return Currency{}, ErrFormat
	}
	u, err := currency.ParseISO(code)
	if err != nil || u == (currency.Unit{}) || notMoney[code] {
		return Currency{}, ErrUnknown
	}
	exp, ok := exponents[code]
	if !ok {
		exp = 2
	}
	return Currency{code: code, exp: exp}, nil
}

// MustParse is Parse for codes known at compile time; it panics on a bad one.
func MustParse(code string) Currency {
	c, err := Parse(code)
	if err != nil {
		panic(fmt.Sprintf("money.MustParse(%q): %v", code, err))
	}
	return c
}

// Valid reports whether code names a currency money can be held in.
func Valid(code string) bool {
	_, err := Parse(code)
	return err == nil
}

func upper(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// Lookup is Parse for a code that was validated when it was stored: it never fails, so that a
// background job cannot be stopped by one odd row. An unknown code gets two decimals, as most
// currencies have.
func Lookup(code string) Currency {
	if c, err := Parse(code); err == nil {
		return c
	}
	return Currency{code: code, exp: 2}
}

// Code is the ISO 4217 code, such as EUR.
func (c Currency) Code() string { return c.code }

// String is the code.
func (c Currency) String() string { return c.code }

// IsZero reports whether c is the zero Currency, which no Parse returns.
func (c Currency) IsZero() bool { return c.code == "" }

// Exponent is the number of decimals of the minor unit: 2 for EUR, 0 for JPY, 3 for KWD.
func (c Currency) Exponent() int { return c.exp }

// MinorPerMajor is how many minor units make one major unit: 100 for EUR.
func (c Currency) MinorPerMajor() int64 {
	n := int64(1)
	for range c.exp {
		n *= 10
	}
	return n
}

// printer formats numbers the same way wherever money is shown: English digit grouping, so
// that a report reads alike on every machine.
var printer = message.NewPrinter(language.English)

// Format shows an amount of minor units in major units with the code: "EUR 1,234.56".
func (c Currency) Format(minor int64) string { return c.FormatFloat(float64(minor)) }

// FormatFloat is Format for a mean or other figure that need not be whole minor units, such as
// revenue per shopper: "EUR 29.04". It is rounded to the currency's minor unit.
func (c Currency) FormatFloat(minor float64) string {
	return c.code + " " + c.Number(minor)
}

// Number shows an amount of minor units in major units without the code: "1,234.56".
func (c Currency) Number(minor float64) string {
	if math.IsNaN(minor) || math.IsInf(minor, 0) {
		return fmt.Sprint(minor)
	}
	major := minor / float64(c.MinorPerMajor())
	return printer.Sprint(number.Decimal(major, number.Scale(c.exp)))
}

// Symbol shows an amount with the currency's symbol where it has a well-known one: "€29.04",
// "US$5.00", else the code: "CHF 5.00". For pages; text reports use Format.
func (c Currency) Symbol(minor float64) string {
	u, err := currency.ParseISO(c.code)
	if err != nil {
		return c.FormatFloat(minor)
	}
	sym := printer.Sprint(currency.Symbol(u))
	if sym == c.code {
		return c.FormatFloat(minor)
	}
	n := c.Number(minor)
	if len(n) > 0 && n[0] == '-' {
		return "-" + sym + n[1:]
	}
	return sym + n
}
