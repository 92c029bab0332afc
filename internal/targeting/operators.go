package targeting

import (
	"math"
	"regexp"
)

// The operators and literals an attribute's value is tested against (GrowthBook's
// evalConditionValue and evalOperatorCondition); each is a cond.

// constCond holds always or never.
type constCond bool

func (c constCond) matches(any) bool { return bool(c) }

// eqString is a literal string: the value converted to a string the JavaScript way
// (value + "") must equal it.
type eqString string

func (e eqString) matches(v any) bool {
	switch x := v.(type) {
	case string:
		return x == string(e)
	case float64:
		var buf [32]byte
		return string(appendJSNumber(buf[:0], x)) == string(e)
	case bool:
		return (x && e == "true") || (!x && e == "false")
	}
	return jsToString(v) == string(e)
}

// eqNumber is a literal number: the value converted to a number the JavaScript way
// (value * 1) must equal it.
type eqNumber float64

func (e eqNumber) matches(v any) bool { return jsToNumber(v) == float64(e) }

// eqBool is a literal boolean: a non-null value whose truthiness is the literal.
type eqBool bool

func (e eqBool) matches(v any) bool { return v != nil && jsTruthy(v) == bool(e) }

// eqNull is the literal null: the attribute is missing or null.
type eqNull struct{}

func (eqNull) matches(v any) bool { return v == nil }

// eqLiteral is a literal array or plain object, compared by content.
type eqLiteral struct{ want any }

func (e eqLiteral) matches(v any) bool { return jsonEqual(v, e.want) }

// strictEq is $eq or $ne: JavaScript's === on scalars.
type strictEq struct {
	want   jsScalar
	negate bool
}

func (e strictEq) matches(v any) bool { return e.want.equals(v) != e.negate }

// cmpOp is the comparison of a relational or version operator.
type cmpOp byte

const (
	cmpEq cmpOp = iota
	cmpNe
	cmpLt
	cmpLte
	cmpGt
	cmpGte
)

// cmpOps maps the relational and version operators to their comparison.
var cmpOps = map[string]cmpOp{
	"$lt": cmpLt, "$lte": cmpLte, "$gt": cmpGt, "$gte": cmpGte,
	"$veq": cmpEq, "$vne": cmpNe, "$vlt": cmpLt, "$vlte": cmpLte, "$vgt": cmpGt, "$vgte": cmpGte,
}

// holds says whether a comparison result c (negative, zero, positive) satisfies op.
func (op cmpOp) holds(c int) bool {
	switch op {
	case cmpEq:
		return c == 0
	case cmpNe:
		return c != 0
	case cmpLt:
		return c < 0
	case cmpLte:
		return c <= 0
	case cmpGt:
		return c > 0
	default:
		return c >= 0
	}
}

// relationalCond is $lt, $lte, $gt or $gte with JavaScript's rules: two strings compare as
// strings, anything else as numbers, and NaN never compares.
type relationalCond struct {
	op   cmpOp
	want jsPrim // the argument, converted when compiled
}

func (r relationalCond) matches(v any) bool {
	got := jsPrimOf(v)
	if got.isStr && r.want.isStr {
		return r.op.holds(compareJSStrings(got.s, r.want.s))
	}
	a, b := got.n, r.want.n
	if got.isStr {
		a = stringToNumber(got.s)
	}
	switch {
	case math.IsNaN(a) || math.IsNaN(b):
		return false
	case a < b:
		return r.op.holds(-1)
	case a > b:
		return r.op.holds(1)
	}
	return r.op.holds(0)
}

// existsCond is $exists: the attribute is present and not null, or the opposite.
type existsCond bool

func (e existsCond) matches(v any) bool { return (v != nil) == bool(e) }

// valueSet is the compiled list of $in or $nin.
type valueSet struct {
	strs                       map[string]struct{}
	nums                       []float64
	hasTrue, hasFalse, hasNull bool
}

// has says whether v is in the set by ===.
func (s *valueSet) has(v any) bool {
	switch x := v.(type) {
	case string:
		_, ok := s.strs[x]
		return ok
	case float64:
		for _, n := range s.nums {
			if n == x {
				return true
			}
		}
	case bool:
		if x {
			return s.hasTrue
		}
		return s.hasFalse
	case nil:
		return s.hasNull
	}
	return false
}

// inCond is $in or $nin; an array attribute is in the list when it shares an element with it.
type inCond struct {
	values *valueSet
	negate bool
}

func (c inCond) matches(v any) bool {
	if arr, ok := v.([]any); ok {
		for _, el := range arr {
			if c.values.has(el) {
				return !c.negate
			}
		}
		return c.negate
	}
	return c.values.has(v) != c.negate
}

// arraySizeCond is $size: the attribute is an array whose length matches.
type arraySizeCond struct{ inner cond }

func (s arraySizeCond) matches(v any) bool {
	arr, ok := v.([]any)
	return ok && s.inner.matches(float64(len(arr)))
}

// elemMatchCond is $elemMatch: a truthy element of an array attribute satisfies the inner
// condition (falsy elements are skipped, as in the SDK).
type elemMatchCond struct{ inner cond }

func (e elemMatchCond) matches(v any) bool {
	arr, ok := v.([]any)
	if !ok {
		return false
	}
	for _, el := range arr {
		if jsTruthy(el) && e.inner.matches(el) {
			return true
		}
	}
	return false
}

// allElemsCond is $all: every listed condition is satisfied by some element of the array.
type allElemsCond []cond

func (a allElemsCond) matches(v any) bool {
	arr, ok := v.([]any)
	if !ok {
		return false
	}
	for _, c := range a {
		if !anyElement(arr, c) {
			return false
		}
	}
	return true
}

func anyElement(arr []any, c cond) bool {
	for _, el := range arr {
		if c.matches(el) {
			return true
		}
	}
	return false
}

// regexpCond is $regex.
type regexpCond struct{ re *regexp.Regexp }

func (r regexpCond) matches(v any) bool {
	if s, ok := v.(string); ok {
		return r.re.MatchString(s)
	}
	// RegExp.test converts its argument to a string, so null tests "null".
	return r.re.MatchString(jsToString(v))
}

// jsTypeCond is $type.
type jsTypeCond string

func (t jsTypeCond) matches(v any) bool { return jsType(v) == string(t) }
