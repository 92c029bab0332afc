package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/gin-gonic/gin/binding"
	"github.com/go-playground/validator/v10"
	gojson "github.com/goccy/go-json"

	"github.com/xsell/xsell/internal/apperr"
)

// decodeJSON reads the request body into dst strictly: the body must be application/json,
// well-formed, of the right types and without unknown fields (each reported with its path),
// and pass dst's `binding` tags. Every problem is an *apperr.Error the client can act on.
func decodeJSON(c *gin.Context, dst any) error {
	body, err := readJSON(c)
	if err != nil {
		return err
	}
	return decodeBody(body, dst)
}

// readJSON reads a body that says it is JSON, within the size limit.
func readJSON(c *gin.Context) ([]byte, error) { return readJSONInto(c, nil) }

// readJSONInto is readJSON appending to buf, so that a hot handler can reuse its buffer.
func readJSONInto(c *gin.Context, buf []byte) ([]byte, error) {
	if ct := c.Request.Header["Content-Type"]; len(ct) > 0 {
		if !isJSONType(ct[0]) {
			return buf, apperr.New(apperr.UnsupportedMedia, "the body must be application/json, not %q", ct[0])
		}
	} else if c.Request.ContentLength > 0 {
		return buf, apperr.New(apperr.UnsupportedMedia, "the body must be application/json; set Content-Type")
	}
	if n := c.Request.ContentLength; n > 0 && n < 1<<20 && int(n) >= cap(buf)-len(buf) {
		// One more byte than announced, so that the end is found without growing.
		buf = append(buf[:cap(buf)], make([]byte, int(n)+1-(cap(buf)-len(buf)))...)[:len(buf)]
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := c.Request.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return buf, apperr.New(apperr.PayloadTooLarge, "the body exceeds the limit of %d bytes", tooBig.Limit)
			}
			return buf, apperr.New(apperr.Invalid, "reading the body: %v", err)
		}
	}
}

// isJSONType says whether a Content-Type names JSON: application/json or a +json type.
func isJSONType(ct string) bool {
	if ct == "application/json" || strings.EqualFold(ct, "application/json; charset=utf-8") {
		return true // what nearly every client sends, without parsing
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// decodeBody is decodeJSON on bytes already read.
func decodeBody(body []byte, dst any) error {
	// Fast path: a good body is decoded once, strictly. Only a body that fails is read again,
	// slowly, to say exactly what is wrong and where.
	// goccy/go-json decodes the same JSON into the same values as encoding/json, two to three
	// times faster: on two cores shared with Postgres, event ingestion's throughput was bound
	// by JSON decoding. encoding/json still reads a failing body, for its exact messages.
	dec := gojson.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err == nil && len(bytes.TrimSpace(body[dec.InputOffset():])) == 0 {
		return validateStruct(dst)
	}
	return explainBody(body, dst)
}

// explainBody decodes a body that failed the fast path, collecting every problem with its path.
func explainBody(body []byte, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return apperr.New(apperr.MalformedJSON, "the body is empty; a JSON object is expected")
	}
	var raw any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return syntaxError(body, err)
	}
	if dec.More() {
		return apperr.New(apperr.MalformedJSON, "the body holds more than one JSON value")
	}
	var problems apperr.Problems
	unknownFields(raw, reflect.TypeOf(dst), "", &problems)
	if err := problems.Err(); err != nil {
		return err
	}
	if err := json.Unmarshal(body, dst); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			e := apperr.New(apperr.Invalid, "%s: must be %s, not %s", fieldOrBody(typeErr.Field), describeType(typeErr.Type), typeErr.Value)
			e.Details = []apperr.Detail{{Field: typeErr.Field, Code: "wrong_type", Message: fmt.Sprintf("must be %s, not %s", describeType(typeErr.Type), typeErr.Value)}}
			return e
		}
		return apperr.New(apperr.Invalid, "%v", err)
	}
	return validateStruct(dst)
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

// syntaxError turns a JSON syntax error into one that says where, as line and column.
func syntaxError(body []byte, err error) error {
	var se *json.SyntaxError
	offset := int64(-1)
	if errors.As(err, &se) {
		offset = se.Offset - 1 // Offset counts the offending byte as read
	} else if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		offset = int64(len(body))
	}
	if offset < 0 {
		return apperr.New(apperr.MalformedJSON, "malformed JSON: %v", err)
	}
	line, col := 1, 1
	for _, b := range body[:min(int(offset), len(body))] {
		if b == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if errors.Is(err, io.ErrUnexpectedEOF) {
		msg = "unexpected end of input"
	}
	return apperr.New(apperr.MalformedJSON, "malformed JSON at line %d, column %d: %s", line, col, msg)
}

// unknownFields reports every object key that the target type has no field for, with its full
// path; encoding/json would only name the first and without its path.
func unknownFields(v any, t reflect.Type, path string, p *apperr.Problems) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch val := v.(type) {
	case map[string]any:
		switch t.Kind() {
		case reflect.Struct:
			fields := jsonFields(t)
			for k, child := range val {
				ft, ok := fields[k]
				if !ok {
					p.Add(join(path, k), "unknown_field", "unknown field")
					continue
				}
				unknownFields(child, ft, join(path, k), p)
			}
		case reflect.Map:
			for k, child := range val {
				unknownFields(child, t.Elem(), join(path, k), p)
			}
		}
	case []any:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for i, child := range val {
				unknownFields(child, t.Elem(), path+"["+strconv.Itoa(i)+"]", p)
			}
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// jsonFields lists a struct's JSON keys, following embedded structs as encoding/json does.
// A field of type json.RawMessage or any accepts whatever it is given.
func jsonFields(t reflect.Type) map[string]reflect.Type {
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
	return out
}

// validateStruct runs the `binding` tags of dst through Gin's validator and reports every
// failure with the JSON path of the field.
func validateStruct(dst any) error {
	if binding.Validator == nil || !hasBindingTags(reflect.TypeOf(dst)) {
		return nil
	}
	err := binding.Validator.ValidateStruct(dst)
	if err == nil {
		return nil
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return apperr.New(apperr.Invalid, "%v", err)
	}
	var p apperr.Problems
	for _, fe := range verrs {
		p.Add(jsonPath(fe.Namespace()), ruleCode(fe.Tag()), "%s", ruleMessage(fe))
	}
	return p.Err()
}

// tagged caches, per type, whether any field (at any depth) has a binding tag; most request
// types have none, and the validator's walk is not free on the assignment path.
var tagged sync.Map

func hasBindingTags(t reflect.Type) bool {
	if v, ok := tagged.Load(t); ok {
		return v.(bool)
	}
	has := bindingTagsIn(t, map[reflect.Type]bool{})
	tagged.Store(t, has)
	return has
}

func bindingTagsIn(t reflect.Type, seen map[reflect.Type]bool) bool {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return false
	}
	seen[t] = true
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Tag.Get("binding") != "" || bindingTagsIn(f.Type, seen) {
			return true
		}
	}
	return false
}

// jsonPath turns validator's "Request.Items[0].Sku" namespace, already in JSON names thanks to
// the tag-name function set in init, into "items[0].sku".
func jsonPath(ns string) string {
	if _, rest, ok := strings.Cut(ns, "."); ok {
		return rest
	}
	return ns
}

func ruleCode(tag string) string {
	switch tag {
	case "required":
		return "required"
	case "gt", "gte", "lt", "lte", "min", "max":
		return "out_of_range"
	case "oneof":
		return "not_allowed"
	default:
		return "invalid"
	}
}

func ruleMessage(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return "is required"
	case "gt":
		return "must be greater than " + fe.Param()
	case "gte":
		return "must be at least " + fe.Param()
	case "lt":
		return "must be less than " + fe.Param()
	case "lte":
		return "must be at most " + fe.Param()
	case "min":
		return "must have at least " + fe.Param() + " (length or value)"
	case "max":
		return "must have at most " + fe.Param() + " (length or value)"
	case "oneof":
		return "must be one of: " + fe.Param()
	default:
		return "fails the rule " + fe.Tag()
	}
}

// useJSONNames makes the validator report JSON names, not Go names, in validation paths. It
// sets a global of the binding library: ConfigureLibraries calls it, once.
func useJSONNames() {
	if v, ok := binding.Validator.Engine().(*validator.Validate); ok {
		v.RegisterTagNameFunc(func(f reflect.StructField) string {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				return ""
			}
			if name == "" {
				return f.Name
			}
			return name
		})
	}
}
