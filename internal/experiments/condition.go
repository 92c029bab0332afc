package experiments

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// conditionRoot names the experiment field a condition comes from, so that
// error paths read like the request body (targeting.country.$in).
const conditionRoot = "targeting"

// ConditionError reports what is wrong in a targeting condition and where.
type ConditionError struct {
	// Path is the JSON path of the offending element, such as targeting.$or[1].country.$in.
	Path string
	// Message says what is wrong at Path.
	Message string
}

// Error returns the path and the message.
func (e *ConditionError) Error() string { return e.Path + ": " + e.Message }

// Condition is a compiled targeting condition in GrowthBook's condition syntax.
type Condition struct {
	raw  json.RawMessage
	root docCond
}

// ParseCondition validates and compiles a targeting condition; an empty or
// null condition targets everyone.
//
// It is stricter than GrowthBook's SDK, which silently evaluates mistakes to
// false: unknown operators (anywhere, including "$"-keys at the top level),
// invalid regular expressions, and operator arguments of the wrong type are
// rejected with a *ConditionError so they are caught when an experiment is
// saved rather than excluding every shopper at checkout. Regular expressions
// are Go's RE2 dialect: the JavaScript-only lookarounds and backreferences
// are rejected here rather than evaluated differently.
func ParseCondition(raw json.RawMessage) (*Condition, error) {
	return parseCondition(raw, false)
}

// parseConditionLenient compiles a condition the way GrowthBook's SDK reads
// it: unknown operators and top-level "$" keys, invalid or non-string regular
// expressions, non-array arguments of $in/$nin/$all, non-scalar arguments of
// $eq/$ne and objects mixing operators with plain keys are accepted and
// evaluate exactly as the SDK evaluates them. The product never stores such
// conditions; this exists so the conformance cases that exercise the SDK's
// forgiveness can run. Structural errors (a condition that is not an object,
// $and/$or/$nor without an array, $not/$elemMatch without an object) are
// errors here too, because the SDK throws or answers nonsensically on them.
func parseConditionLenient(raw json.RawMessage) (*Condition, error) {
	return parseCondition(raw, true)
}

func parseCondition(raw json.RawMessage, lenient bool) (*Condition, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return &Condition{raw: json.RawMessage("null")}, nil
	}
	var v any
	if err := json.Unmarshal(trimmed, &v); err != nil {
		return nil, &ConditionError{Path: conditionRoot, Message: "invalid JSON: " + err.Error()}
	}
	c := condCompiler{lenient: lenient}
	root, err := c.doc(v, conditionRoot)
	if err != nil {
		return nil, err
	}
	return &Condition{raw: slices.Clone(trimmed), root: root}, nil
}

// Eval reports whether a shopper with these attributes matches the condition;
// savedGroups holds the member lists that $inGroup and $notInGroup refer to.
// Attribute values are those encoding/json produces (float64, string, bool,
// nil, []any, map[string]any). A nil condition matches everyone.
func (c *Condition) Eval(attrs map[string]any, savedGroups map[string][]any) bool {
	if c == nil {
		return true
	}
	return c.root.holds(attrs, savedGroups)
}

// MarshalJSON returns the condition as it was parsed.
func (c *Condition) MarshalJSON() ([]byte, error) {
	if c == nil || len(c.raw) == 0 {
		return []byte("null"), nil
	}
	return c.raw, nil
}

// UnmarshalJSON parses and validates a condition like ParseCondition.
func (c *Condition) UnmarshalJSON(data []byte) error {
	parsed, err := ParseCondition(data)
	if err != nil {
		return err
	}
	*c = *parsed
	return nil
}

// ---- compilation ----

type condCompiler struct {
	lenient bool
}

func condErrAt(path, msg string) error { return &ConditionError{Path: path, Message: msg} }

func sortedCondKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// Sorted so that the first error reported for a condition is stable.
	slices.Sort(keys)
	return keys
}

// doc compiles a condition object: logical operators and attribute paths.
func (c condCompiler) doc(v any, path string) (docCond, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, condErrAt(path, "condition must be a JSON object")
	}
	out := make(docCond, 0, len(m))
	for _, k := range sortedCondKeys(m) {
		p := path + "." + k
		switch k {
		case "$and", "$or", "$nor":
			list, ok := m[k].([]any)
			if !ok {
				return nil, condErrAt(p, k+" needs an array of conditions")
			}
			subs := make([]docCond, len(list))
			for i, el := range list {
				sub, err := c.doc(el, p+"["+strconv.Itoa(i)+"]")
				if err != nil {
					return nil, err
				}
				subs[i] = sub
			}
			switch k {
			case "$and":
				out = append(out, andClause(subs))
			case "$or":
				out = append(out, orClause(subs))
			default:
				out = append(out, norClause(subs))
			}
		case "$not":
			sub, err := c.doc(m[k], p)
			if err != nil {
				return nil, err
			}
			out = append(out, notClause{sub})
		default:
			if strings.HasPrefix(k, "$") && !c.lenient {
				if isValueOperator(k) {
					return nil, condErrAt(p, k+" applies to an attribute: write {\"attribute\": {\""+k+"\": ...}}")
				}
				return nil, condErrAt(p, "unknown operator "+strconv.Quote(k))
			}
			vc, err := c.value(m[k], p)
			if err != nil {
				return nil, err
			}
			out = append(out, newFieldClause(k, vc))
		}
	}
	return out, nil
}

// value compiles what an attribute is tested against: a literal or an
// object of operators.
func (c condCompiler) value(v any, path string) (valueCond, error) {
	switch x := v.(type) {
	case string:
		return eqString(x), nil
	case float64:
		return eqNumber(x), nil
	case bool:
		return eqBool(x), nil
	case nil:
		return eqNull{}, nil
	case []any:
		return eqLiteral{x}, nil
	case map[string]any:
		ops := 0
		for k := range x {
			if strings.HasPrefix(k, "$") {
				ops++
			}
		}
		if ops == 0 {
			return eqLiteral{x}, nil
		}
		if ops != len(x) {
			if c.lenient {
				return eqLiteral{x}, nil
			}
			return nil, condErrAt(path, "operators ($...) and plain keys cannot be mixed in one object")
		}
		conds := make(opList, 0, len(x))
		for _, k := range sortedCondKeys(x) {
			oc, err := c.operator(k, x[k], path+"."+k)
			if err != nil {
				return nil, err
			}
			conds = append(conds, oc)
		}
		if len(conds) == 1 {
			return conds[0], nil
		}
		return conds, nil
	default:
		return nil, condErrAt(path, "unsupported JSON value")
	}
}

// bad reports a wrongly typed operator argument; in lenient mode it becomes
// the constant the SDK would answer instead.
func (c condCompiler) badArg(path, msg string, sdkAnswer bool) (valueCond, error) {
	if c.lenient {
		return constCond(sdkAnswer), nil
	}
	return nil, condErrAt(path, msg)
}

func (c condCompiler) operator(op string, arg any, path string) (valueCond, error) {
	switch op {
	case "$eq", "$ne":
		p, ok := jsScalarOf(arg)
		if !ok {
			// The SDK compares with ===, which is never true for a literal array or object.
			return c.badArg(path, op+" needs a string, number, boolean or null", op == "$ne")
		}
		return strictEq{want: p, negate: op == "$ne"}, nil
	case "$lt", "$lte", "$gt", "$gte":
		switch arg.(type) {
		case string, float64:
		default:
			if !c.lenient {
				return nil, condErrAt(path, op+" needs a number or a string")
			}
		}
		return relationalCond{op: cmpOps[op], want: expectedJSPrim(arg)}, nil
	case "$exists":
		b, ok := arg.(bool)
		if !ok {
			if !c.lenient {
				return nil, condErrAt(path, "$exists needs true or false")
			}
			b = jsTruthy(arg)
		}
		return existsCond(b), nil
	case "$in", "$nin":
		list, ok := arg.([]any)
		if !ok {
			return c.badArg(path, op+" needs an array", false)
		}
		values, err := c.compileSet(list, path)
		if err != nil {
			return nil, err
		}
		return inCond{values: values, negate: op == "$nin"}, nil
	case "$inGroup", "$notInGroup":
		key, ok := arg.(string)
		if !ok {
			if !c.lenient {
				return nil, condErrAt(path, op+" needs the name of a saved group")
			}
			// JavaScript converts a property key to a string.
			key = jsToString(arg)
		}
		return inGroup{key: key, negate: op == "$notInGroup"}, nil
	case "$not":
		inner, err := c.value(arg, path)
		if err != nil {
			return nil, err
		}
		return notValueCond{inner}, nil
	case "$size":
		inner, err := c.value(arg, path)
		if err != nil {
			return nil, err
		}
		return arraySizeCond{inner}, nil
	case "$elemMatch":
		m, ok := arg.(map[string]any)
		if !ok {
			return nil, condErrAt(path, "$elemMatch needs an object")
		}
		if isOperatorObject(m) {
			inner, err := c.value(m, path)
			if err != nil {
				return nil, err
			}
			return elemMatchValue{inner}, nil
		}
		sub, err := c.doc(m, path)
		if err != nil {
			return nil, err
		}
		return elemMatchDoc{sub}, nil
	case "$all":
		list, ok := arg.([]any)
		if !ok {
			return c.badArg(path, "$all needs an array", false)
		}
		conds := make([]valueCond, len(list))
		for i, el := range list {
			vc, err := c.value(el, path+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return nil, err
			}
			conds[i] = vc
		}
		return allElemsCond(conds), nil
	case "$regex":
		s, ok := arg.(string)
		if !ok {
			return c.badArg(path, "$regex needs a string", false)
		}
		// RE2 instead of JavaScript's engine: linear time on shopper-supplied
		// input. Patterns using JavaScript-only syntax fail to compile, and
		// the remaining differences (\s is ASCII-only, "." matches "\r")
		// do not arise for the ids and codes that targeting matches.
		re, err := regexp.Compile(s)
		if err != nil {
			return c.badArg(path, "invalid regular expression: "+err.Error(), false)
		}
		return regexpCond{re}, nil
	case "$type":
		s, _ := arg.(string)
		switch s {
		case "string", "number", "boolean", "object", "array", "null":
		default:
			if !c.lenient {
				return nil, condErrAt(path, `$type needs one of "string", "number", "boolean", "object", "array", "null"`)
			}
			if _, isStr := arg.(string); !isStr {
				return constCond(false), nil
			}
		}
		return jsTypeCond(s), nil
	case "$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte":
		switch arg.(type) {
		case string, float64:
		default:
			if !c.lenient {
				return nil, condErrAt(path, op+" needs a version string")
			}
		}
		return versionCond{op: cmpOps[op], want: paddedVersion(arg)}, nil
	default:
		if c.lenient {
			return constCond(false), nil
		}
		return nil, condErrAt(path, "unknown operator "+strconv.Quote(op))
	}
}

// set compiles the candidate list of $in and $nin.
func (c condCompiler) compileSet(list []any, path string) (*valueSet, error) {
	s := &valueSet{}
	for i, el := range list {
		switch x := el.(type) {
		case string:
			s.strs = append(s.strs, x)
		case float64:
			s.nums = append(s.nums, x)
		case bool:
			if x {
				s.hasTrue = true
			} else {
				s.hasFalse = true
			}
		case nil:
			s.hasNull = true
		default:
			// Arrays and objects are compared by identity in the SDK, so
			// they never match anything.
			if !c.lenient {
				return nil, condErrAt(path+"["+strconv.Itoa(i)+"]", "values must be strings, numbers, booleans or null")
			}
		}
	}
	// A map pays off only past a handful of strings; below that a linear
	// scan is faster and both allocate nothing when evaluated.
	if len(s.strs) > 8 {
		s.index = make(map[string]struct{}, len(s.strs))
		for _, str := range s.strs {
			s.index[str] = struct{}{}
		}
	}
	return s, nil
}

// isValueOperator reports whether op is an operator applied to an attribute
// value (as opposed to $and, $or, $nor and $not over conditions).
func isValueOperator(op string) bool {
	switch op {
	case "$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$exists", "$in", "$nin",
		"$inGroup", "$notInGroup", "$size", "$elemMatch", "$all", "$regex", "$type":
		return true
	}
	_, ok := cmpOps[op]
	return ok
}

// isOperatorObject is GrowthBook's test for an object of operators: not
// empty, and every key starts with "$".
func isOperatorObject(m map[string]any) bool {
	if len(m) == 0 {
		return false
	}
	for k := range m {
		if !strings.HasPrefix(k, "$") {
			return false
		}
	}
	return true
}

// ---- evaluation: conditions over documents ----

// clause is one key of a condition object, tested against a document.
type condClause interface {
	holds(doc any, groups map[string][]any) bool
}

// docCond is a condition object; every clause must hold.
type docCond []condClause

func (d docCond) holds(doc any, groups map[string][]any) bool {
	for _, c := range d {
		if !c.holds(doc, groups) {
			return false
		}
	}
	return true
}

// fieldClause tests the attribute at a path; most paths are a single key,
// which is looked up directly.
type fieldClause struct {
	key   string   // the path when it has no dot
	parts []string // the dotted path split, when it has dots
	cond  valueCond
}

func newFieldClause(path string, cond valueCond) *fieldClause {
	if !strings.Contains(path, ".") {
		return &fieldClause{key: path, cond: cond}
	}
	return &fieldClause{parts: strings.Split(path, "."), cond: cond}
}

func (f *fieldClause) holds(doc any, groups map[string][]any) bool {
	if f.parts == nil {
		var v any
		if m, ok := doc.(map[string]any); ok {
			v = m[f.key]
		}
		return f.cond.matches(v, groups)
	}
	return f.cond.matches(lookupPath(doc, f.parts), groups)
}

type andClause []docCond

func (a andClause) holds(doc any, groups map[string][]any) bool {
	for _, d := range a {
		if !d.holds(doc, groups) {
			return false
		}
	}
	return true
}

// orClause holds when any alternative does, and, as in GrowthBook, when there are none.
type orClause []docCond

func (o orClause) holds(doc any, groups map[string][]any) bool {
	if len(o) == 0 {
		return true
	}
	for _, d := range o {
		if d.holds(doc, groups) {
			return true
		}
	}
	return false
}

// norClause is the negation of orClause, so an empty $nor never holds.
type norClause []docCond

func (n norClause) holds(doc any, groups map[string][]any) bool {
	return !orClause(n).holds(doc, groups)
}

type notClause struct{ sub docCond }

func (n notClause) holds(doc any, groups map[string][]any) bool {
	return !n.sub.holds(doc, groups)
}

// lookup follows a dotted path like GrowthBook's getPath: a missing step
// gives null. Arrays answer numeric indexes and "length" as in JavaScript.
func lookupPath(doc any, parts []string) any {
	cur := doc
	for _, k := range parts {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[k]
			if !ok {
				return nil
			}
			cur = v
		case []any:
			if k == "length" {
				cur = float64(len(c))
				continue
			}
			i, ok := arrayIndex(k)
			if !ok || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

// arrayIndex parses a canonical JavaScript array index ("0", "17", not "01").
func arrayIndex(k string) (int, bool) {
	if k == "" || len(k) > 9 || (k[0] == '0' && len(k) > 1) {
		return 0, false
	}
	n := 0
	for i := 0; i < len(k); i++ {
		if k[i] < '0' || k[i] > '9' {
			return 0, false
		}
		n = n*10 + int(k[i]-'0')
	}
	return n, true
}

// ---- evaluation: conditions over values ----

// valueCond tests one attribute value (GrowthBook's evalConditionValue).
type valueCond interface {
	matches(v any, groups map[string][]any) bool
}

// opList is an object of several operators; all must hold.
type opList []valueCond

func (l opList) matches(v any, groups map[string][]any) bool {
	for _, c := range l {
		if !c.matches(v, groups) {
			return false
		}
	}
	return true
}

type constCond bool

func (c constCond) matches(any, map[string][]any) bool { return bool(c) }

// eqString is a literal string condition: the value converted to a string
// the JavaScript way (value + "") must equal it.
type eqString string

func (e eqString) matches(v any, _ map[string][]any) bool {
	switch x := v.(type) {
	case string:
		return x == string(e)
	case nil:
		return e == "null"
	case bool:
		if x {
			return e == "true"
		}
		return e == "false"
	case float64:
		var buf [32]byte
		return string(appendJSNumber(buf[:0], x)) == string(e)
	default:
		return jsToString(v) == string(e)
	}
}

// eqNumber is a literal number condition: the value converted to a number
// the JavaScript way (value * 1) must equal it.
type eqNumber float64

func (e eqNumber) matches(v any, _ map[string][]any) bool {
	return jsToNumber(v) == float64(e)
}

// eqBool is a literal boolean condition: a non-null value whose truthiness is the literal.
type eqBool bool

func (e eqBool) matches(v any, _ map[string][]any) bool {
	return v != nil && jsTruthy(v) == bool(e)
}

type eqNull struct{}

func (eqNull) matches(v any, _ map[string][]any) bool { return v == nil }

// eqLiteral is a literal array or plain object, compared structurally (the
// SDK compares JSON serialisations).
type eqLiteral struct{ want any }

func (e eqLiteral) matches(v any, _ map[string][]any) bool { return jsonEqual(v, e.want) }

func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
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
			yv, ok := y[k]
			if !ok || !jsonEqual(xv, yv) {
				return false
			}
		}
		return true
	default:
		return false
	}
}

// scalar is a JSON scalar for strict (===) comparison.
type jsScalar struct {
	kind byte // 's', 'n', 'b' or 0 for null
	s    string
	n    float64
	b    bool
}

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

// equals is JavaScript's === (and includes' SameValueZero, which differs
// only on NaN, a value JSON cannot carry).
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

type strictEq struct {
	want   jsScalar
	negate bool
}

func (e strictEq) matches(v any, _ map[string][]any) bool { return e.want.equals(v) != e.negate }

type cmpOp byte

const (
	cmpEq cmpOp = iota
	cmpNe
	cmpLt
	cmpLte
	cmpGt
	cmpGte
)

var cmpOps = map[string]cmpOp{
	"$lt": cmpLt, "$lte": cmpLte, "$gt": cmpGt, "$gte": cmpGte,
	"$veq": cmpEq, "$vne": cmpNe, "$vlt": cmpLt, "$vlte": cmpLte, "$vgt": cmpGt, "$vgte": cmpGte,
}

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

// prim is a value after JavaScript's ToPrimitive: a string, or a number
// (null and booleans already converted, as the relational operators do).
type jsPrim struct {
	isStr bool
	s     string
	n     float64 // the number, or for strings ToNumber(s) when known
}

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

// expectedPrim converts an operator argument once, at compile time.
func expectedJSPrim(v any) jsPrim {
	p := jsPrimOf(v)
	if p.isStr {
		p.n = stringToNumber(p.s)
	}
	return p
}

// relational is $lt, $lte, $gt or $gte with JavaScript's comparison rules:
// two strings compare as strings, anything else as numbers, NaN never holds.
type relationalCond struct {
	op   cmpOp
	want jsPrim
}

func (r relationalCond) matches(v any, _ map[string][]any) bool {
	var got jsPrim
	if f, ok := v.(float64); ok {
		got = jsPrim{n: f}
	} else {
		got = jsPrimOf(v)
	}
	if got.isStr && r.want.isStr {
		return r.op.holds(compareJSStrings(got.s, r.want.s))
	}
	a := got.n
	if got.isStr {
		a = stringToNumber(got.s)
	}
	b := r.want.n
	if a != a || b != b {
		return false
	}
	switch {
	case a < b:
		return r.op.holds(-1)
	case a > b:
		return r.op.holds(1)
	default:
		return r.op.holds(0)
	}
}

// exists holds when the attribute is present and not null, or the opposite.
type existsCond bool

func (e existsCond) matches(v any, _ map[string][]any) bool { return (v != nil) == bool(e) }

// valueSet is the compiled list of $in/$nin.
type valueSet struct {
	strs                       []string
	index                      map[string]struct{}
	nums                       []float64
	hasTrue, hasFalse, hasNull bool
}

func (s *valueSet) has(v any) bool {
	switch x := v.(type) {
	case string:
		if s.index != nil {
			_, ok := s.index[x]
			return ok
		}
		for _, str := range s.strs {
			if str == x {
				return true
			}
		}
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

type inCond struct {
	values *valueSet
	negate bool
}

func (c inCond) matches(v any, _ map[string][]any) bool {
	// An array attribute matches when it shares any element with the list.
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

type inGroup struct {
	key    string
	negate bool
}

func (g inGroup) matches(v any, groups map[string][]any) bool {
	members := groups[g.key]
	return inList(v, members) != g.negate
}

// inList is GrowthBook's isIn over an uncompiled list.
func inList(v any, list []any) bool {
	if arr, ok := v.([]any); ok {
		// One level only: a nested array is an element compared by
		// identity, so it never matches.
		for _, el := range arr {
			if listHas(list, el) {
				return true
			}
		}
		return false
	}
	return listHas(list, v)
}

func listHas(list []any, v any) bool {
	want, ok := jsScalarOf(v)
	if !ok {
		return false
	}
	for _, m := range list {
		if want.equals(m) {
			return true
		}
	}
	return false
}

type notValueCond struct{ inner valueCond }

func (n notValueCond) matches(v any, groups map[string][]any) bool {
	return !n.inner.matches(v, groups)
}

type arraySizeCond struct{ inner valueCond }

func (s arraySizeCond) matches(v any, groups map[string][]any) bool {
	arr, ok := v.([]any)
	return ok && s.inner.matches(float64(len(arr)), groups)
}

// elemMatchValue holds when a truthy element of an array attribute
// satisfies an operator object (falsy elements are skipped, as in the SDK).
type elemMatchValue struct{ inner valueCond }

func (e elemMatchValue) matches(v any, groups map[string][]any) bool {
	arr, ok := v.([]any)
	if !ok {
		return false
	}
	for _, el := range arr {
		if jsTruthy(el) && e.inner.matches(el, groups) {
			return true
		}
	}
	return false
}

// elemMatchDoc holds when a truthy element of an array attribute satisfies a
// condition object applied to the element.
type elemMatchDoc struct{ sub docCond }

func (e elemMatchDoc) matches(v any, groups map[string][]any) bool {
	arr, ok := v.([]any)
	if !ok {
		return false
	}
	for _, el := range arr {
		if jsTruthy(el) && e.sub.holds(el, groups) {
			return true
		}
	}
	return false
}

// allCond holds when every listed condition is satisfied by some element.
type allElemsCond []valueCond

func (a allElemsCond) matches(v any, groups map[string][]any) bool {
	arr, ok := v.([]any)
	if !ok {
		return false
	}
	for _, c := range a {
		found := false
		for _, el := range arr {
			if c.matches(el, groups) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

type regexpCond struct{ re *regexp.Regexp }

func (r regexpCond) matches(v any, _ map[string][]any) bool {
	if s, ok := v.(string); ok {
		return r.re.MatchString(s)
	}
	// RegExp.test converts its argument to a string, so null tests "null".
	return r.re.MatchString(jsToString(v))
}

type jsTypeCond string

func (t jsTypeCond) matches(v any, _ map[string][]any) bool { return jsType(v) == string(t) }

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

type versionCond struct {
	op   cmpOp
	want string
}

func (c versionCond) matches(v any, _ map[string][]any) bool {
	return c.op.holds(compareJSStrings(paddedVersion(v), c.want))
}

// paddedVersion is GrowthBook's paddedVersionString: a version turned into a
// string whose plain string order is the version order.
func paddedVersion(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case float64:
		s = jsToString(x)
	}
	if s == "" {
		s = "0"
	}
	// Drop a leading "v" and build metadata ("+..."); like the SDK's regex,
	// the build part is removed only if no line break follows the "+".
	if strings.HasPrefix(s, "v") {
		s = s[1:]
	}
	lineStart := 0
	for i, r := range s {
		if r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029' {
			lineStart = i + utf8.RuneLen(r)
		}
	}
	if i := strings.IndexByte(s[lineStart:], '+'); i >= 0 {
		s = s[:lineStart+i]
	}
	parts := splitVersion(s)
	// A plain x.y.z gets "~", the highest printable ASCII character, so that
	// a release sorts after its pre-releases.
	if len(parts) == 3 {
		parts = append(parts, "~")
	}
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('-')
		}
		if isASCIIDigits(p) {
			// Left-padding numbers makes " 9" sort before "10".
			for j := len(p); j < 5; j++ {
				b.WriteByte(' ')
			}
		}
		b.WriteString(p)
	}
	return b.String()
}

func splitVersion(s string) []string {
	parts := make([]string, 0, 5)
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '-' || s[i] == '.' {
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

func isASCIIDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ---- JavaScript value semantics ----

func jsTruthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0 && x == x
	case string:
		return x != ""
	}
	return true
}

// jsToNumber is JavaScript's ToNumber for JSON values.
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

// jsToString is JavaScript's String(v) for JSON values.
func jsToString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return "null"
	}
	return string(appendJSString(nil, v))
}

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

// appendJSNumber formats f as JavaScript's Number.prototype.toString does.
func appendJSNumber(dst []byte, f float64) []byte {
	switch {
	case f != f:
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
	// Shortest round-tripping digits, as JavaScript uses: d.ddde±x.
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
	exp, neg := 0, e[i+1] == '-'
	for _, c := range e[i+2:] {
		exp = exp*10 + int(c-'0')
	}
	if neg {
		exp = -exp
	}
	k, n := len(digits), exp+1
	switch {
	case k <= n && n <= 21:
		dst = append(dst, digits...)
		for j := k; j < n; j++ {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, digits[:n]...)
		dst = append(dst, '.')
		dst = append(dst, digits[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for j := 0; j < -n; j++ {
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

// jsSpace reports JavaScript's StrWhiteSpaceChar: white space and line terminators.
func jsSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', '\u00a0', '\u1680', '\u2028', '\u2029',
		'\u202f', '\u205f', '\u3000', '\ufeff':
		return true
	}
	return r >= '\u2000' && r <= '\u200a'
}

// stringToNumber is JavaScript's StringToNumber: surrounding white space
// ignored, empty means 0, 0x/0o/0b integers, Infinity, decimal literals,
// NaN for anything else.
func stringToNumber(s string) float64 {
	s = strings.TrimFunc(s, jsSpace)
	if s == "" {
		return 0
	}
	if len(s) > 2 && s[0] == '0' {
		base := 0
		switch s[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 0 {
			if u, err := strconv.ParseUint(s[2:], base, 64); err == nil {
				return float64(u)
			}
			// Too long for 64 bits (or invalid): exact big integer, rounded once.
			for i := 2; i < len(s); i++ {
				if !isDigitOfBase(s[i], base) {
					return math.NaN()
				}
			}
			n, _ := new(big.Int).SetString(s[2:], base)
			f, _ := new(big.Float).SetInt(n).Float64()
			return f
		}
	}
	body := s
	neg := false
	if body[0] == '+' || body[0] == '-' {
		neg = body[0] == '-'
		body = body[1:]
	}
	if body == "Infinity" {
		if neg {
			return math.Inf(-1)
		}
		return math.Inf(1)
	}
	if !isDecimalLiteral(body) {
		return math.NaN()
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !isParseRangeErr(err) {
		return math.NaN()
	}
	return f
}

func isParseRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func isDigitOfBase(c byte, base int) bool {
	switch base {
	case 2:
		return c == '0' || c == '1'
	case 8:
		return c >= '0' && c <= '7'
	}
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// isDecimalLiteral accepts JavaScript's StrUnsignedDecimalLiteral minus
// Infinity: digits with an optional fraction and exponent, at least one
// mantissa digit ("1.", ".5", "1e3"); rejects Go-only forms like "inf" or "1_0".
func isDecimalLiteral(s string) bool {
	i, mantissa := 0, 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		mantissa++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			mantissa++
		}
	}
	if mantissa == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		expDigits := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			expDigits++
		}
		if expDigits == 0 {
			return false
		}
	}
	return i == len(s)
}

// compareJSStrings orders strings by UTF-16 code units, as JavaScript's <
// does; it differs from Go's byte order only between characters above
// U+FFFF and those in U+E000..U+FFFF.
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
	// Same high surrogate: the runes differ in their low surrogates, whose
	// order is the rune order.
	return int(ra) - int(rb)
}

func firstUTF16Unit(r rune) rune {
	if r < 0x10000 {
		return r
	}
	return 0xD800 + (r-0x10000)>>10
}
