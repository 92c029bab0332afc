package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/apperr"
)

var testNow = time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)

func raws(events ...string) []json.RawMessage {
	out := make([]json.RawMessage, len(events))
	for i, e := range events {
		out[i] = json.RawMessage(e)
	}
	return out
}

// details returns the problems of a Parse error, failing the test when there is none.
func details(t *testing.T, err error) []apperr.Detail {
	t.Helper()
	var e *apperr.Error
	if !errors.As(err, &e) || e.Code != apperr.Invalid {
		t.Fatalf("error = %v, want an invalid_request error", err)
	}
	return e.Details
}

func describe(ds []apperr.Detail) string {
	var b strings.Builder
	for _, d := range ds {
		idx := "-"
		if d.Index != nil {
			idx = fmt.Sprint(*d.Index)
		}
		fmt.Fprintf(&b, "[%s %s %s: %s] ", idx, d.Field, d.Code, d.Message)
	}
	return b.String()
}

const okOrder = `"type":"order_completed","shopper_id":"s-1","order_id":"o-1","amount":4990,"currency":"EUR"`

func TestParseRefusesEachInvalidEventWithFieldAndCode(t *testing.T) {
	long := strings.Repeat("x", 129)
	cases := []struct {
		name, event, field, code string
	}{
		{"missing id", `{"type":"offer_viewed","shopper_id":"s-1"}`, "id", "required"},
		{"empty id", `{"id":"","type":"offer_viewed","shopper_id":"s-1"}`, "id", "required"},
		{"id too long", `{"id":"` + long + `","type":"offer_viewed","shopper_id":"s-1"}`, "id", "too_long"},
		{"id with NUL", `{"id":"a\u0000b","type":"offer_viewed","shopper_id":"s-1"}`, "id", "invalid_character"},
		{"id a number", `{"id":7,"type":"offer_viewed","shopper_id":"s-1"}`, "id", "wrong_type"},
		{"missing type", `{"id":"e","shopper_id":"s-1"}`, "type", "required"},
		{"unknown type", `{"id":"e","type":"offer_clicked","shopper_id":"s-1"}`, "type", "not_allowed"},
		{"missing shopper", `{"id":"e","type":"offer_viewed"}`, "shopper_id", "required"},
		{"shopper too long", `{"id":"e","type":"offer_viewed","shopper_id":"` + strings.Repeat("s", 257) + `"}`, "shopper_id", "too_long"},
		{"occurred_at not RFC 3339", `{"id":"e","type":"offer_viewed","shopper_id":"s-1","occurred_at":"25/11/2026"}`, "occurred_at", "invalid_format"},
		{"occurred_at a number", `{"id":"e","type":"offer_viewed","shopper_id":"s-1","occurred_at":1764079200}`, "occurred_at", "wrong_type"},
		{"occurred_at 5m01s ahead", `{"id":"e","type":"offer_viewed","shopper_id":"s-1","occurred_at":"2026-11-25T14:05:01Z"}`, "occurred_at", "in_the_future"},
		{"occurred_at tomorrow in another zone", `{"id":"e","type":"offer_viewed","shopper_id":"s-1","occurred_at":"2026-11-26T09:00:00+02:00"}`, "occurred_at", "in_the_future"},
		{"occurred_at before 1970", `{"id":"e","type":"offer_viewed","shopper_id":"s-1","occurred_at":"0001-01-01T00:00:00Z"}`, "occurred_at", "out_of_range"},
		{"order without order_id", `{"id":"e","type":"order_completed","shopper_id":"s-1","amount":100,"currency":"EUR"}`, "order_id", "required"},
		{"refund without order_id", `{"id":"e","type":"order_refunded","shopper_id":"s-1","amount":100,"currency":"EUR"}`, "order_id", "required"},
		{"order without amount", `{"id":"e","type":"order_completed","shopper_id":"s-1","order_id":"o-1","currency":"EUR"}`, "amount", "required"},
		{"refund without amount", `{"id":"e","type":"order_refunded","shopper_id":"s-1","order_id":"o-1","currency":"EUR"}`, "amount", "required"},
		{"negative amount", `{"id":"e","type":"order_completed","shopper_id":"s-1","order_id":"o-1","amount":-1,"currency":"EUR"}`, "amount", "out_of_range"},
		{"fractional amount", `{"id":"e","type":"order_completed","shopper_id":"s-1","order_id":"o-1","amount":49.90,"currency":"EUR"}`, "amount", "wrong_type"},
		{"amount as a string", `{"id":"e","type":"order_completed","shopper_id":"s-1","order_id":"o-1","amount":"4990","currency":"EUR"}`, "amount", "wrong_type"},
		{"negative discount", `{"id":"e",` + okOrder + `,"discount":-500}`, "discount", "out_of_range"},
		{"amount without currency", `{"id":"e","type":"order_completed","shopper_id":"s-1","order_id":"o-1","amount":100}`, "currency", "required"},
		{"discount without currency", `{"id":"e","type":"offer_accepted","shopper_id":"s-1","discount":100}`, "currency", "required"},
		{"lower-case currency", `{"id":"e","type":"order_completed","shopper_id":"s-1","order_id":"o-1","amount":100,"currency":"eur"}`, "currency", "invalid_format"},
		{"unknown currency", `{"id":"e","type":"order_completed","shopper_id":"s-1","order_id":"o-1","amount":100,"currency":"ABC"}`, "currency", "not_allowed"},
		{"experiment too long", `{"id":"e","type":"offer_viewed","shopper_id":"s-1","experiment":"` + long + `"}`, "experiment", "too_long"},
		{"items on an offer view", `{"id":"e","type":"offer_viewed","shopper_id":"s-1","items":[]}`, "items", "not_allowed"},
		{"items on a refund", `{"id":"e","type":"order_refunded","shopper_id":"s-1","order_id":"o-1","amount":1,"currency":"EUR","items":[{"sku":"a","quantity":1,"unit_price":1}]}`, "items", "not_allowed"},
		{"items not an array", `{"id":"e",` + okOrder + `,"items":{"sku":"a"}}`, "items", "wrong_type"},
		{"item not an object", `{"id":"e",` + okOrder + `,"items":["sku-1"]}`, "items[0]", "wrong_type"},
		{"item without sku", `{"id":"e",` + okOrder + `,"items":[{"quantity":1,"unit_price":100}]}`, "items[0].sku", "required"},
		{"item with zero quantity", `{"id":"e",` + okOrder + `,"items":[{"sku":"a","quantity":1,"unit_price":1},{"sku":"b","quantity":0,"unit_price":100}]}`, "items[1].quantity", "out_of_range"},
		{"item without unit_price", `{"id":"e",` + okOrder + `,"items":[{"sku":"a","quantity":2}]}`, "items[0].unit_price", "required"},
		{"item with negative unit_price", `{"id":"e",` + okOrder + `,"items":[{"sku":"a","quantity":2,"unit_price":-3}]}`, "items[0].unit_price", "out_of_range"},
		{"item with unknown field", `{"id":"e",` + okOrder + `,"items":[{"sku":"a","quantity":2,"unit_price":3,"colour":"red"}]}`, "items[0].colour", "unknown_field"},
		{"unknown field", `{"id":"e","type":"offer_viewed","shopper_id":"s-1","shoper":"s-2"}`, "shoper", "unknown_field"},
		{"field name in another case", `{"ID":"e","id":"e","type":"offer_viewed","shopper_id":"s-1"}`, "ID", "unknown_field"},
		{"amount above MaxAmount", `{"id":"e","type":"order_refunded","shopper_id":"s-1","order_id":"o-1","amount":9223372036854775807,"currency":"EUR"}`, "amount", "out_of_range"},
		{"amount one above MaxAmount", `{"id":"e","type":"order_completed","shopper_id":"s-1","order_id":"o-1","amount":1000000000001,"currency":"EUR"}`, "amount", "out_of_range"},
		{"discount above amount", `{"id":"e",` + okOrder + `,"discount":1000000}`, "discount", "out_of_range"},
		{"unit_price above MaxAmount", `{"id":"e",` + okOrder + `,"items":[{"sku":"a","quantity":1,"unit_price":1000000000001}]}`, "items[0].unit_price", "out_of_range"},
		{"line above MaxAmount", `{"id":"e",` + okOrder + `,"items":[{"sku":"a","quantity":1000000,"unit_price":1000001}]}`, "items[0]", "out_of_range"},
		{"lines above MaxAmount", `{"id":"e",` + okOrder + `,"items":[{"sku":"a","quantity":1000,"unit_price":600000000},{"sku":"b","quantity":1000,"unit_price":600000000}]}`, "items", "out_of_range"},
		{"NUL in shopper", `{"id":"e","type":"offer_viewed","shopper_id":"s\u0000"}`, "shopper_id", "invalid_character"},
		{"NUL in order id", `{"id":"e","type":"order_completed","shopper_id":"s-1","order_id":"o\u0000","amount":1,"currency":"EUR"}`, "order_id", "invalid_character"},
		{"NUL in sku", `{"id":"e",` + okOrder + `,"items":[{"sku":"a\u0000","quantity":1,"unit_price":1}]}`, "items[0].sku", "invalid_character"},
		{"event not an object", `"offer_viewed"`, "", "wrong_type"},
		{"event null", `null`, "", "wrong_type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The bad event is second, after a valid one, so the index must point at it.
			_, err := Parse(raws(`{"id":"fine","type":"offer_viewed","shopper_id":"s-1"}`, tc.event), testNow)
			ds := details(t, err)
			if len(ds) != 1 || ds[0].Index == nil || *ds[0].Index != 1 || ds[0].Field != tc.field || ds[0].Code != tc.code {
				t.Fatalf("details = %s; want exactly [1 %s %s]", describe(ds), tc.field, tc.code)
			}
			if ds[0].Message == "" {
				t.Fatal("a detail without a message")
			}
			// When a typed decode takes the batch, Validate must find the same problem.
			var in []*Input
			dec := json.NewDecoder(strings.NewReader(`[{"id":"fine","type":"offer_viewed","shopper_id":"s-1"},` + tc.event + `]`))
			dec.DisallowUnknownFields()
			if dec.Decode(&in) == nil && tc.field != "ID" {
				_, err := Validate(in, testNow)
				if vd := details(t, err); describe(vd) != describe(ds) {
					t.Fatalf("Validate found %s, Parse %s", describe(vd), describe(ds))
				}
			}
		})
	}
}

func TestParseReportsEveryProblemOfEveryEvent(t *testing.T) {
	_, err := Parse(raws(
		`{"type":"order_refunded","shopper_id":"s-1","amount":-5}`,
		`{"id":"ok","type":"offer_viewed","shopper_id":"s-1"}`,
		`{"id":"x","type":"order_completed","shopper_id":"","order_id":"o","amount":1,"currency":"EUR","items":[{"sku":"a","quantity":"2","unit_price":1}],"extra":true}`,
	), testNow)
	got := map[string]bool{}
	for _, d := range details(t, err) {
		got[fmt.Sprintf("%d %s %s", *d.Index, d.Field, d.Code)] = true
	}
	want := []string{
		"0 id required", "0 order_id required", "0 amount out_of_range", "0 currency required",
		"2 shopper_id required", "2 items[0].quantity wrong_type", "2 extra unknown_field",
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("missing problem %q in %v", w, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d problems %v, want %d", len(got), got, len(want))
	}
}

func TestParseBatchSize(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  []json.RawMessage
		code string
	}{
		{"missing", nil, "required"},
		{"empty", []json.RawMessage{}, "out_of_range"},
		{"1001 events", make([]json.RawMessage, 1001), "out_of_range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := details(t, errOf(Parse(tc.raw, testNow)))
			if len(ds) != 1 || ds[0].Field != "events" || ds[0].Code != tc.code || ds[0].Index != nil {
				t.Fatalf("details = %s, want [- events %s]", describe(ds), tc.code)
			}
		})
	}
	batch := make([]json.RawMessage, MaxBatch)
	for i := range batch {
		batch[i] = json.RawMessage(fmt.Sprintf(`{"id":"e%d","type":"offer_viewed","shopper_id":"s"}`, i))
	}
	if evs, err := Parse(batch, testNow); err != nil || len(evs) != MaxBatch {
		t.Fatalf("a batch of %d: %d events, %v", MaxBatch, len(evs), err)
	}
}

func errOf(_ []Event, err error) error { return err }

func TestParseAcceptsValidEvents(t *testing.T) {
	evs, err := Parse(raws(
		`{"id":"v","type":"offer_viewed","shopper_id":"s-1","experiment":"pdp-bundle"}`,
		`{"id":"o","type":"order_completed","shopper_id":"s-1","order_id":"o-1","amount":4990,"discount":500,"currency":"EUR",
		  "occurred_at":"2026-11-25T15:04:59+01:00","items":[{"sku":"cam-1","quantity":1,"unit_price":3990},{"sku":"sd-64","quantity":2,"unit_price":500}]}`,
		`{"id":"r","type":"order_refunded","shopper_id":"s-1","order_id":"o-1","amount":0,"currency":"JPY","occurred_at":"2026-11-25T14:05:00Z"}`,
		`{"id":"n","type":"offer_accepted","shopper_id":"s-1","experiment":null,"items":null}`,
	), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if !evs[0].OccurredAt.Equal(testNow) {
		t.Errorf("a missing occurred_at = %v, want the clock's %v", evs[0].OccurredAt, testNow)
	}
	if evs[0].Experiment != "pdp-bundle" || evs[0].Amount != nil || evs[0].Currency != "" {
		t.Errorf("offer view = %+v", evs[0])
	}
	o := evs[1]
	if *o.Amount != 4990 || *o.Discount != 500 || o.Currency != "EUR" || o.OrderID != "o-1" || len(o.Items) != 2 ||
		o.Items[1] != (Item{SKU: "sd-64", Quantity: 2, UnitPrice: 500}) {
		t.Errorf("order = %+v", o)
	}
	if !o.OccurredAt.Equal(time.Date(2026, 11, 25, 14, 4, 59, 0, time.UTC)) {
		t.Errorf("order occurred_at = %v", o.OccurredAt)
	}
	// Exactly five minutes ahead is still accepted; a zero refund is a valid refund.
	if r := evs[2]; !r.OccurredAt.Equal(testNow.Add(5*time.Minute)) || r.Amount == nil || *r.Amount != 0 {
		t.Errorf("refund = %+v", r)
	}
	if evs[3].Experiment != "" || evs[3].Items != nil {
		t.Errorf("nulls = %+v, want absent fields", evs[3])
	}
}
