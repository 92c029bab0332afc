// Package validate holds the checks that every area's input shares — text that Postgres can
// store, shopper ids, targeting attributes — so that the HTTP layer and the domain packages
// refuse the same values with the same codes and bounds.
package validate

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/xsell/xsell/internal/apperr"
)

// The codes of text problems.
const (
	CodeNUL         = "invalid_character" // holds U+0000, which Postgres text and jsonb refuse
	CodeInvalidUTF8 = "invalid_utf8"      // not valid UTF-8
)

// MaxShopperID is the length of a shopper id, in characters, everywhere a shopper id is taken:
// assignment, events, forced shoppers, loyalty accounts.
const MaxShopperID = 256

// TextProblem says why s cannot be stored as text: its code and message, or ok.
func TextProblem(s string) (code, message string, ok bool) {
	if !utf8.ValidString(s) {
		return CodeInvalidUTF8, "must be valid UTF-8", false
	}
	if strings.IndexByte(s, 0) >= 0 {
		return CodeNUL, "must not contain the NUL character", false
	}
	return "", "", true
}

// Text adds a problem at field when s is not valid UTF-8 or holds NUL, and says whether s is fine.
func Text(p *apperr.Problems, field, s string) bool {
	code, msg, ok := TextProblem(s)
	if !ok {
		p.Add(field, code, "%s", msg)
	}
	return ok
}

// TextAt is Text for a field of the index-th item of a batch.
func TextAt(p *apperr.Problems, index int, field, s string) bool {
	code, msg, ok := TextProblem(s)
	if !ok {
		p.AddAt(index, field, code, "%s", msg)
	}
	return ok
}

// ShopperID adds a problem at field unless id is 1 to MaxShopperID characters of text.
func ShopperID(p *apperr.Problems, field, id string) bool {
	switch {
	case id == "":
		p.Add(field, "required", "is required")
	case !Text(p, field, id):
	case utf8.RuneCountInString(id) > MaxShopperID:
		p.Add(field, "too_long", "must be at most %d characters, not %d", MaxShopperID, utf8.RuneCountInString(id))
	default:
		return true
	}
	return false
}

// PathName is an object name as it appears in the path of a problem: names longer than 64
// bytes are cut (at a character boundary), so that an answer does not repeat a huge name, and
// the empty name is written "".
func PathName(name string) string {
	const max = 64
	if name == "" {
		return `""` // so that the path still names something
	}
	if len(name) <= max {
		return name
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return name[:cut] + "…"
}

// MaxSKU is the length of a SKU, in bytes, wherever one is taken.
const MaxSKU = 128

// SKU adds a problem at field unless sku is 1 to MaxSKU bytes of text.
func SKU(p *apperr.Problems, field, sku string) bool {
	return SKUAt(p, -1, field, sku)
}

// SKUProblem says why sku is not a SKU: its code and message, or ok. It builds nothing for a
// good SKU, so a hot path may call it before it builds a problem's field path.
func SKUProblem(sku string) (code, message string, ok bool) {
	code, message, ok = TextProblem(sku)
	switch {
	case !ok:
	case sku == "":
		return "required", "is required", false
	case len(sku) > MaxSKU:
		return "too_long", "a SKU is at most " + strconv.Itoa(MaxSKU) + " bytes", false
	}
	return code, message, ok
}

// SKUAt is SKU for a field of the index-th item of a batch (none when index is negative).
func SKUAt(p *apperr.Problems, index int, field, sku string) bool {
	code, msg, ok := SKUProblem(sku)
	if ok {
		return true
	}
	if index < 0 {
		p.Add(field, code, "%s", msg)
	} else {
		p.AddAt(index, field, code, "%s", msg)
	}
	return false
}

// Bounds of the attributes of an assignment request: they are evaluated against every
// targeting rule and stored with each exposure, so one request must not carry a document.
const (
	MaxAttributes        = 50   // names at the top level
	MaxAttributeName     = 64   // bytes of a name, at any depth
	MaxAttributeString   = 1024 // bytes of a string value
	MaxAttributeElements = 100  // values of one array or names of one nested object
	MaxAttributeDepth    = 4    // nested objects and arrays below the top level
	MaxAttributeBytes    = 8192 // the whole, as JSON without spaces
)

// Attributes checks the attributes of an assignment request against the bounds above, and every
// name and string in them as text, reporting each problem at field.name. It reads the map
// twice only when something is wrong, the second time in name order, so that the answer is
// the same however the map iterates.
func Attributes(p *apperr.Problems, field string, attrs map[string]any) {
	if len(attrs) > MaxAttributes {
		p.Add(field, "too_many", "at most %d attributes, not %d", MaxAttributes, len(attrs))
		return
	}
	var quiet attrWalk
	if quiet.object(attrs, "", 0); !quiet.bad && quiet.size <= MaxAttributeBytes {
		return
	}
	loud := attrWalk{p: p}
	loud.object(attrs, field, 0)
	if !loud.bad && loud.size > MaxAttributeBytes {
		p.Add(field, "too_large", "must take at most %d bytes as JSON, not %d", MaxAttributeBytes, loud.size)
	}
}

// attrWalk measures and checks attribute values; with p nil it only notes that something is
// wrong, without building paths or sorting names.
type attrWalk struct {
	p    *apperr.Problems
	bad  bool
	size int // a bound of the JSON size: names and strings as bytes, numbers as 24, punctuation
}

func (w *attrWalk) fail(path, code, format string, args ...any) {
	w.bad = true
	if w.p != nil {
		w.p.Add(path, code, format, args...)
	}
}

func (w *attrWalk) object(m map[string]any, path string, depth int) {
	w.size += 2
	if depth > 0 && len(m) > MaxAttributeElements {
		w.fail(path, "too_many", "at most %d names in a nested object, not %d", MaxAttributeElements, len(m))
		return
	}
	visit := func(k string, v any) {
		child := ""
		if w.p != nil {
			child = path + "." + PathName(k)
		}
		w.size += len(k) + 4
		switch code, msg, ok := TextProblem(k); {
		case !ok:
			w.fail(child, code, "the name %s", msg)
		case k == "" || len(k) > MaxAttributeName:
			w.fail(child, "invalid_name", "a name is 1 to %d bytes", MaxAttributeName)
		default:
			w.value(v, child, depth)
		}
	}
	if w.p == nil {
		for k, v := range m {
			visit(k, v)
		}
		return
	}
	for _, k := range sortedKeys(m) {
		visit(k, m[k])
	}
}

func (w *attrWalk) value(v any, path string, depth int) {
	switch v := v.(type) {
	case string:
		w.size += len(v) + 2
		if code, msg, ok := TextProblem(v); !ok {
			w.fail(path, code, "%s", msg)
		} else if len(v) > MaxAttributeString {
			w.fail(path, "too_long", "must be at most %d bytes, not %d", MaxAttributeString, len(v))
		}
	case map[string]any:
		if depth >= MaxAttributeDepth {
			w.fail(path, "too_deep", "attributes nest at most %d levels", MaxAttributeDepth)
			return
		}
		w.object(v, path, depth+1)
	case []any:
		if depth >= MaxAttributeDepth {
			w.fail(path, "too_deep", "attributes nest at most %d levels", MaxAttributeDepth)
			return
		}
		if len(v) > MaxAttributeElements {
			w.fail(path, "too_many", "at most %d values in an array, not %d", MaxAttributeElements, len(v))
			return
		}
		w.size += 2
		for i, e := range v {
			child := ""
			if w.p != nil {
				child = path + "[" + strconv.Itoa(i) + "]"
			}
			w.size++
			w.value(e, child, depth+1)
		}
	default: // numbers, booleans and null: at most 24 bytes as JSON
		w.size += 24
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
