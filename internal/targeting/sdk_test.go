package targeting

import "encoding/json"

// GrowthBook's SDK forgives what Parse refuses: it evaluates mistakes to false and looks
// $inGroup up in saved groups. These rules exist only here, so that the conformance cases for
// such conditions still show the evaluator agreeing with the SDK; the product refuses them when
// an experiment is saved.

// parseSDK compiles a condition under the SDK's rules, with groups as the saved groups that
// $inGroup and $notInGroup refer to.
func parseSDK(raw json.RawMessage, groups map[string][]any) (*Condition, error) {
	c := compiler{sdk: func(op string, arg any) cond { return sdkOperator(op, arg, groups) }}
	return c.parse(raw)
}

// sdkOperator is what the SDK evaluates an operator to when Parse refuses it or its argument.
func sdkOperator(op string, arg any, groups map[string][]any) cond {
	switch op {
	case "$eq", "$ne":
		// === is never true for a literal array or object.
		return constCond(op == "$ne")
	case "$lt", "$lte", "$gt", "$gte":
		return relationalCond{op: cmpOps[op], want: expectedJSPrim(arg)}
	case "$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte":
		return versionCond{op: cmpOps[op], want: paddedVersion(arg)}
	case "$exists":
		return existsCond(jsTruthy(arg))
	case "$inGroup", "$notInGroup":
		// JavaScript converts a property key to a string.
		return inGroupCond{members: groups[jsToString(arg)], negate: op == "$notInGroup"}
	}
	// Unknown operators, $in, $nin or $all without an array, an invalid or non-string $regex,
	// an unknown $type: the SDK answers false.
	return constCond(false)
}

// inGroupCond is $inGroup or $notInGroup over a saved group's members.
type inGroupCond struct {
	members []any
	negate  bool
}

func (g inGroupCond) matches(v any) bool { return inList(v, g.members) != g.negate }

// inList is GrowthBook's isIn over a list: an array attribute is in it when it shares an
// element with it, looking one level deep only (a nested array compares by identity).
func inList(v any, list []any) bool {
	if arr, ok := v.([]any); ok {
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
