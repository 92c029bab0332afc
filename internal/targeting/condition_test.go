package targeting

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func mustParse(t *testing.T, cond string) *Condition {
	t.Helper()
	c, err := Parse(json.RawMessage(cond))
	if err != nil {
		t.Fatalf("Parse(%s): %v", cond, err)
	}
	return c
}

func conditionAttrs(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("attributes %s: %v", s, err)
	}
	return m
}

func TestParseNamesThePathOfAProblem(t *testing.T) {
	cases := []struct {
		cond, path, msg string
	}{
		{`{"country": {"$foo": 1}}`, "country.$foo", `unknown operator "$foo"`},
		{`{"$adn": [{"a": 1}]}`, "$adn", `unknown operator "$adn"`},
		{`{"$or": [{"a": 1}, {"b": {"$in": "x"}}]}`, "$or[1].b.$in", "$in needs an array"},
		{`{"a": {"$regex": "("}}`, "a.$regex", ""},
		{`{"a": {"$regex": "(?=lookahead)"}}`, "a.$regex", ""},
		{`{"a": {"$gt": 1, "b": 2}}`, "a", "operators ($...) and plain keys cannot be mixed in one object"},
		{`[1, 2]`, "", "condition must be a JSON object"},
		{`{"a": `, "", ""},
		{`{"$and": {"a": 1}}`, "$and", "$and needs an array of conditions"},
		{`{"$not": [1]}`, "$not", "condition must be a JSON object"},
		{`{"tags": {"$elemMatch": {"name": {"$bad": 1}}}}`, "tags.$elemMatch.name.$bad", `unknown operator "$bad"`},
		{`{"tags": {"$elemMatch": "x"}}`, "tags.$elemMatch", "$elemMatch needs an object"},
		{`{"a": {"$all": [{"$zz": 1}]}}`, "a.$all[0].$zz", `unknown operator "$zz"`},
		{`{"a": {"$type": "int"}}`, "a.$type", ""},
		{`{"a": {"$in": ["x", ["y"]]}}`, "a.$in[1]", "values must be strings, numbers, booleans or null"},
		{`{"a": {"$eq": [1]}}`, "a.$eq", "$eq needs a string, number, boolean or null"},
		{`{"a": {"$gt": true}}`, "a.$gt", "$gt needs a number or a string"},
		{`{"a": {"$exists": 1}}`, "a.$exists", "$exists needs true or false"},
		{`{"v": {"$vgt": null}}`, "v.$vgt", "$vgt needs a version string"},
		{`{"a": {"$not": {"$gt": 1, "$nope": 2}}}`, "a.$not.$nope", `unknown operator "$nope"`},
		{`{"$in": ["IT"]}`, "$in", `$in applies to an attribute: write {"attribute": {"$in": ...}}`},
		{`{"tags": {"$elemMatch": {"$gt": 5, "name": "x"}}}`, "tags.$elemMatch.$gt", `$gt applies to an attribute: write {"attribute": {"$gt": ...}}`},
	}
	for _, c := range cases {
		_, err := Parse(json.RawMessage(c.cond))
		var ce *Error
		if !errors.As(err, &ce) || len(ce.Problems) != 1 {
			t.Errorf("Parse(%s) = %v; want an *Error with one problem", c.cond, err)
			continue
		}
		p := ce.Problems[0]
		if p.Path != c.path || p.Code != CodeInvalid {
			t.Errorf("Parse(%s): path %q, code %q; want %q, %q", c.cond, p.Path, p.Code, c.path, CodeInvalid)
		}
		if c.msg != "" && p.Message != c.msg {
			t.Errorf("Parse(%s): message %q; want %q", c.cond, p.Message, c.msg)
		}
		if p.Message == "" {
			t.Errorf("Parse(%s): empty message", c.cond)
		}
	}
}

// Every problem is reported at once, in the order of the condition's keys sorted within each
// object: the same condition always gives the same list.
func TestParseReportsEveryProblemInPathOrder(t *testing.T) {
	cond := `{"zip": {"$regex": "("}, "$or": [{"b": {"$in": "x"}}, {"a": {"$foo": 1, "$bar": 2}}], "age": {"$gt": true}}`
	want := []string{"$or[0].b.$in", "$or[1].a.$bar", "$or[1].a.$foo", "age.$gt", "zip.$regex"}
	for range 20 {
		_, err := Parse(json.RawMessage(cond))
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("Parse = %v; want an *Error", err)
		}
		var paths []string
		for _, p := range ce.Problems {
			paths = append(paths, p.Path)
		}
		if !slices.Equal(paths, want) {
			t.Fatalf("problems at %q; want %q", paths, want)
		}
	}
	_, err := Parse(json.RawMessage(`{"country": {"$foo": "IT"}, "$adn": []}`))
	if err == nil || err.Error() != `targeting condition: $adn: unknown operator "$adn"; country.$foo: unknown operator "$foo"` {
		t.Errorf("error = %v", err)
	}
}

func TestParseBoundsTheProblemsReported(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := range 5000 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"a%d": {"$bad": 1}`, i)
	}
	b.WriteString("}")
	_, err := Parse(json.RawMessage(b.String()))
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Problems) != maxProblems {
		t.Fatalf("Parse of 5000 bad operators: %d problems; want %d", len(ce.Problems), maxProblems)
	}
}

// xsell has no saved groups: a condition naming one is refused when saved, rather than
// targeting nobody ($inGroup) or everybody ($notInGroup) at checkout.
func TestParseRefusesSavedGroups(t *testing.T) {
	for _, cond := range []string{`{"id": {"$inGroup": "vip"}}`, `{"$or": [{"id": {"$notInGroup": "churned"}}]}`} {
		_, err := Parse(json.RawMessage(cond))
		var ce *Error
		if !errors.As(err, &ce) || len(ce.Problems) != 1 {
			t.Fatalf("Parse(%s) = %v; want one problem", cond, err)
		}
		p := ce.Problems[0]
		if p.Code != CodeNotSupported || !strings.Contains(p.Message, "saved groups are not supported") ||
			!strings.HasSuffix(p.Path, "Group") {
			t.Errorf("Parse(%s): %+v; want not_supported at the operator, saying saved groups are not supported", cond, p)
		}
	}
}

func TestEmptyConditionTargetsEveryone(t *testing.T) {
	for _, raw := range []string{"", "null", " ", "{}"} {
		c := mustParse(t, raw)
		if !c.Eval(map[string]any{"country": "IT"}) || !c.Eval(nil) {
			t.Errorf("condition %q does not match everyone", raw)
		}
	}
	var none *Condition
	if !none.Eval(nil) {
		t.Error("nil condition does not match everyone")
	}
}

// Behaviour beyond the conformance file that follows from the SDK's
// JavaScript semantics, plus the deviations we chose.
func TestConditionSemantics(t *testing.T) {
	many := `["a","b","c","d","e","f","g","h","IT","j"]`
	cases := []struct {
		name, cond, attrs string
		want              bool
	}{
		{"in over strings", `{"country": {"$in": ["IT","FR"]}}`, `{"country": "IT"}`, true},
		{"in over strings, missing", `{"country": {"$in": ["IT","FR"]}}`, `{}`, false},
		{"in over many strings, member", `{"country": {"$in": ` + many + `}}`, `{"country": "IT"}`, true},
		{"in over many strings, not member", `{"country": {"$in": ` + many + `}}`, `{"country": "DE"}`, false},
		{"nin over many strings, array attribute", `{"tags": {"$nin": ` + many + `}}`, `{"tags": ["x", "IT"]}`, false},
		{"in matches null for a missing attribute", `{"country": {"$in": [null]}}`, `{}`, true},
		{"number literal coerces a string", `{"age": 10}`, `{"age": "10"}`, true},
		{"number literal coerces padded string", `{"age": 10}`, `{"age": " 1e1 "}`, true},
		{"number literal matches a missing attribute as 0 (null*1 is 0)", `{"visits": 0}`, `{}`, true},
		{"string literal coerces a number", `{"zip": "20121"}`, `{"zip": 20121}`, true},
		{"string literal coerces a large number like JavaScript", `{"n": "1e+21"}`, `{"n": 1e21}`, true},
		{"string literal coerces an array", `{"tags": "a,b"}`, `{"tags": ["a", "b"]}`, true},
		{"string literal null matches a missing attribute", `{"x": "null"}`, `{}`, true},
		{"boolean literal uses truthiness", `{"member": true}`, `{"member": "yes"}`, true},
		{"boolean false does not match a missing attribute", `{"member": false}`, `{}`, false},
		{"eq is strict", `{"age": {"$eq": 10}}`, `{"age": "10"}`, false},
		{"gt on numbers", `{"cart_total": {"$gt": 50}}`, `{"cart_total": 50.01}`, true},
		{"gt compares two strings as strings", `{"s": {"$gt": "10"}}`, `{"s": "9"}`, true},
		{"gt converts a one-element array", `{"n": {"$gt": 4}}`, `{"n": [5]}`, true},
		{"gt with a non-numeric string is false", `{"n": {"$gt": 4}}`, `{"n": "abc"}`, false},
		{"lte with a non-numeric string is false", `{"n": {"$lte": 4}}`, `{"n": "abc"}`, false},
		{"strings compare by UTF-16 units", `{"s": {"$lt": "\uff61"}}`, `{"s": "😀"}`, true},
		{"regex tests a number as its string", `{"zip": {"$regex": "^20"}}`, `{"zip": 20121}`, true},
		{"regex tests a missing attribute as null", `{"x": {"$regex": "^nul"}}`, `{}`, true},
		{"path through an array index", `{"items.0.sku": "sku-1"}`, `{"items": [{"sku": "sku-1"}]}`, true},
		{"path to an array length", `{"items.length": {"$gte": 2}}`, `{"items": [1, 2]}`, true},
		{"path with a non-canonical index", `{"items.00": 1}`, `{"items": [1]}`, false},
		{"elemMatch skips falsy elements", `{"nums": {"$elemMatch": {"$eq": 0}}}`, `{"nums": [0, 1]}`, false},
		{"all with operators", `{"nums": {"$all": [{"$gt": 5}, {"$lt": 0}]}}`, `{"nums": [-1, 7]}`, true},
		{"size of an empty array", `{"a": {"$size": 0}}`, `{"a": []}`, true},
		{"exists false on null", `{"a": {"$exists": false}}`, `{"a": null}`, true},
		{"in does not look into nested arrays", `{"ids": {"$in": ["s-1"]}}`, `{"ids": [["s-1"]]}`, false},
		{"version as a number", `{"v": {"$vgte": 2}}`, `{"v": "10.0.0"}`, true},
		{"version of a number attribute", `{"v": {"$vlt": "2.1.0"}}`, `{"v": 2}`, true},
		{"version of a missing attribute is 0", `{"v": {"$vlt": "0.0.1"}}`, `{}`, true},
		{"version build metadata is ignored", `{"v": {"$veq": "1.0.0"}}`, `{"v": "v1.0.0+sha.5114f85"}`, true},
		{"empty nor never holds", `{"$nor": []}`, `{}`, false},
		{"type of a missing attribute is null", `{"a": {"$type": "null"}}`, `{}`, true},
		// Deviation: the SDK compares JSON.stringify output, which depends on
		// the order of keys in the shopper's attributes; Go maps have none, so
		// objects are compared by content.
		{"object literal ignores key order", `{"o": {"a": 1, "b": [true, null]}}`, `{"o": {"b": [true, null], "a": 1}}`, true},
		{"object literal compares types", `{"o": {"a": 1}}`, `{"o": {"a": "1"}}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := mustParse(t, c.cond).Eval(conditionAttrs(t, c.attrs)); got != c.want {
				t.Errorf("condition %s on %s = %v; want %v", c.cond, c.attrs, got, c.want)
			}
		})
	}
}

func TestSDKRulesFollowSDKForgiveness(t *testing.T) {
	cases := []struct {
		cond, attrs string
		want        bool
	}{
		{`{"name": {"$regx": "hello"}}`, `{"name": "hello"}`, false},
		{`{"a": {"$all": 1}}`, `{"a": [1]}`, false},
		{`{"a": {"$eq": [1]}}`, `{"a": [1]}`, false},
		{`{"a": {"$ne": [1]}}`, `{"a": [1]}`, true},
		{`{"a": {"$exists": 1}}`, `{"a": 0}`, true},
		{`{"a": {"$gt": [3]}}`, `{"a": 4}`, true},
		{`{"a": {"$type": "int"}}`, `{"a": 1}`, false},
		{`{"a": {"$regex": "(?=x)"}}`, `{"a": "x"}`, false},
		{`{"o": {"$gt": 1, "b": 2}}`, `{"o": {"$gt": 1, "b": 2}}`, true},
		{`{"ids": {"$inGroup": "vip"}}`, `{"ids": ["x", "s-2"]}`, true},
		{`{"ids": {"$notInGroup": "vip"}}`, `{"ids": ["x"]}`, true},
		{`{"ids": {"$inGroup": "vip"}}`, `{"ids": [["s-1"]]}`, false},
		{`{"ids": {"$inGroup": "nobody"}}`, `{"ids": "s-1"}`, false},
	}
	groups := map[string][]any{"vip": {"s-1", "s-2"}}
	for _, c := range cases {
		cond, err := parseSDK(json.RawMessage(c.cond), groups)
		if err != nil {
			t.Errorf("parseSDK(%s): %v", c.cond, err)
			continue
		}
		if got := cond.Eval(conditionAttrs(t, c.attrs)); got != c.want {
			t.Errorf("under the SDK's rules %s on %s = %v; want %v", c.cond, c.attrs, got, c.want)
		}
	}
}

// The assignment path evaluates targeting for every running experiment; the
// common operators must not allocate.
func TestConditionEvalDoesNotAllocate(t *testing.T) {
	cond := mustParse(t, `{
		"country": {"$in": ["IT", "FR", "DE", "ES"]},
		"device": "mobile",
		"tier": {"$eq": "gold"},
		"cart_total": {"$gt": 50, "$lte": 500},
		"visits": 3,
		"customer.segment": {"$nin": ["churned"]},
		"$or": [{"member": true}, {"tags": {"$in": ["vip"]}}],
		"zip": "20121",
		"age": 30,
		"score": {"$lt": 100}
	}`)
	attrs := conditionAttrs(t, `{"country": "IT", "device": "mobile", "tier": "gold", "cart_total": 120.5,
		"visits": 3, "customer": {"segment": "new"}, "member": false, "tags": ["a", "vip"],
		"zip": 20121, "age": "30", "score": " 99.5 "}`)
	if !cond.Eval(attrs) {
		t.Fatal("condition does not match the shopper")
	}
	if allocs := testing.AllocsPerRun(100, func() { cond.Eval(attrs) }); allocs != 0 {
		t.Errorf("Eval allocates %v times per run; want 0", allocs)
	}
}
