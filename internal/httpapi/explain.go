package httpapi

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/validate"
)

// maxProblems bounds the details of one answer: a body of a million unknown names gets the
// first hundred, not an answer bigger than itself.
const maxProblems = 100

// explainBody reads a body that failed the fast path again, token by token alongside the type
// of dst, and reports every problem with its path: a syntax error (alone, with its line and
// column), then names that are unknown, repeated or not valid text, strings that hold NUL or
// invalid UTF-8, values of the wrong type and numbers outside their field's range, in the
// order they appear. A body with none of these (the fast path's NUL search can be fooled by an
// escaped backslash) is decoded as usual.
func explainBody(body []byte, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return apperr.New(apperr.MalformedJSON, "the body is empty; a JSON object is expected")
	}
	if err := checkSyntax(body); err != nil {
		return err
	}
	var p apperr.Problems
	w := bodyWalker{dec: jsontext.NewDecoder(bytes.NewReader(body), lenientText...), p: &p}
	w.value(reflect.TypeOf(dst), "")
	if err := p.Err(); err != nil {
		return err
	}
	reflect.ValueOf(dst).Elem().SetZero() // the failed decode may have filled part of it
	if err := jsonv2.Unmarshal(body, dst, strictJSON); err != nil {
		return semanticProblem(err, reflect.TypeOf(dst))
	}
	return nil
}

// lenientText lets the walker read past repeated names and invalid UTF-8, so that it can
// report each with its path instead of stopping at the first.
var lenientText = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// checkSyntax reports the first syntax error of body, or a second value after the first.
func checkSyntax(body []byte) error {
	dec := jsontext.NewDecoder(bytes.NewReader(body), lenientText...)
	if err := dec.SkipValue(); err != nil {
		return syntaxError(body, err)
	}
	switch _, err := dec.ReadToken(); {
	case err == io.EOF:
		return nil
	case err == nil:
		return apperr.New(apperr.MalformedJSON, "the body holds more than one JSON value")
	default:
		return syntaxError(body, err)
	}
}

// syntaxError turns a JSON syntax error into one that says where, as line and column.
func syntaxError(body []byte, err error) error {
	var se *jsontext.SyntacticError
	if !errors.As(err, &se) {
		return apperr.New(apperr.MalformedJSON, "malformed JSON: %v", err)
	}
	offset := min(int(se.ByteOffset), len(body))
	msg := "unexpected end of input"
	if !errors.Is(se.Err, io.ErrUnexpectedEOF) {
		msg = se.Err.Error()
	} else {
		offset = len(body)
	}
	line, col := 1, 1
	for _, b := range body[:offset] {
		if b == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return apperr.New(apperr.MalformedJSON, "malformed JSON at line %d, column %d: %s", line, col, msg)
}

// bodyWalker checks a body already known to be well-formed against the type it decodes into.
type bodyWalker struct {
	dec *jsontext.Decoder
	p   *apperr.Problems
}

var (
	timeType        = reflect.TypeFor[time.Time]()
	anyType         = reflect.TypeFor[any]()
	v1Unmarshaler   = reflect.TypeFor[json.Unmarshaler]()
	v2Unmarshaler   = reflect.TypeFor[jsonv2.UnmarshalerFrom]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// target simplifies t for the walk: pointers are looked through, an interface becomes anyType
// (any JSON value), and a type that decodes itself becomes nil (any JSON value, whose meaning
// the type checks when it is decoded).
func target(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == nil || t == timeType:
		return t
	case t.Kind() == reflect.Interface:
		return anyType
	}
	pt := reflect.PointerTo(t)
	if pt.Implements(v1Unmarshaler) || pt.Implements(v2Unmarshaler) || pt.Implements(textUnmarshaler) {
		return nil
	}
	return t
}

// value checks the next value against t (see target), each problem reported at path.
func (w *bodyWalker) value(t reflect.Type, path string) {
	if w.p.Len() >= maxProblems {
		_ = w.dec.SkipValue()
		return
	}
	t = target(t)
	switch kind := w.dec.PeekKind(); kind {
	case '{':
		w.object(t, path)
	case '[':
		w.array(t, path)
	case '"':
		w.str(t, path)
	case '0':
		w.number(t, path)
	case 't', 'f':
		if t != nil && t != anyType && t.Kind() != reflect.Bool {
			w.wrongType(t, path, "a boolean")
		}
		_ = w.dec.SkipValue()
	default: // null fits every field
		_ = w.dec.SkipValue()
	}
}

func (w *bodyWalker) wrongType(t reflect.Type, path, got string) {
	w.p.Add(fieldOrBody(path), "wrong_type", "must be %s, not %s", describeType(t), got)
}

func (w *bodyWalker) object(t reflect.Type, path string) {
	var fields map[string]reflect.Type
	elem := t
	switch {
	case t == nil || t == anyType:
	case t.Kind() == reflect.Struct && t != timeType:
		fields = jsonFields(t)
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		elem = t.Elem()
	default:
		w.wrongType(t, path, "an object")
		_ = w.dec.SkipValue()
		return
	}
	_, _ = w.dec.ReadToken() // {
	seen := map[string]bool{}
	for w.dec.PeekKind() != '}' {
		raw, err := w.dec.ReadValue()
		if err != nil {
			return // not reached: the syntax was checked
		}
		name, ok := w.text(raw, func(name string) string { return join(path, validate.PathName(name)) })
		child := join(path, validate.PathName(name))
		switch {
		case !ok:
			_ = w.dec.SkipValue()
		case seen[name]:
			w.p.Add(child, "duplicate_key", "appears more than once in the object")
			_ = w.dec.SkipValue()
		case fields != nil:
			seen[name] = true
			ft, known := fields[name]
			if !known {
				w.p.Add(child, "unknown_field", "unknown field")
				_ = w.dec.SkipValue()
				continue
			}
			w.value(ft, child)
		default:
			seen[name] = true
			w.value(elem, child)
		}
	}
	_, _ = w.dec.ReadToken() // }
}

func (w *bodyWalker) array(t reflect.Type, path string) {
	elem := t
	if t != nil && t != anyType {
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			w.wrongType(t, path, "an array")
			_ = w.dec.SkipValue()
			return
		}
		elem = t.Elem()
	}
	_, _ = w.dec.ReadToken() // [
	n := 0
	for ; w.dec.PeekKind() != ']'; n++ {
		w.value(elem, path+"["+strconv.Itoa(n)+"]")
	}
	_, _ = w.dec.ReadToken() // ]
	if t != nil && t.Kind() == reflect.Array && n != t.Len() {
		w.p.Add(fieldOrBody(path), "wrong_length", "must hold exactly %d values, not %d", t.Len(), n)
	}
}

func (w *bodyWalker) str(t reflect.Type, path string) {
	value, err := w.dec.ReadValue()
	if err != nil {
		return
	}
	raw := bytes.Clone(value) // the decoder's buffer changes at the next read
	_, ok := w.text(raw, func(string) string { return fieldOrBody(path) })
	switch {
	case !ok || t == nil || t == anyType:
	case t == timeType:
		if jsonv2.Unmarshal(raw, new(time.Time)) != nil {
			w.p.Add(fieldOrBody(path), "invalid_format", "must be an RFC 3339 time such as 2026-11-25T14:03:00Z")
		}
	case t.Kind() != reflect.String:
		w.wrongType(t, path, "a string")
	}
}

// text unquotes a JSON string and reports, at the path where(s) names, invalid UTF-8 (raw
// or as an unpaired surrogate escape) and NUL; it returns the string and whether it is fine.
func (w *bodyWalker) text(raw []byte, where func(s string) string) (string, bool) {
	b, err := jsontext.AppendUnquote(nil, raw)
	s := string(b)
	if err != nil || !utf8.Valid(raw) {
		w.p.Add(where(s), validate.CodeInvalidUTF8, "must be valid UTF-8 (an unpaired surrogate escape is not)")
		return s, false
	}
	if strings.IndexByte(s, 0) >= 0 {
		w.p.Add(where(s), validate.CodeNUL, "must not contain the NUL character")
		return s, false
	}
	return s, true
}

func (w *bodyWalker) number(t reflect.Type, path string) {
	raw, err := w.dec.ReadValue()
	if err != nil || t == nil {
		return
	}
	s := string(raw)
	field := fieldOrBody(path)
	switch t.Kind() {
	case reflect.Interface: // any: a float64
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			w.p.Add(field, "out_of_range", "%s does not fit a 64-bit float", s)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if _, err := strconv.ParseInt(s, 10, t.Bits()); err != nil {
			w.intProblem(field, s, int64(-1)<<(t.Bits()-1), uint64(1)<<(t.Bits()-1)-1)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if _, err := strconv.ParseUint(s, 10, t.Bits()); err != nil {
			w.intProblem(field, s, 0, uint64(1)<<(t.Bits()-1)<<1-1)
		}
	case reflect.Float32, reflect.Float64:
		if _, err := strconv.ParseFloat(s, t.Bits()); err != nil {
			w.p.Add(field, "out_of_range", "%s does not fit a %d-bit float", s, t.Bits())
		}
	default:
		w.wrongType(t, path, "a number")
	}
}

// intProblem reports a number that is no integer of its field: out of range when it is
// written as an integer, the wrong type when it has a fraction or an exponent.
func (w *bodyWalker) intProblem(field, s string, lo int64, hi uint64) {
	if strings.ContainsAny(s, ".eE") {
		w.p.Add(field, "wrong_type", "must be an integer, not %s", s)
		return
	}
	w.p.Add(field, "out_of_range", "must be an integer from %d to %d, not %s", lo, hi, s)
}

// semanticProblem reports an error of the final decode, which the walk let through (a type
// that decodes itself refused its value), at the path its JSON pointer names.
func semanticProblem(err error, t reflect.Type) error {
	var se *jsonv2.SemanticError
	if !errors.As(err, &se) {
		return apperr.New(apperr.Invalid, "%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	msg := "cannot be decoded"
	if se.Err != nil {
		msg = se.Err.Error()
	} else if se.GoType != nil {
		msg = "must be " + describeType(se.GoType)
	}
	var p apperr.Problems
	p.Add(fieldOrBody(pointerPath(se.JSONPointer, t)), "invalid", "%s", msg)
	return p.Err()
}

// pointerPath turns a JSON pointer into a path in this API's notation, items[0].sku, using t
// to tell array indexes from object names.
func pointerPath(ptr jsontext.Pointer, t reflect.Type) string {
	path := ""
	for tok := range ptr.Tokens() {
		t = target(t)
		switch {
		case t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
			path += "[" + tok + "]"
			t = t.Elem()
		case t != nil && t.Kind() == reflect.Struct:
			path = join(path, validate.PathName(tok))
			t = jsonFields(t)[tok]
		case t != nil && t.Kind() == reflect.Map:
			path = join(path, validate.PathName(tok))
			t = t.Elem()
		default:
			path = join(path, validate.PathName(tok))
			t = nil
		}
	}
	return path
}

func fieldOrBody(f string) string {
	if f == "" {
		return "body"
	}
	return f
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// jsonFields lists a struct's JSON names, following embedded structs as encoding/json does.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if v, ok := fieldCache.Load(t); ok {
		return v.(map[string]reflect.Type)
	}
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					out[k] = v
				}
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	fieldCache.Store(t, out)
	return out
}

var fieldCache sync.Map
