package targeting

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"testing"
)

// conformanceCasesPath is the project's copy of GrowthBook's cross-SDK test cases.
const conformanceCasesPath = "../../testdata/growthbook/cases.json"

// loadCases returns the named section of the conformance file, one raw JSON
// array per case; a missing file or section fails the test.
func loadCases(t *testing.T, section string) [][]json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(conformanceCasesPath)
	if err != nil {
		t.Fatalf("conformance cases are required: %v", err)
	}
	var file map[string]json.RawMessage
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatalf("decode %s: %v", conformanceCasesPath, err)
	}
	raw, ok := file[section]
	if !ok {
		t.Fatalf("%s has no section %q", conformanceCasesPath, section)
	}
	var cases [][]json.RawMessage
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatalf("decode section %q: %v", section, err)
	}
	if len(cases) == 0 {
		t.Fatalf("section %q is empty", section)
	}
	return cases
}

func decodeCase(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}

func conformanceCaseName(i int, raw json.RawMessage) string {
	var name string
	if err := json.Unmarshal(raw, &name); err != nil {
		return fmt.Sprintf("%03d", i)
	}
	return fmt.Sprintf("%03d %s", i, name)
}

// truncate8 drops digits past the 8th decimal, GrowthBook's comparison for
// computed weights and ranges.
func truncate8(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = math.Floor(x*1e8) / 1e8
	}
	return out
}

func truncateRanges(rs [][2]float64) [][2]float64 {
	out := make([][2]float64, len(rs))
	for i, r := range rs {
		t := truncate8(r[:])
		out[i] = [2]float64{t[0], t[1]}
	}
	return out
}

func TestConformanceHash(t *testing.T) {
	cases := loadCases(t, "hash")
	for i, c := range cases {
		// [seed, value, version, expected or null]
		var seed, value string
		var version int
		var want *float64
		decodeCase(t, c[0], &seed)
		decodeCase(t, c[1], &value)
		decodeCase(t, c[2], &version)
		decodeCase(t, c[3], &want)
		t.Run(fmt.Sprintf("%03d %q %q v%d", i, seed, value, version), func(t *testing.T) {
			got, ok := Hash(seed, value, version)
			switch {
			case want == nil && ok:
				t.Errorf("Hash = %v, true; want not ok for version %d", got, version)
			case want != nil && (!ok || got != *want):
				t.Errorf("Hash = %v, %v; want %v", got, ok, *want)
			}
		})
	}
	if len(cases) != 15 {
		t.Errorf("hash: %d cases, want 15", len(cases))
	}
}

func TestConformanceGetBucketRange(t *testing.T) {
	cases := loadCases(t, "getBucketRange")
	for i, c := range cases {
		// [name, [numVariations, coverage, weights or null], expected ranges]
		var args []json.RawMessage
		var n int
		var coverage float64
		var weights []float64
		var want [][2]float64
		decodeCase(t, c[1], &args)
		decodeCase(t, args[0], &n)
		decodeCase(t, args[1], &coverage)
		decodeCase(t, args[2], &weights)
		decodeCase(t, c[2], &want)
		t.Run(conformanceCaseName(i, c[0]), func(t *testing.T) {
			// GrowthBook's own harness truncates both sides to 8 decimals:
			// the ranges are unrounded doubles (0.2*0.2 is 0.04000000000000001
			// in JavaScript too) while the file stores 0.04.
			got := BucketRanges(n, coverage, weights)
			if !slices.Equal(truncateRanges(got), truncateRanges(want)) {
				t.Errorf("BucketRanges(%d, %v, %v) = %v; want %v", n, coverage, weights, got, want)
			}
		})
	}
	if len(cases) != 13 {
		t.Errorf("getBucketRange: %d cases, want 13", len(cases))
	}
}

func TestConformanceChooseVariation(t *testing.T) {
	cases := loadCases(t, "chooseVariation")
	for i, c := range cases {
		// [name, n, ranges, expected index]
		var n float64
		var ranges [][2]float64
		var want int
		decodeCase(t, c[1], &n)
		decodeCase(t, c[2], &ranges)
		decodeCase(t, c[3], &want)
		t.Run(conformanceCaseName(i, c[0]), func(t *testing.T) {
			if got := ChooseVariation(n, ranges); got != want {
				t.Errorf("ChooseVariation(%v, %v) = %d; want %d", n, ranges, got, want)
			}
		})
	}
	if len(cases) != 13 {
		t.Errorf("chooseVariation: %d cases, want 13", len(cases))
	}
}

func TestConformanceInNamespace(t *testing.T) {
	cases := loadCases(t, "inNamespace")
	for i, c := range cases {
		// [name, id, [namespace, start, end], expected]
		var id string
		var ns []json.RawMessage
		var name string
		var start, end float64
		var want bool
		decodeCase(t, c[1], &id)
		decodeCase(t, c[2], &ns)
		decodeCase(t, ns[0], &name)
		decodeCase(t, ns[1], &start)
		decodeCase(t, ns[2], &end)
		decodeCase(t, c[3], &want)
		t.Run(conformanceCaseName(i, c[0]), func(t *testing.T) {
			if got := InNamespace(id, name, start, end); got != want {
				t.Errorf("InNamespace(%q, %q, %v, %v) = %v; want %v", id, name, start, end, got, want)
			}
		})
	}
	if len(cases) != 16 {
		t.Errorf("inNamespace: %d cases, want 16", len(cases))
	}
}

func TestConformanceGetEqualWeights(t *testing.T) {
	cases := loadCases(t, "getEqualWeights")
	for i, c := range cases {
		// [n, expected weights]
		var n int
		var want []float64
		decodeCase(t, c[0], &n)
		decodeCase(t, c[1], &want)
		t.Run(fmt.Sprintf("%03d n=%d", i, n), func(t *testing.T) {
			got := EqualWeights(n)
			// The file stores 1/3 as 0.33333333; both sides are truncated
			// to 8 decimals as GrowthBook's own harness does.
			if !slices.Equal(truncate8(got), truncate8(want)) {
				t.Errorf("EqualWeights(%d) = %v; want %v", n, got, want)
			}
		})
	}
	if len(cases) != 6 {
		t.Errorf("getEqualWeights: %d cases, want 6", len(cases))
	}
}

// refusedCases are the evalCondition cases whose conditions Parse refuses on purpose, with the
// reason; they run under GrowthBook's SDK rules (sdk_test.go) to show that the evaluator still
// agrees with the SDK on them.
var refusedCases = map[string]string{
	"$groups - match":                                     `"$groups" at the top level is an attribute to the SDK, an unknown operator to us`,
	"$groups - no match":                                  `"$groups" at the top level is an attribute to the SDK, an unknown operator to us`,
	"$in - not array":                                     "the SDK evaluates a wrongly typed argument to false",
	"$nin - not array":                                    "the SDK evaluates a wrongly typed argument to false",
	"unknown operator - pass":                             "the SDK evaluates an unknown operator to false",
	"$regex invalid - pass":                               "the SDK evaluates an invalid regular expression to false",
	"$regex invalid - fail":                               "the SDK evaluates an invalid regular expression to false",
	"$inGroup passes for member of known group id":        "xsell has no saved groups",
	"$inGroup fails for non-member of known group id":     "xsell has no saved groups",
	"$inGroup fails for unknown group id":                 "xsell has no saved groups",
	"$notInGroup fails for member of known group id":      "xsell has no saved groups",
	"$notInGroup passes for non-member of known group id": "xsell has no saved groups",
	"$notInGroup passes for unknown group id":             "xsell has no saved groups",
	"$inGroup passes for properly typed data":             "xsell has no saved groups",
	"$inGroup fails for improperly typed data":            "xsell has no saved groups",
}

// evalCase is one evalCondition case: [name, condition, attributes, expected, saved groups?].
type evalCase struct {
	name   string
	cond   json.RawMessage
	attrs  map[string]any
	want   bool
	groups map[string][]any
}

func loadEvalCases(t *testing.T) []evalCase {
	t.Helper()
	var out []evalCase
	for _, c := range loadCases(t, "evalCondition") {
		e := evalCase{cond: c[1]}
		decodeCase(t, c[0], &e.name)
		decodeCase(t, c[2], &e.attrs)
		decodeCase(t, c[3], &e.want)
		if len(c) > 4 {
			decodeCase(t, c[4], &e.groups)
		}
		out = append(out, e)
	}
	return out
}

func TestConformanceEvalCondition(t *testing.T) {
	cases := loadEvalCases(t)
	var refused []string
	for i, c := range cases {
		cond, err := Parse(c.cond)
		if err != nil {
			refused = append(refused, c.name)
		}
		t.Run(fmt.Sprintf("%03d %s", i, c.name), func(t *testing.T) {
			if err != nil {
				if _, ok := refusedCases[c.name]; !ok {
					t.Fatalf("Parse(%s) = %v; want it accepted", c.cond, err)
				}
				if cond, err = parseSDK(c.cond, c.groups); err != nil {
					t.Fatalf("parseSDK(%s) = %v", c.cond, err)
				}
			}
			if got := cond.Eval(c.attrs); got != c.want {
				t.Errorf("condition %s on %v = %v; want %v", c.cond, c.attrs, got, c.want)
			}
		})
	}
	slices.Sort(refused)
	if want := slices.Sorted(maps.Keys(refusedCases)); !slices.Equal(refused, want) {
		t.Errorf("Parse refused %q; want exactly %q", refused, want)
	}
	if len(cases) != 218 {
		t.Errorf("evalCondition: %d cases, want 218", len(cases))
	}
}

// TestConformanceSDKRulesAgreeWithParse checks that the SDK rules used for the refused cases
// evaluate every other case as Parse's condition does, so that they change nothing else.
func TestConformanceSDKRulesAgreeWithParse(t *testing.T) {
	for i, c := range loadEvalCases(t) {
		strict, err := Parse(c.cond)
		if err != nil {
			continue
		}
		sdk, err := parseSDK(c.cond, c.groups)
		if err != nil {
			t.Errorf("%03d %s: parseSDK failed: %v", i, c.name, err)
			continue
		}
		if strict.Eval(c.attrs) != sdk.Eval(c.attrs) {
			t.Errorf("%03d %s: Parse and the SDK rules disagree", i, c.name)
		}
	}
}
