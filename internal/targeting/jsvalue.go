package targeting

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// Attribute values are what encoding/json decodes into an any: string, float64, bool, nil,
// []any and map[string]any. The functions here give them JavaScript's meaning, which GrowthBook's
// conditions are defined in.

// jsTruthy is JavaScript's Boolean(v).
func jsTruthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0 && !math.IsNaN(x)
	case string:
		return x != ""
	}
	return true
}

// jsType is the name $type tests: typeof, with "null" and "array" told apart as GrowthBook does.
func jsType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "array"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

// jsToNumber is JavaScript's Number(v).
func jsToNumber(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case string:
		return stringToNumber(x)
	case nil:
		return 0
	case bool:
		if x {
			return 1
		}
		return 0
	case []any:
		return stringToNumber(jsToString(x))
	}
	return math.NaN()
}

// jsToString is JavaScript's String(v).
func jsToString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return "null"
	}
	return string(appendJSString(nil, v))
}

// appendJSString appends String(v) to dst.
func appendJSString(dst []byte, v any) []byte {
	switch x := v.(type) {
	case string:
		return append(dst, x...)
	case nil:
		return append(dst, "null"...)
	case bool:
		return strconv.AppendBool(dst, x)
	case float64:
		return appendJSNumber(dst, x)
	case []any:
		// Array.prototype.join: null elements become empty strings.
		for i, el := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			if el != nil {
				dst = appendJSString(dst, el)
			}
		}
		return dst
	}
	return append(dst, "[object Object]"...)
}

// jsScalar is a JSON scalar for strict (===) comparison, converted once when a condition is
// compiled.
type jsScalar struct {
	kind byte // 's', 'n', 'b', or 0 for null
	s    string
	n    float64
	b    bool
}

// jsScalarOf returns v as a jsScalar; false for arrays and objects.
func jsScalarOf(v any) (jsScalar, bool) {
	switch x := v.(type) {
	case string:
		return jsScalar{kind: 's', s: x}, true
	case float64:
		return jsScalar{kind: 'n', n: x}, true
	case bool:
		return jsScalar{kind: 'b', b: x}, true
	case nil:
		return jsScalar{}, true
	}
	return jsScalar{}, false
}

// equals is JavaScript's === (and includes' SameValueZero, which differs only on NaN, a value
// JSON cannot carry).
func (s jsScalar) equals(v any) bool {
	switch s.kind {
	case 's':
		x, ok := v.(string)
		return ok && x == s.s
	case 'n':
		x, ok := v.(float64)
		return ok && x == s.n
	case 'b':
		x, ok := v.(bool)
		return ok && x == s.b
	default:
		return v == nil
	}
}

// jsPrim is a value after JavaScript's ToPrimitive, as the relational operators see it: a
// string, or a number (null and booleans already converted).
type jsPrim struct {
	isStr bool
	s     string
	n     float64 // the number; for a string, Number(s) when known, else NaN
}

// jsPrimOf converts an attribute value.
func jsPrimOf(v any) jsPrim {
	switch x := v.(type) {
	case string:
		return jsPrim{isStr: true, s: x, n: math.NaN()}
	case float64:
		return jsPrim{n: x}
	case bool:
		if x {
			return jsPrim{n: 1}
		}
		return jsPrim{}
	case nil:
		return jsPrim{}
	case []any:
		return jsPrim{isStr: true, s: jsToString(x), n: math.NaN()}
	case map[string]any:
		return jsPrim{isStr: true, s: "[object Object]", n: math.NaN()}
	}
	return jsPrim{n: math.NaN()}
}

// expectedJSPrim converts an operator's argument, once, when the condition is compiled.
func expectedJSPrim(v any) jsPrim {
	p := jsPrimOf(v)
	if p.isStr {
		p.n = stringToNumber(p.s)
	}
	return p
}

// compareJSStrings orders strings by UTF-16 code units, as JavaScript's < does; it differs from
// Go's byte order only between characters above U+FFFF and those in U+E000..U+FFFF.
func compareJSStrings(a, b string) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	if i == n {
		return len(a) - len(b)
	}
	for i > 0 && !utf8.RuneStart(a[i]) {
		i--
	}
	ra, _ := utf8.DecodeRuneInString(a[i:])
	rb, _ := utf8.DecodeRuneInString(b[i:])
	ua, ub := firstUTF16Unit(ra), firstUTF16Unit(rb)
	if ua != ub {
		return int(ua) - int(ub)
	}
	// Same high surrogate: the runes differ in their low surrogates, whose order is the rune
	// order.
	return int(ra) - int(rb)
}

// firstUTF16Unit is the first UTF-16 code unit of r: r itself, or its high surrogate.
func firstUTF16Unit(r rune) rune {
	if r < 0x10000 {
		return r
	}
	return 0xD800 + (r-0x10000)>>10
}

// jsonEqual compares two attribute values by content. The SDK compares JSON.stringify output,
// which depends on the order of an object's keys; Go maps have none, so objects are equal when
// their contents are.
func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			if yv, ok := y[k]; !ok || !jsonEqual(xv, yv) {
				return false
			}
		}
		return true
	}
	s, ok := jsScalarOf(a)
	return ok && s.equals(b)
}
