package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/loyalty"
)

// decodeTargets are the request types of the API, each decoded by the strict decoder.
var decodeTargets = []func() any{
	func() any { return new(assignRequest) },
	func() any { return new(eventsRequest) },
	func() any { return new(loyalty.EarnRequest) },
	func() any { return new(loyalty.RedeemRequest) },
	func() any { return new(loyalty.ReverseRequest) },
	func() any { return new(programBody) },
	func() any { return new(experiments.Definition) },
	func() any { return new(updateBody) },
	func() any { return new(experiments.PhaseChange) },
	func() any { return new(settingsBody) },
	func() any { return new(offerSettingsBody) },
	func() any { return new(holdoutBody) },
	func() any { return new(BanditUpdateRequest) },
}

// decodeSeeds start FuzzDecoders: the bodies of issue 13's reproducers and of every request
// type, good and bad.
var decodeSeeds = []string{
	`{"shopper_id": "evil\u0000x"}`,
	`{"global_cap": {"offers": 3, "per": "7d\u0000"}, "version": 1}`,
	`{"global_cap": {"offers": 9223372036854775808, "per": "7d"}, "global_cap": null}`,
	`{"percent": 5, "seed": "h\u0000", "percent": 1e400}`,
	`{"shopper_id": "s", "attributes": {"k\u0000": "v"}}`,
	`{"shopper_id": "s", "attributes": {"k": "v\u0000"}}`,
	`{"shopper_id": "s", "attributes": {"k": "a", "k": "b"}}`,
	`{"shopper_id": "s", "attributes": {"k": ["a", {"b": 1e400}]}}`,
	`{"shopper_id": "s", "track": false, "context": {"products": ["sku-1"]}}`,
	`{"shopper_id": "s", "at": "2026-11-01T00:00:00+01:00"}`,
	`{"shopper_id": "\ud800"}`,
	`{"shopper_id": "\ud83d\ude00 \\u0000"}`,
	"{\"shopper_id\": \"r\xff\"}",
	"{\"shopper_id\": \"r\xff\"}zz",
	`{"events": [{"id": "e", "type": "order_refunded", "shopper_id": "s", "order_id": "o", "amount": 9223372036854775807, "currency": "EUR"}]}`,
	`{"events": [{"id": "e", "type": "order_completed", "shopper_id": "s", "order_id": "o", "amount": -9223372036854775809, "currency": "EUR"}]}`,
	`{"events": [{"id": "e", "type": "order_completed", "shopper_id": "s", "order_id": "o", "amount": 1.5, "currency": "EUR", "items": [{"sku": "a", "quantity": 1e3, "unit_price": 1}]}]}`,
	`{"events": [{"ID": "e"}], "Events": []}`,
	`{"points": 1000, "points": 1}`,
	`{"Points": 1, "idempotency_key": "k", "reason": "r"}`,
	`{"points": 1, "idempotency_key": "k", "reason": "r", "order_id": "o"}`,
	`{"points": null, "idempotency_key": "k"}`,
	`{"earn_rate": 1, "point_value": 1, "expiry_days": 0, "pending_days": 9223372036854775808}`,
	`{"key": "k", "name": "n", "version": 9223372036854775808}`,
	`{"key": "k", "name": "n", "version": 3, "variants": [{"key": "a", "weight": 0.5, "strategy": {"type": "none"}}], "layer": {"name": "l", "range": [0, 0.5, 1]}}`,
	`{"key": "k", "targeting": {"country": {"$in": ["IT", "IT"]}, "a": 1, "a": 2}, "forced": {"s-1": "a", "s-1": "b"}}`,
	`{"key": "k", "metrics": {"primary": "revenue", "guardrails": ["aov", {"metric": "refund_rate", "margin": 0.1}]}}`,
	`{"variants": [], "coverage": 0.5}`,
	`{"global_cap": {"offers": 3, "per": "7d", "offers": 4}, "version": 1}`,
	`{"global_cap": null, "updated_at": "2026-11-30T10:00:00Z"}`,
	`{"percent": 5, "seed": "holdout-2026", "generation": 2}`,
	`{"percent": "5", "seed": "h\u0000"}`,
	`{"key": "k", "frequency_cap": {"offers": 3, "per": "7d"}, "budget": {"discount": {"amount": 1, "currency": "EUR"}, "per_shopper": {"accepted_offers": 2, "per": "30d"}}}`,
	`{"metrics": {"guardrails": [{"Metric": "aov"}, {"metric": "aov", "bogus": 1}, {"metric": "aov", "metric": "x"}]}}`,
	`{"key": "k", "name": "n", "version": 2, "status": "running", "phase": 1, "created_at": "2026-11-01T00:00:00Z"}`,
	`{}`, `[]`, `null`, ``, ` `, `{"a":}`, `{} {}`, `{"x": 1}` + "\n",
}

func FuzzDecoders(f *testing.F) {
	for _, b := range decodeSeeds {
		f.Add([]byte(b))
	}
	for _, b := range append(append([]string{}, usualAssignBodies...), otherAssignBodies...) {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, make := range decodeTargets {
			checkStrictDecode(t, body, make)
		}
		checkParseAssign(t, body)
	})
}

// checkStrictDecode fails unless the strict decoder and the reference agree on body: both
// refuse it, the decoder with a 4xx error naming fields, or both take it with equal values.
func checkStrictDecode(t *testing.T, body []byte, make func() any) {
	t.Helper()
	got, want := make(), make()
	err := strictDecode(bytes.Clone(body), got)
	refErr := referenceDecode(body, want)
	name := reflect.TypeOf(got).Elem().Name()
	switch {
	case err == nil && refErr != nil:
		t.Fatalf("%s: the decoder took %q, which the reference refuses: %v", name, body, refErr)
	case err != nil && refErr == nil:
		t.Fatalf("%s: the decoder refused %q, which the reference takes: %v", name, body, err)
	case err != nil:
		var e *apperr.Error
		if !errors.As(err, &e) || (e.Code != apperr.Invalid && e.Code != apperr.MalformedJSON) {
			t.Fatalf("%s: %q refused with %v, not a 400", name, body, err)
		}
		for _, d := range e.Details {
			if d.Field == "" || d.Code == "" {
				t.Fatalf("%s: %q refused with a detail that names no field or code: %+v", name, body, d)
			}
		}
	default:
		sameTimes(got, want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %q decodes to\n%#v\nthe reference to\n%#v", name, body, got, want)
		}
	}
}

// sameTimes makes an assignRequest's At compare by instant: the two decoders may give the same
// instant different locations.
func sameTimes(got, want any) {
	g, ok := got.(*assignRequest)
	w, _ := want.(*assignRequest)
	if ok && g.At != nil && w.At != nil && g.At.Equal(*w.At) {
		g.At = w.At
	}
}

// referenceDecode is the specification of the strict decoder, written independently of it:
// encoding/json (v1) with DisallowUnknownFields, plus the rules of issue 13 — the body is
// valid UTF-8, no string holds NUL or an unpaired surrogate escape, no object repeats a name,
// names match a field exactly (v1 ignores case), a fixed-size array gets exactly its size
// (v1 drops or zero-fills), and nothing follows the value.
func referenceDecode(body []byte, dst any) error {
	if !utf8.Valid(body) {
		return errors.New("invalid UTF-8")
	}
	if err := tokenRules(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return err
	}
	if len(bytes.TrimSpace(body[dec.InputOffset():])) != 0 {
		return errors.New("data after the value")
	}
	var tree any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&tree); err != nil {
		return err
	}
	return exactNames(tree, reflect.TypeOf(dst))
}

// tokenRules checks every string and name of body for NUL and unpaired surrogates, and every
// object for repeated names.
func tokenRules(body []byte) error {
	type frame struct {
		object, wantName bool
		names            map[string]bool
	}
	var stack []*frame
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantName = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if s, ok := tok.(string); ok {
			if strings.ContainsRune(s, 0) {
				return errors.New("NUL in a string")
			}
			if unpairedSurrogate(body[start:dec.InputOffset()]) {
				return errors.New("unpaired surrogate escape")
			}
		}
		top := (*frame)(nil)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantName {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				valueDone()
				continue
			}
			name := tok.(string)
			if top.names[name] {
				return errors.New("repeated name " + strconv.Quote(name))
			}
			top.names[name] = true
			top.wantName = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, wantName: true, names: map[string]bool{}})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// unpairedSurrogate scans the escapes of the raw text around one JSON string for a \uD800 to
// \uDFFF escape that is not a high surrogate followed at once by a low one.
func unpairedSurrogate(raw []byte) bool {
	s := string(raw)
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			continue
		}
		if i+1 < len(s) && s[i+1] != 'u' {
			i++ // \" \\ \n and the like
			continue
		}
		if i+6 > len(s) {
			return false
		}
		r, _ := strconv.ParseUint(s[i+2:i+6], 16, 16)
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true // a low surrogate first
		case r >= 0xD800 && r <= 0xDBFF:
			if i+12 > len(s) || s[i+6:i+8] != `\u` {
				return true
			}
			lo, _ := strconv.ParseUint(s[i+8:i+12], 16, 16)
			if lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 11
		default:
			i += 5
		}
	}
	return false
}

var (
	refUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	refAny         = reflect.TypeFor[any]()
	refTime        = reflect.TypeFor[time.Time]()
	rfc3339        = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$`)
)

// strictTime says whether s is an RFC 3339 time as the RFC spells it (encoding/json v1 lets
// one-digit hours through).
func strictTime(s string) bool {
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil && rfc3339.MatchString(s)
}

// exactNames checks that every name of an object decoded into a struct is a field's JSON name
// as written, and that fixed-size arrays get exactly their size.
func exactNames(v any, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == refTime {
		if s, ok := v.(string); ok && !strictTime(s) {
			return errors.New("not an RFC 3339 time: " + s)
		}
		return nil
	}
	if reflect.PointerTo(t).Implements(refUnmarshaler) || t == refAny {
		return nil
	}
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			var ct reflect.Type
			switch t.Kind() {
			case reflect.Map:
				ct = t.Elem()
			case reflect.Struct:
				ct = fieldNamed(t, k)
				if ct == nil {
					return errors.New("no field named exactly " + strconv.Quote(k))
				}
			default:
				return nil
			}
			if err := exactNames(child, ct); err != nil {
				return err
			}
		}
	case []any:
		if t.Kind() == reflect.Array && t.Len() != len(v) {
			return errors.New("an array of the wrong size")
		}
		for _, child := range v {
			if err := exactNames(child, t.Elem()); err != nil {
				return err
			}
		}
	}
	return nil
}

// fieldNamed is the type of the field of struct t whose JSON name is name, or nil.
func fieldNamed(t reflect.Type, name string) reflect.Type {
	for i := range t.NumField() {
		f := t.Field(i)
		tagName, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && tagName == "" && f.Type.Kind() == reflect.Struct {
			if ft := fieldNamed(f.Type, name); ft != nil {
				return ft
			}
			continue
		}
		if !f.IsExported() || tagName == "-" {
			continue
		}
		if tagName == "" {
			tagName = f.Name
		}
		if tagName == name {
			return f.Type
		}
	}
	return nil
}

// TestDecodersAgreeOnMutations is FuzzDecoders for a fixed short time within `go test`: bodies
// made from the seeds by a fixed-seed stream of mutations of the kinds the rules are about.
// The coverage-guided fuzzer runs longer with `make fuzz` (see docs/testing.md).
func TestDecodersAgreeOnMutations(t *testing.T) {
	seeds := append(append(append([]string{}, decodeSeeds...), usualAssignBodies...), otherAssignBodies...)
	rng := rand.New(rand.NewPCG(13, 2026))
	deadline := time.Now().Add(3 * time.Second)
	n := 0
	for ; n < 200_000 && time.Now().Before(deadline); n++ {
		body := []byte(seeds[rng.IntN(len(seeds))])
		for range 1 + rng.IntN(3) {
			body = mutate(rng, body)
		}
		for _, make := range decodeTargets {
			checkStrictDecode(t, body, make)
		}
		checkParseAssign(t, body)
	}
	t.Logf("%d mutated bodies", n)
}

// mutationPieces are what mutate inserts: JSON's punctuation, escapes the rules are about,
// bytes that are not UTF-8, numbers at the edges of int64, and names of the request types in
// other cases.
var mutationPieces = []string{
	"{", "}", "[", "]", `"`, ":", ",", " ", `\`, `\u0000`, `\ud800`, `\udc00`, `\ud83d\ude00`, `\\u0000`,
	"\xff", "\xc3", "\xe9", "é", "0", "-", ".", "e", "1e400", "9223372036854775807", "9223372036854775808",
	"-9223372036854775809", "1.5", "null", "true", `"x"`, `"Shopper_ID"`, `"POINTS"`, `"Events"`, "zz",
}

// mutate changes body once: inserts a piece, deletes a span, repeats a span (a repeated
// member, if it falls on one) or flips the case of a letter.
func mutate(rng *rand.Rand, body []byte) []byte {
	at := rng.IntN(len(body) + 1)
	switch rng.IntN(4) {
	case 0:
		piece := mutationPieces[rng.IntN(len(mutationPieces))]
		return append(body[:at:at], append([]byte(piece), body[at:]...)...)
	case 1:
		end := min(len(body), at+1+rng.IntN(8))
		return append(body[:at:at], body[end:]...)
	case 2:
		end := min(len(body), at+rng.IntN(24))
		return append(body[:end:end], append(bytes.Clone(body[at:end]), body[end:]...)...)
	default:
		if at < len(body) && ('a' <= body[at] && body[at] <= 'z' || 'A' <= body[at] && body[at] <= 'Z') {
			body = bytes.Clone(body)
			body[at] ^= 0x20
		}
		return body
	}
}
