package console

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/xsell/xsell/internal/experiments"
)

// change is one value an audit entry changed, as a person reads it: where, from what, to what.
type change struct {
	Path, From, To string
}

// describeChanges turns an audit entry's changes into one line per changed value: a field that
// holds a list or an object is followed down to the values that differ, and variants are
// matched by key, so that "variants[bundle10].weight: 0.33 → 0.5" says exactly what moved.
func describeChanges(e experiments.AuditEntry) []change {
	var changes map[string]json.RawMessage
	if err := json.Unmarshal(e.Changes, &changes); err != nil {
		return []change{{Path: "(unreadable)", To: string(e.Changes)}}
	}
	var out []change
	for _, field := range slices.Sorted(maps.Keys(changes)) {
		raw := changes[field]
		var ft struct {
			From json.RawMessage `json:"from"`
			To   json.RawMessage `json:"to"`
		}
		if json.Unmarshal(raw, &ft) == nil && (ft.From != nil || ft.To != nil) && isFromTo(raw) {
			diffJSON(field, decode(ft.From), decode(ft.To), &out)
			continue
		}
		// A created experiment: its whole definition, every value set, named as in the form.
		if field == "definition" {
			field = ""
		}
		diffJSON(field, nil, decode(raw), &out)
	}
	return out
}

// isFromTo reports whether an object has exactly the keys from and to.
func isFromTo(raw json.RawMessage) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || len(m) != 2 {
		return false
	}
	_, f := m["from"]
	_, t := m["to"]
	return f && t
}

func decode(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	return v
}

// diffJSON appends a change for every value that differs between a and b under path.
func diffJSON(path string, a, b any, out *[]change) {
	am, aIsMap := a.(map[string]any)
	bm, bIsMap := b.(map[string]any)
	if (aIsMap || a == nil) && (bIsMap || b == nil) && (aIsMap || bIsMap) {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			sub := k
			if path != "" {
				sub = path + "." + k
			}
			diffJSON(sub, am[k], bm[k], out)
		}
		return
	}
	al, aIsList := a.([]any)
	bl, bIsList := b.([]any)
	if (aIsList || a == nil) && (bIsList || b == nil) && (aIsList || bIsList) && keyed(al) && keyed(bl) && (len(al)+len(bl) > 0) {
		diffKeyed(path, al, bl, out)
		return
	}
	if reflect.DeepEqual(a, b) {
		return
	}
	*out = append(*out, change{Path: path, From: show(a), To: show(b)})
}

// keyed reports whether every element of a list is an object with a "key", as variants are.
func keyed(l []any) bool {
	for _, x := range l {
		m, ok := x.(map[string]any)
		if !ok {
			return false
		}
		if _, ok := m["key"].(string); !ok {
			return false
		}
	}
	return true
}

// diffKeyed compares lists of keyed objects element by element, matched by key.
func diffKeyed(path string, a, b []any, out *[]change) {
	index := func(l []any) map[string]any {
		m := map[string]any{}
		for _, x := range l {
			m[x.(map[string]any)["key"].(string)] = x
		}
		return m
	}
	am, bm := index(a), index(b)
	for _, x := range b {
		k := x.(map[string]any)["key"].(string)
		diffJSON(fmt.Sprintf("%s[%s]", path, k), am[k], x, out)
	}
	for _, x := range a {
		k := x.(map[string]any)["key"].(string)
		if _, ok := bm[k]; !ok {
			diffJSON(fmt.Sprintf("%s[%s]", path, k), x, nil, out)
		}
	}
}

// show writes a value compactly; absent is a dash.
func show(v any) string {
	switch x := v.(type) {
	case nil:
		return "—"
	case string:
		return x
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return strings.ReplaceAll(string(b), ",", ", ")
}
