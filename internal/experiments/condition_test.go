package experiments

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
)

func mustParseCondition(t *testing.T, cond string) *Condition {
	t.Helper()
	c, err := ParseCondition(json.RawMessage(cond))
	if err != nil {
		t.Fatalf("ParseCondition(%s): %v", cond, err)
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

func TestParseConditionErrorPaths(t *testing.T) {
	cases := []struct {
		cond, path, msg string
	}{
		{`{"country": {"$foo": 1}}`, "targeting.country.$foo", `unknown operator "$foo"`},
		{`{"$adn": [{"a": 1}]}`, "targeting.$adn", `unknown operator "$adn"`},
		{`{"$or": [{"a": 1}, {"b": {"$in": "x"}}]}`, "targeting.$or[1].b.$in", "$in needs an array"},
		{`{"a": {"$regex": "("}}`, "targeting.a.$regex", ""},
		{`{"a": {"$regex": "(?=lookahead)"}}`, "targeting.a.$regex", ""},
		{`{"a": {"$gt": 1, "b": 2}}`, "targeting.a", "operators ($...) and plain keys cannot be mixed in one object"},
		{`[1, 2]`, "targeting", "condition must be a JSON object"},
		{`{"a": `, "targeting", ""},
		{`{"$and": {"a": 1}}`, "targeting.$and", "$and needs an array of conditions"},
		{`{"$not": [1]}`, "targeting.$not", "condition must be a JSON object"},
		{`{"tags": {"$elemMatch": {"name": {"$bad": 1}}}}`, "targeting.tags.$elemMatch.name.$bad", `unknown operator "$bad"`},
		{`{"tags": {"$elemMatch": "x"}}`, "targeting.tags.$elemMatch", "$elemMatch needs an object"},
		{`{"a": {"$all": [{"$zz": 1}]}}`, "targeting.a.$all[0].$zz", `unknown operator "$zz"`},
		{`{"a": {"$type": "int"}}`, "targeting.a.$type", ""},
		{`{"a": {"$in": ["x", ["y"]]}}`, "targeting.a.$in[1]", "values must be strings, numbers, booleans or null"},
		{`{"a": {"$eq": [1]}}`, "targeting.a.$eq", "$eq needs a string, number, boolean or null"},
		{`{"a": {"$gt": true}}`, "targeting.a.$gt", "$gt needs a number or a string"},
		{`{"a": {"$exists": 1}}`, "targeting.a.$exists", "$exists needs true or false"},
		{`{"a": {"$inGroup": 7}}`, "targeting.a.$inGroup", "$inGroup needs the name of a saved group"},
		{`{"v": {"$vgt": null}}`, "targeting.v.$vgt", "$vgt needs a version string"},
		{`{"a": {"$not": {"$gt": 1, "$nope": 2}}}`, "targeting.a.$not.$nope", `unknown operator "$nope"`},
		{`{"$in": ["IT"]}`, "targeting.$in", `$in applies to an attribute: write {"attribute": {"$in": ...}}`},
		{`{"tags": {"$elemMatch": {"$gt": 5, "name": "x"}}}`, "targeting.tags.$elemMatch.$gt", `$gt applies to an attribute: write {"attribute": {"$gt": ...}}`},
	}
	for _, c := range cases {
		_, err := ParseCondition(json.RawMessage(c.cond))
		var ce *ConditionError
		if !errors.As(err, &ce) {
			t.Errorf("ParseCondition(%s) = %v; want a *ConditionError", c.cond, err)
			continue
		}
		if ce.Path != c.path {
			t.Errorf("ParseCondition(%s): path %q; want %q", c.cond, ce.Path, c.path)
		}
		if c.msg != "" && ce.Message != c.msg {
			t.Errorf("ParseCondition(%s): message %q; want %q", c.cond, ce.Message, c.msg)
		}
		if ce.Message == "" {
			t.Errorf("ParseCondition(%s): empty message", c.cond)
		}
	}
}

func TestConditionErrorString(t *testing.T) {
	_, err := ParseCondition(json.RawMessage(`{"country": {"$foo": "IT"}}`))
	if err == nil || err.Error() != `targeting.country.$foo: unknown operator "$foo"` {
		t.Errorf("error = %v", err)
	}
}

func TestEmptyConditionTargetsEveryone(t *testing.T) {
	for _, raw := range []string{"", "null", " ", "{}"} {
		c := mustParseCondition(t, raw)
		if !c.Eval(map[string]any{"country": "IT"}, nil) || !c.Eval(nil, nil) {
			t.Errorf("condition %q does not match everyone", raw)
		}
	}
	var none *Condition
	if !none.Eval(nil, nil) {
		t.Error("nil condition does not match everyone")
	}
}

func TestConditionJSONRoundTrip(t *testing.T) {
	var exp struct {
		Targeting *Condition `json:"targeting"`
	}
	in := `{"targeting":{"country":{"$in":["IT","FR"]}}}`
	if err := json.Unmarshal([]byte(in), &exp); err != nil {
		t.Fatal(err)
	}
	if !exp.Targeting.Eval(map[string]any{"country": "FR"}, nil) || exp.Targeting.Eval(map[string]any{"country": "DE"}, nil) {
		t.Error("unmarshalled condition does not evaluate as written")
	}
	out, err := json.Marshal(exp)
	if err != nil || string(out) != in {
		t.Errorf("Marshal = %s, %v; want %s", out, err, in)
	}
	err = json.Unmarshal([]byte(`{"targeting":{"country":{"$inn":["IT"]}}}`), &exp)
	var ce *ConditionError
	if !errors.As(err, &ce) || ce.Path != "targeting.country.$inn" {
		t.Errorf("Unmarshal of a bad condition = %v; want a ConditionError at targeting.country.$inn", err)
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
		{"inGroup intersects an array attribute", `{"ids": {"$inGroup": "vip"}}`, `{"ids": ["x", "s-2"]}`, true},
		{"notInGroup with an array attribute", `{"ids": {"$notInGroup": "vip"}}`, `{"ids": ["x"]}`, true},
		{"inGroup does not look into nested arrays", `{"ids": {"$inGroup": "vip"}}`, `{"ids": [["s-1"]]}`, false},
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
	groups := map[string][]any{"vip": {"s-1", "s-2"}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := mustParseCondition(t, c.cond).Eval(conditionAttrs(t, c.attrs), groups); got != c.want {
				t.Errorf("condition %s on %s = %v; want %v", c.cond, c.attrs, got, c.want)
			}
		})
	}
}

func TestLenientParserFollowsSDKForgiveness(t *testing.T) {
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
	}
	for _, c := range cases {
		cond, err := parseConditionLenient(json.RawMessage(c.cond))
		if err != nil {
			t.Errorf("parseConditionLenient(%s): %v", c.cond, err)
			continue
		}
		if got := cond.Eval(conditionAttrs(t, c.attrs), nil); got != c.want {
			t.Errorf("lenient %s on %s = %v; want %v", c.cond, c.attrs, got, c.want)
		}
	}
}

// Expected strings are what JavaScript's String(n) prints.
func TestJSNumberFormatting(t *testing.T) {
	cases := []struct {
		in   float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "0"}, {100, "100"}, {-1.5, "-1.5"},
		{0.30000000000000004, "0.30000000000000004"}, {1e21, "1e+21"}, {1.5e300, "1.5e+300"},
		{123456789012345680000, "123456789012345680000"}, {0.000001, "0.000001"},
		{1e-7, "1e-7"}, {1.25e-7, "1.25e-7"}, {math.Inf(1), "Infinity"}, {math.NaN(), "NaN"},
		{5e-324, "5e-324"}, {2147483648, "2147483648"},
	}
	for _, c := range cases {
		if got := string(appendJSNumber(nil, c.in)); got != c.want {
			t.Errorf("String(%v) = %q; want %q", c.in, got, c.want)
		}
	}
}

// Expected numbers are what JavaScript's Number(s) returns.
func TestJSStringToNumber(t *testing.T) {
	cases := []struct {
		in   string
		want float64
	}{
		{"", 0}, {"  ", 0}, {" 12 ", 12}, {"\u00a0 7\n", 7}, {"+5", 5}, {"-2.5e1", -25},
		{".5", 0.5}, {"5.", 5}, {"1e3", 1000}, {"0x1F", 31}, {"0b101", 5}, {"0o17", 15},
		{"Infinity", math.Inf(1)}, {"-Infinity", math.Inf(-1)}, {"1e400", math.Inf(1)},
		{"0x10000000000000000", 18446744073709551616},
	}
	for _, c := range cases {
		if got := stringToNumber(c.in); got != c.want {
			t.Errorf("Number(%q) = %v; want %v", c.in, got, c.want)
		}
	}
	for _, in := range []string{"1_0", "inf", "NaN", "-0x1", "1e", "e1", ".", "0x", "12px", "0x1p3", "+-1"} {
		if got := stringToNumber(in); !math.IsNaN(got) {
			t.Errorf("Number(%q) = %v; want NaN", in, got)
		}
	}
}

// Expected strings are what GrowthBook's paddedVersionString returns.
func TestPaddedVersion(t *testing.T) {
	cases := []struct {
		in   any
		want string
	}{
		{"1.2.3", "    1-    2-    3-~"},
		{"v1.2.3-rc.1+build.5", "    1-    2-    3-rc-    1"},
		{"10.0.123456", "   10-    0-123456-~"},
		{nil, "    0"},
		{"", "    0"},
		{2.5, "    2-    5"},
	}
	for _, c := range cases {
		if got := paddedVersion(c.in); got != c.want {
			t.Errorf("paddedVersionString(%v) = %q; want %q", c.in, got, c.want)
		}
	}
}

// The assignment path evaluates targeting for every running experiment; the
// common operators must not allocate.
func TestConditionEvalDoesNotAllocate(t *testing.T) {
	cond := mustParseCondition(t, `{
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
	if !cond.Eval(attrs, nil) {
		t.Fatal("condition does not match the shopper")
	}
	if allocs := testing.AllocsPerRun(100, func() { cond.Eval(attrs, nil) }); allocs != 0 {
		t.Errorf("Eval allocates %v times per run; want 0", allocs)
	}
}
