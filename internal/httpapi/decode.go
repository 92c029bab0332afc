package httpapi

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/gin-gonic/gin/binding"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-playground/validator/v10"

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

// decodeBody is decodeJSON on bytes already read. A good body is decoded once, by
// encoding/json/v2's rules (github.com/go-json-experiment/json, which Go 1.27 makes
// encoding/json/v2): names matched exactly, no unknown or duplicate names, valid UTF-8 and no
// unpaired surrogate escape, integers that fit their field, nothing after the value. The one
// rule of ours on top — no NUL in any string, since Postgres text cannot hold it — costs a
// search for its only spelling in valid JSON, \u0000. A body that fails is read again, slowly,
// by explainBody, to say exactly what is wrong and where.
func decodeBody(body []byte, dst any) error {
	if err := strictDecode(body, dst); err != nil {
		return err
	}
	return validateStruct(dst)
}

// strictDecode is decodeBody without the `binding` rules.
func strictDecode(body []byte, dst any) error {
	if jsonv2.Unmarshal(body, dst, strictJSON) == nil && !bytes.Contains(body, nulEscape) {
		return nil
	}
	return explainBody(body, dst)
}

// strictJSON adds to v2's defaults (which refuse duplicate names and invalid UTF-8 and match
// names exactly) the refusal of unknown names.
var strictJSON = jsonv2.RejectUnknownMembers(true)

// nulEscape is how a NUL can appear in valid JSON: the grammar refuses a raw NUL byte.
var nulEscape = []byte(`\u0000`)

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
