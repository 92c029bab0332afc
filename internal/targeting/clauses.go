package targeting

import "strings"

// A condition object compiles to a docCond: a list of clauses, each a logical operator over
// sub-conditions or a test of one attribute (GrowthBook's evalCondition).

// condClause is one key of a condition object, tested against a document (the attributes, or
// an array element under $elemMatch).
type condClause interface {
	holds(doc any) bool
}

// docCond is a condition object; every clause must hold.
type docCond []condClause

func (d docCond) holds(doc any) bool {
	for _, c := range d {
		if !c.holds(doc) {
			return false
		}
	}
	return true
}

// andClause is $and: every sub-condition holds.
type andClause []docCond

func (a andClause) holds(doc any) bool {
	for _, d := range a {
		if !d.holds(doc) {
			return false
		}
	}
	return true
}

// orClause is $or: some sub-condition holds, or, as in GrowthBook, there are none.
type orClause []docCond

func (o orClause) holds(doc any) bool {
	if len(o) == 0 {
		return true
	}
	for _, d := range o {
		if d.holds(doc) {
			return true
		}
	}
	return false
}

// norClause is $nor, the negation of $or, so an empty $nor never holds.
type norClause []docCond

func (n norClause) holds(doc any) bool { return !orClause(n).holds(doc) }

// notClause is $not over a condition object.
type notClause struct{ sub docCond }

func (n notClause) holds(doc any) bool { return !n.sub.holds(doc) }

// fieldClause tests the attribute at a dotted path.
type fieldClause struct {
	path []string
	cond valueCond
}

func newFieldClause(path string, cond valueCond) fieldClause {
	return fieldClause{path: strings.Split(path, "."), cond: cond}
}

func (f fieldClause) holds(doc any) bool { return f.cond.matches(lookupPath(doc, f.path)) }

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
