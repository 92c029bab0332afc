package targeting

import (
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// maxProblems bounds the problems one condition reports: enough to fix a hand-written
// condition in one go, while a hostile one cannot make the answer as large as itself.
const maxProblems = 100

// compiler turns a decoded condition into conds, collecting every problem with its path.
type compiler struct {
	problems []Problem
	// sdk, when set, makes the compiler accept what Parse refuses and evaluate it as
	// GrowthBook's SDK does: it says what a refused operator evaluates to, "$" keys at the top
	// level are attribute names, and an object mixing operators and plain keys is a literal.
	// Only the conformance tests set it (sdk_test.go), to run the SDK's cases for inputs the
	// product refuses when an experiment is saved.
	sdk func(op string, arg any) cond
}

func (c *compiler) parse(raw json.RawMessage) (*Condition, error) {
	if isEmpty(raw) {
		return &Condition{}, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, &Error{Problems: []Problem{{Code: CodeInvalid, Message: "invalid JSON: " + err.Error()}}}
	}
	root := c.doc(v, "")
	if len(c.problems) > 0 {
		return nil, &Error{Problems: c.problems}
	}
	return &Condition{root: root}, nil
}

// problem records what is wrong at path.
func (c *compiler) problem(path, code, msg string) {
	if len(c.problems) < maxProblems {
		c.problems = append(c.problems, Problem{Path: path, Code: code, Message: msg})
	}
}

// refuse records an operator or argument that Parse does not accept; under the SDK's rules it
// becomes what the SDK evaluates instead.
func (c *compiler) refuse(op string, arg any, path, code, msg string) cond {
	if c.sdk != nil {
		return c.sdk(op, arg)
	}
	c.problem(path, code, msg)
	return constCond(false)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// doc compiles a condition object: logical operators and attribute paths. Keys are taken in
// sorted order so that problems are always reported in the same order.
func (c *compiler) doc(v any, path string) cond {
	m, ok := v.(map[string]any)
	if !ok {
		c.problem(path, CodeInvalid, "condition must be a JSON object")
		return nil
	}
	out := make(allOf, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		p := join(path, k)
		switch k {
		case "$and":
			out = append(out, c.docList(k, m[k], p))
		case "$or":
			out = append(out, anyOf(c.docList(k, m[k], p)))
		case "$nor":
			out = append(out, notCond{anyOf(c.docList(k, m[k], p))})
		case "$not":
			out = append(out, notCond{c.doc(m[k], p)})
		default:
			if strings.HasPrefix(k, "$") && c.sdk == nil {
				if isValueOperator(k) {
					c.problem(p, CodeInvalid, k+` applies to an attribute: write {"attribute": {"`+k+`": ...}}`)
				} else {
					c.problem(p, CodeInvalid, "unknown operator "+strconv.Quote(k))
				}
				continue
			}
			out = append(out, newFieldCond(k, c.value(m[k], p)))
		}
	}
	return out
}

// docList compiles the array of conditions of $and, $or or $nor.
func (c *compiler) docList(op string, v any, path string) allOf {
	list, ok := v.([]any)
	if !ok {
		c.problem(path, CodeInvalid, op+" needs an array of conditions")
		return nil
	}
	subs := make(allOf, len(list))
	for i, el := range list {
		subs[i] = c.doc(el, index(path, i))
	}
	return subs
}

// value compiles what an attribute is tested against: a literal or an object of operators.
func (c *compiler) value(v any, path string) cond {
	switch x := v.(type) {
	case string:
		return eqString(x)
	case float64:
		return eqNumber(x)
	case bool:
		return eqBool(x)
	case nil:
		return eqNull{}
	case []any:
		return eqLiteral{x}
	case map[string]any:
		ops := 0
		for k := range x {
			if strings.HasPrefix(k, "$") {
				ops++
			}
		}
		switch {
		case ops == 0 || (ops < len(x) && c.sdk != nil):
			return eqLiteral{x}
		case ops < len(x):
			c.problem(path, CodeInvalid, "operators ($...) and plain keys cannot be mixed in one object")
			return constCond(false)
		}
		conds := make(allOf, 0, len(x))
		for _, k := range slices.Sorted(maps.Keys(x)) {
			conds = append(conds, c.operator(k, x[k], join(path, k)))
		}
		if len(conds) == 1 {
			return conds[0]
		}
		return conds
	}
	c.problem(path, CodeInvalid, "unsupported JSON value")
	return constCond(false)
}

// operator compiles one operator and its argument.
func (c *compiler) operator(op string, arg any, path string) cond {
	switch op {
	case "$eq", "$ne":
		want, ok := jsScalarOf(arg)
		if !ok {
			return c.refuse(op, arg, path, CodeInvalid, op+" needs a string, number, boolean or null")
		}
		return strictEq{want: want, negate: op == "$ne"}
	case "$lt", "$lte", "$gt", "$gte":
		if !isStringOrNumber(arg) {
			return c.refuse(op, arg, path, CodeInvalid, op+" needs a number or a string")
		}
		return relationalCond{op: cmpOps[op], want: expectedJSPrim(arg)}
	case "$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte":
		if !isStringOrNumber(arg) {
			return c.refuse(op, arg, path, CodeInvalid, op+" needs a version string")
		}
		return versionCond{op: cmpOps[op], want: paddedVersion(arg)}
	case "$exists":
		b, ok := arg.(bool)
		if !ok {
			return c.refuse(op, arg, path, CodeInvalid, "$exists needs true or false")
		}
		return existsCond(b)
	case "$in", "$nin":
		list, ok := arg.([]any)
		if !ok {
			return c.refuse(op, arg, path, CodeInvalid, op+" needs an array")
		}
		return inCond{values: c.set(list, path), negate: op == "$nin"}
	case "$inGroup", "$notInGroup":
		return c.refuse(op, arg, path, CodeNotSupported,
			"saved groups are not supported: list the values with $in or $nin instead")
	case "$not":
		return notCond{c.value(arg, path)}
	case "$size":
		return arraySizeCond{c.value(arg, path)}
	case "$elemMatch":
		return c.elemMatch(arg, path)
	case "$all":
		list, ok := arg.([]any)
		if !ok {
			return c.refuse(op, arg, path, CodeInvalid, "$all needs an array")
		}
		conds := make(allElemsCond, len(list))
		for i, el := range list {
			conds[i] = c.value(el, index(path, i))
		}
		return conds
	case "$regex":
		return c.regex(arg, path)
	case "$type":
		s, _ := arg.(string)
		switch s {
		case "string", "number", "boolean", "object", "array", "null":
			return jsTypeCond(s)
		}
		return c.refuse(op, arg, path, CodeInvalid, `$type needs one of "string", "number", "boolean", "object", "array", "null"`)
	}
	return c.refuse(op, arg, path, CodeInvalid, "unknown operator "+strconv.Quote(op))
}

func isStringOrNumber(v any) bool {
	switch v.(type) {
	case string, float64:
		return true
	}
	return false
}

// set compiles the list of $in or $nin.
func (c *compiler) set(list []any, path string) *valueSet {
	s := &valueSet{strs: map[string]struct{}{}}
	for i, el := range list {
		switch x := el.(type) {
		case string:
			s.strs[x] = struct{}{}
		case float64:
			s.nums = append(s.nums, x)
		case bool:
			s.hasTrue = s.hasTrue || x
			s.hasFalse = s.hasFalse || !x
		case nil:
			s.hasNull = true
		default:
			// The SDK compares arrays and objects by identity, so they never match: refused
			// here, and under the SDK's rules simply never found.
			if c.sdk == nil {
				c.problem(index(path, i), CodeInvalid, "values must be strings, numbers, booleans or null")
			}
		}
	}
	return s
}

// elemMatch compiles $elemMatch: an object of operators applies to each element, any other
// object is a condition on each element.
func (c *compiler) elemMatch(arg any, path string) cond {
	m, ok := arg.(map[string]any)
	if !ok {
		c.problem(path, CodeInvalid, "$elemMatch needs an object")
		return constCond(false)
	}
	if isOperatorObject(m) {
		return elemMatchCond{c.value(m, path)}
	}
	return elemMatchCond{c.doc(m, path)}
}

// regex compiles $regex with RE2 instead of JavaScript's engine: linear time on shopper-supplied
// input. Patterns using JavaScript-only syntax fail to compile, and the remaining differences
// (\s is ASCII-only, "." matches "\r") do not arise for the ids and codes that targeting
// matches.
func (c *compiler) regex(arg any, path string) cond {
	s, ok := arg.(string)
	if !ok {
		return c.refuse("$regex", arg, path, CodeInvalid, "$regex needs a string")
	}
	re, err := regexp.Compile(s)
	if err != nil {
		return c.refuse("$regex", arg, path, CodeInvalid, "invalid regular expression: "+err.Error())
	}
	return regexpCond{re}
}

// isValueOperator reports whether op applies to an attribute's value (as opposed to $and,
// $or, $nor and $not over conditions).
func isValueOperator(op string) bool {
	switch op {
	case "$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$exists", "$in", "$nin",
		"$inGroup", "$notInGroup", "$size", "$elemMatch", "$all", "$regex", "$type":
		return true
	}
	_, ok := cmpOps[op]
	return ok
}

// isOperatorObject is GrowthBook's test for an object of operators: not empty, and every key
// starts with "$".
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
