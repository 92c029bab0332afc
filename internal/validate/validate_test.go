package validate

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/xsell/xsell/internal/apperr"
)

func details(p *apperr.Problems) string {
	var e *apperr.Error
	if !errors.As(p.Err(), &e) {
		return ""
	}
	var out []string
	for _, d := range e.Details {
		out = append(out, d.Field+" "+d.Code)
	}
	return strings.Join(out, "; ")
}

func TestText(t *testing.T) {
	for _, tc := range []struct{ s, code string }{
		{"", ""}, {"Köln 🛒", ""}, {"a\x00b", CodeNUL}, {"a\xffb", CodeInvalidUTF8},
		{"\xed\xa0\x80", CodeInvalidUTF8}, // a surrogate written as UTF-8
	} {
		var p apperr.Problems
		ok := Text(&p, "f", tc.s)
		if want := tc.code == ""; ok != want || (tc.code != "" && details(&p) != "f "+tc.code) {
			t.Errorf("Text(%q) = %v, %q; want code %q", tc.s, ok, details(&p), tc.code)
		}
	}
}

func TestShopperID(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"s-1", ""}, {"tenant/42", ""}, {strings.Repeat("ü", 256), ""},
		{"", "shopper_id required"}, {strings.Repeat("ü", 257), "shopper_id too_long"},
		{"evil\x00x", "shopper_id invalid_character"},
	} {
		var p apperr.Problems
		ShopperID(&p, "shopper_id", tc.id)
		if got := details(&p); got != tc.want {
			t.Errorf("ShopperID(%.20q) = %q, want %q", tc.id, got, tc.want)
		}
	}
}

func TestAttributeBounds(t *testing.T) {
	many := map[string]any{}
	for i := range MaxAttributes + 1 {
		many[fmt.Sprintf("a%d", i)] = i
	}
	var deep any = "leaf"
	for range MaxAttributeDepth + 1 {
		deep = []any{deep}
	}
	long := map[string]any{}
	for i := range 9 {
		long[fmt.Sprintf("k%d", i)] = strings.Repeat("v", 1000) // each fine, 9 KB in all
	}
	for _, tc := range []struct {
		name  string
		attrs map[string]any
		want  string
	}{
		{"usual", map[string]any{"country": "IT", "visits": 5.0, "vip": true, "tags": []any{"a"}, "geo": map[string]any{"city": "Roma"}, "x": nil}, ""},
		{"too many", many, "attributes too_many"},
		{"name too long", map[string]any{strings.Repeat("n", 65): 1.0}, "attributes." + strings.Repeat("n", 64) + "… invalid_name"},
		{"empty name", map[string]any{"": 1.0}, `attributes."" invalid_name`},
		{"NUL in a name", map[string]any{"k\x00": 1.0}, "attributes.k\x00 invalid_character"},
		{"NUL in a nested value", map[string]any{"geo": map[string]any{"city": []any{"ok", "R\x00"}}}, "attributes.geo.city[1] invalid_character"},
		{"invalid UTF-8", map[string]any{"k": "\xff"}, "attributes.k invalid_utf8"},
		{"string too long", map[string]any{"k": strings.Repeat("v", MaxAttributeString+1)}, "attributes.k too_long"},
		{"too deep", map[string]any{"k": deep}, "attributes.k[0][0][0][0] too_deep"},
		{"array too long", map[string]any{"k": make([]any, MaxAttributeElements+1)}, "attributes.k too_many"},
		{"too large in all", long, "attributes too_large"},
	} {
		var p apperr.Problems
		Attributes(&p, "attributes", tc.attrs)
		if got := details(&p); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestAttributeProblemsInNameOrder: however Go iterates the map, the problems come in the
// same order.
func TestAttributeProblemsInNameOrder(t *testing.T) {
	attrs := map[string]any{}
	for _, k := range []string{"d", "b", "a", "c", "e", "f"} {
		attrs[k] = "\x00"
	}
	want := "attributes.a invalid_character; attributes.b invalid_character; attributes.c invalid_character; " +
		"attributes.d invalid_character; attributes.e invalid_character; attributes.f invalid_character"
	for range 50 {
		var p apperr.Problems
		Attributes(&p, "attributes", attrs)
		if got := details(&p); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestPathName(t *testing.T) {
	if got := PathName(strings.Repeat("é", 40)); got != strings.Repeat("é", 32)+"…" {
		t.Errorf("a long name is cut to %q", got)
	}
	if got := PathName("country"); got != "country" {
		t.Errorf("PathName(country) = %q", got)
	}
}
