package httpapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// assignBodies are bodies the fast decoder must take, then bodies it must leave to the general
// decoder; FuzzParseAssign starts from all of them.
var (
	usualAssignBodies = []string{
		`{"shopper_id":"s-1"}`,
		`{"shopper_id":"s-1","attributes":{"country":"IT","device":"mobile","visits":5}}`,
		` { "shopper_id" : "s-1" , "attributes" : { "country" : "IT" } , "experiments" : [ "a" , "b" ] } ` + "\n",
		`{"experiments":["pdp-bundle"],"shopper_id":"s-3","attributes":{}}`,
		`{"shopper_id":"s-1","attributes":{"n":-0.5e+3,"z":0,"big":12345678901234567890,"t":true,"f":false,"x":null}}`,
		`{"shopper_id":"s-1","track":false}`,
		`{"track":true,"shopper_id":"s-1"}`,
		`{"shopper_id":"s-1","track":null}`,
		`{"shopper_id":"s-1","attributes":null,"experiments":null}`,
		`{"shopper_id":"s-1","experiments":[]}`,
		`{"shopper_id":"Zoë","attributes":{"city":"Köln"}}`,
		`{"shopper_id":""}`,
		`{"shopper_id":"s-1","context":{"products":["sku-1","sku-2","sku-3"]},"experiments":["a"]}`,
		`{"context": { "products" : [ ] } ,"shopper_id":"s-1"}`,
		`{"shopper_id":"s-1","context":null}`,
		`{}`,
	}
	otherAssignBodies = []string{
		``,
		`[]`,
		`{"shopper_id":"s-1",}`,
		`{"shopper_id":"s-1"} {}`,
		`{"shopper_id":"s\"1"}`,
		`{"shopper_id":"s\u00e91"}`,
		`{"shopper_id":null}`,
		`{"shopper_id":5}`,
		`{"Shopper_ID":"s-1"}`,
		`{"shopper_id":"s-1","shopper_id":"s-2"}`,
		`{"shopper_id":"s-1","attributes":{"a":1},"attributes":{"b":2}}`,
		`{"shopper_id":"s-1","attributes":{"a":1,"a":2}}`,
		`{"shopper_id":"s-1","track":true,"track":false}`,
		`{"shopper_id":"s-1","track":1}`,
		`{"shopper_id":"s-1","context":{}}`,
		`{"shopper_id":"s-1","context":{"products":null}}`,
		`{"shopper_id":"s-1","context":{"products":[1]}}`,
		`{"shopper_id":"s-1","context":{"products":"sku-1"}}`,
		`{"shopper_id":"s-1","context":{"products":["a"],"products":["b"]}}`,
		`{"shopper_id":"s-1","context":{"products":["a"],"page":"pdp"}}`,
		`{"shopper_id":"s-1","context":{"Products":["a"]}}`,
		`{"shopper_id":"s-1","context":{"products":["a\u0000"]}}`,
		`{"shopper_id":"s-1","context":{"products":["a"]},"context":null}`,
		`{"shopper_id":"s-1","context":[]}`,
		`{"shopper_id":"s-1","attributes":{"tags":["a","b"]}}`,
		`{"shopper_id":"s-1","attributes":{"n":01}}`,
		`{"shopper_id":"s-1","attributes":{"n":1.}}`,
		`{"shopper_id":"s-1","attributes":{"n":1e400}}`,
		`{"shopper_id":"s-1","attributes":{"n":-}}`,
		`{"shopper_id":"s-1","attributes":{"t":tru}}`,
		`{"shopper_id":"s-1","attributes":{"a":1,}}`,
		`{"shopper_id":"s-1","experiments":["a",]}`,
		`{"shopper_id":"s-1","experiments":[1]}`,
		`{"shopper_id":"s-1","at":"2026-11-01T00:00:00Z"}`,
		`{"shopper_id":"s-1","color":"red"}`,
		"{\"shopper_id\":\"s\x01\"}",
		"{\"shopper_id\":\"s\xff\"}",
		`{"shopper_id":"s-1"`,
	}
)

// checkParseAssign fails if parseAssign took body but decoded it differently from the strict
// decoder, or took a body the strict decoder refuses.
func checkParseAssign(t *testing.T, body []byte) bool {
	t.Helper()
	var got assignRequest
	if !parseAssign(body, &got, map[string]any{"stale": "from an earlier request"}) {
		return false
	}
	var want assignRequest
	if err := strictDecode(bytes.Clone(body), &want); err != nil {
		t.Fatalf("parseAssign took %q, which the strict decoder refuses: %v", body, err)
	}
	if len(got.Experiments) == 0 && len(want.Experiments) == 0 {
		got.Experiments, want.Experiments = nil, nil // nil and [] both mean "every running one"
	}
	// The fast decoder keeps the context in the request's own ctx; compare what it says.
	if got.Context != nil {
		c := *got.Context
		got.Context = &c
	}
	got.ctx = assignContext{}
	// contextAt spans the context's value, and only it: the exposures' digest leaves it out.
	if at := got.contextAt; at != [2]int{} {
		var c assignContext
		if got.Context == nil || json.Unmarshal(body[at[0]:at[1]], &c) != nil || !reflect.DeepEqual(c.Products, got.Context.Products) {
			t.Fatalf("parseAssign(%q): context at %v is %q", body, at, body[at[0]:at[1]])
		}
		got.contextAt = [2]int{}
	} else if got.Context != nil {
		t.Fatalf("parseAssign(%q) did not say where the context is", body)
	}
	if got.attrsJSON != "" {
		checkAttrsJSON(t, body, got.attrsJSON, got.attrsKeys, want.Attributes)
	}
	got.attrsJSON, got.attrsKeys = "", 0
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseAssign(%q) = %#v\nthe strict decoder gives %#v", body, got, want)
	}
	return true
}

// checkAttrsJSON fails unless attrsJSON, the attributes the fast decoder would have stored as
// the body spells them, is the JSON that encoding the decoded attributes gives, up to white
// space and the order of names (which jsonb does not keep): every number spelt as the
// encoder writes it, every string the same.
func checkAttrsJSON(t *testing.T, body []byte, attrsJSON string, keys int, attrs map[string]any) {
	t.Helper()
	if attrs == nil {
		attrs = map[string]any{}
	}
	encoded, err := json.Marshal(attrs)
	if err != nil {
		t.Fatal(err)
	}
	asNumbers := func(b []byte) (m map[string]any) {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			t.Fatalf("body %q: attributes %q: %v", body, b, err)
		}
		return m
	}
	if got, want := asNumbers([]byte(attrsJSON)), asNumbers(encoded); !reflect.DeepEqual(got, want) || keys != len(attrs) {
		t.Fatalf("body %q: attributes kept as %s (%d names), but encoded they are %s", body, attrsJSON, keys, encoded)
	}
}

// TestTheBodysAttributesAreStoredAsTheEncoderWouldWriteThem checks what the exposure's row
// gets for the attributes (storedAttributes): the body's own object, with the shopper_id
// assignment adds, when that is the JSON the map encodes to; else nothing, and the recorder
// encodes the map.
func TestTheBodysAttributesAreStoredAsTheEncoderWouldWriteThem(t *testing.T) {
	for _, c := range []struct{ body, stored string }{
		{`{"shopper_id":"s-1","attributes":{"country":"IT","device":"mobile","visits":5}}`,
			`{"country":"IT","device":"mobile","visits":5,"shopper_id":"s-1"}`},
		{`{"attributes": { "visits" : 2.5 } , "shopper_id":"Zoë"}`, `{ "visits" : 2.5,"shopper_id":"Zoë"}`},
		{`{"shopper_id":"s-1","attributes":{}}`, `{"shopper_id":"s-1"}`},
		{`{"shopper_id":"s-1","attributes":{ }}`, `{"shopper_id":"s-1"}`},
		{`{"shopper_id":"s-1"}`, `{"shopper_id":"s-1"}`},
		{`{"shopper_id":"s-1","attributes":null}`, `{"shopper_id":"s-1"}`},
		{`{"shopper_id":"s-1","attributes":{"shopper_id":"other","n":-3}}`, `{"shopper_id":"other","n":-3}`},
		// Spelt otherwise than the encoder writes them: left to it.
		{`{"shopper_id":"s-1","attributes":{"visits":5.0}}`, ``},
		{`{"shopper_id":"s-1","attributes":{"visits":1e2}}`, ``},
		{`{"shopper_id":"s-1","attributes":{"big":12345678901234567890}}`, ``},
		{`{"shopper_id":"s-1","attributes":{"tiny":0.0000001}}`, ``},
		// The general decoder's bodies: always encoded.
		{`{"shopper_id":"s-1","attributes":{"city":"K\u00f6ln"}}`, ``},
	} {
		var req assignRequest
		attrs := map[string]any{}
		if !parseAssign([]byte(c.body), &req, attrs) {
			req = assignRequest{}
			if err := strictDecode([]byte(c.body), &req); err != nil {
				t.Fatal(err)
			}
		}
		if req.Attributes == nil {
			req.Attributes = attrs
		}
		// What assignment does to the map (experiments.Snapshot.Assign).
		if _, ok := req.Attributes["shopper_id"]; !ok {
			req.Attributes["shopper_id"] = req.ShopperID
		}
		got := req.storedAttributes()
		if got != c.stored {
			t.Errorf("body %s: attributes stored as %q, want %q", c.body, got, c.stored)
			continue
		}
		if got != "" {
			checkAttrsJSON(t, []byte(c.body), got, len(req.Attributes), req.Attributes)
		}
	}
}

func TestParseAssignDecodesAsTheStrictDecoderDoes(t *testing.T) {
	for _, b := range usualAssignBodies {
		if !checkParseAssign(t, []byte(b)) {
			t.Errorf("the fast decoder left the usual body %s to the general one", b)
		}
	}
	for _, b := range otherAssignBodies {
		if checkParseAssign(t, []byte(b)) {
			t.Errorf("the fast decoder took %q, which it should leave to the general decoder", b)
		}
	}
}
