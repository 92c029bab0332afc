package targeting

import "strings"

// Everything a condition holds compiles to a cond, tested against a value: a condition object
// against the attributes (or an array element, under $elemMatch), an operator against one
// attribute's value (GrowthBook's evalCondition and evalConditionValue).

// cond tests a value.
type cond interface {
	matches(v any) bool
}

// allOf holds when every cond does: a condition object (one cond per key), $and, or an object
// of several operators.
type allOf []cond

func (a allOf) matches(v any) bool {
	for _, c := range a {
		if !c.matches(v) {
			return false
		}
	}
	return true
}

// anyOf is $or: some cond holds, or, as in GrowthBook, there are none.
type anyOf []cond

func (o anyOf) matches(v any) bool {
	if len(o) == 0 {
		return true
	}
	for _, c := range o {
		if c.matches(v) {
			return true
		}
	}
	return false
}

// notCond is $not, and $nor as the negation of $or (so an empty $nor never holds).
type notCond struct{ inner cond }

func (n notCond) matches(v any) bool { return !n.inner.matches(v) }

// fieldCond tests the attribute at a path of a document. Nearly every path is one key, looked
// up directly rather than through lookupPath: BenchmarkFieldLookup measures both ways, figures
// in docs/benchmarks.md.
type fieldCond struct {
	key   string   // the path, when it has no dot
	path  []string // the path split at its dots, when it has some
	inner cond
}

func newFieldCond(path string, inner cond) *fieldCond {
	if !strings.Contains(path, ".") {
		return &fieldCond{key: path, inner: inner}
	}
	return &fieldCond{path: strings.Split(path, "."), inner: inner}
}

func (f *fieldCond) matches(doc any) bool {
	if f.path != nil {
		return f.inner.matches(lookupPath(doc, f.path))
	}
	var v any
	if m, ok := doc.(map[string]any); ok {
		v = m[f.key]
	}
	return f.inner.matches(v)
}

// lookupPath follows a dotted path like GrowthBook's getPath: a missing step gives null. Arrays
// answer numeric indexes and "length" as in JavaScript.
func lookupPath(doc any, path []string) any {
	cur := doc
	for _, k := range path {
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

// arrayIndex parses a canonical JavaScript array index ("0", "17", not "01" or "+1").
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
