package targeting

import (
	"math"
	"math/big"
	"strconv"
	"strings"
)

// appendJSNumber appends f as JavaScript's Number.prototype.toString prints it.
func appendJSNumber(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case f == 0:
		return append(dst, '0')
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	// The shortest digits that round-trip, as JavaScript uses, read from Go's d.ddde±x form
	// into buffers on the stack: a number attribute compared with a string literal is printed
	// on every evaluation.
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	var digitBuf [24]byte
	digits := digitBuf[:0]
	i := 0
	for ; e[i] != 'e'; i++ {
		if e[i] != '.' {
			digits = append(digits, e[i])
		}
	}
	exp, _ := strconv.Atoi(string(e[i+1:]))
	// k digits, and the decimal point after the n-th: the notation of ECMA-262 Number::toString.
	k, n := len(digits), exp+1
	switch {
	case k <= n && n <= 21:
		dst = append(dst, digits...)
		for range n - k {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, digits[:n]...)
		dst = append(dst, '.')
		dst = append(dst, digits[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for range -n {
			dst = append(dst, '0')
		}
		dst = append(dst, digits...)
	default:
		dst = append(dst, digits[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst
}

// stringToNumber is JavaScript's StringToNumber: surrounding white space ignored, empty means 0,
// 0x/0o/0b integers, Infinity, decimal literals, NaN for anything else.
func stringToNumber(s string) float64 {
	s = strings.TrimFunc(s, jsSpace)
	if s == "" {
		return 0
	}
	if base := radixPrefix(s); base != 0 {
		return radixToNumber(s[2:], base)
	}
	body := s
	if s[0] == '+' || s[0] == '-' {
		body = s[1:]
	}
	if body == "Infinity" {
		if s[0] == '-' {
			return math.Inf(-1)
		}
		return math.Inf(1)
	}
	if !isDecimalLiteral(body) {
		return math.NaN()
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !isRangeError(err) {
		return math.NaN()
	}
	return f // ±Inf beyond the float64 range, as in JavaScript
}

// jsSpace reports JavaScript's StrWhiteSpaceChar: white space and line terminators.
func jsSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', '\u00a0', '\u1680', '\u2028', '\u2029',
		'\u202f', '\u205f', '\u3000', '\ufeff':
		return true
	}
	return r >= '\u2000' && r <= '\u200a'
}

// radixPrefix is the base a 0x, 0o or 0b prefix gives, or 0 when s has none.
func radixPrefix(s string) int {
	if len(s) < 3 || s[0] != '0' {
		return 0
	}
	switch s[1] {
	case 'x', 'X':
		return 16
	case 'o', 'O':
		return 8
	case 'b', 'B':
		return 2
	}
	return 0
}

// radixToNumber reads the digits after a radix prefix: an exact integer rounded once to a
// float64, or NaN when a character is not a digit of the base (signs included).
func radixToNumber(digits string, base int) float64 {
	if strings.ContainsAny(digits, "+-_") {
		return math.NaN()
	}
	n, ok := new(big.Int).SetString(digits, base)
	if !ok {
		return math.NaN()
	}
	f, _ := new(big.Float).SetInt(n).Float64()
	return f
}

func isRangeError(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// isDecimalLiteral accepts JavaScript's StrUnsignedDecimalLiteral minus Infinity: digits with an
// optional fraction and exponent, at least one mantissa digit ("1.", ".5", "1e3"); it rejects
// forms only Go reads, like "inf" or "1_0".
func isDecimalLiteral(s string) bool {
	i, mantissa := 0, 0
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	mantissa += digits()
	if i < len(s) && s[i] == '.' {
		i++
		mantissa += digits()
	}
	if mantissa == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}
