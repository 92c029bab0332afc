package httpapi

import (
	"fmt"
	"strings"
	"testing"
)

// benchEventsBody is a batch of 100 events shaped like scripts/bench/events.sh's.
func benchEventsBody() []byte {
	out := make([]string, 100)
	for i := range out {
		switch {
		case i < 60:
			out[i] = fmt.Sprintf(`{"id":"bench-c01-%07d","type":"offer_viewed","shopper_id":"s-%d","occurred_at":"2026-11-25T13:10:00Z","experiment":"pdp-bundle"}`, i, i)
		case i < 97:
			out[i] = fmt.Sprintf(`{"id":"bench-c01-%07d","type":"order_completed","shopper_id":"s-%d","occurred_at":"2026-11-25T13:10:00Z","experiment":"pdp-bundle","order_id":"o-%d","amount":2400,"discount":150,"currency":"EUR","items":[{"sku":"sku-shampoo","quantity":1,"unit_price":900},{"sku":"sku-conditioner","quantity":1,"unit_price":1500}]}`, i, i, i)
		default:
			out[i] = fmt.Sprintf(`{"id":"bench-c01-%07d","type":"order_refunded","shopper_id":"s-%d","occurred_at":"2026-11-25T13:10:00Z","order_id":"o-%d","amount":1500,"currency":"EUR"}`, i, i, i)
		}
	}
	return []byte(`{"events":[` + strings.Join(out, ",") + `]}`)
}

// BenchmarkDecodeEvents100 is the decoding of one POST /v1/events body of 100 events.
func BenchmarkDecodeEvents100(b *testing.B) {
	body := benchEventsBody()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var req eventsRequest
		if err := decodeBody(body, &req); err != nil {
			b.Fatal(err)
		}
	}
}

var benchAssignBody = []byte(`{"shopper_id":"shopper-12345","attributes":{"country":"IT","device":"mobile","visits":5}}`)

// BenchmarkDecodeAssignFast is the hand-written parser on the usual assign body, reusing its
// attributes map as the handler does.
func BenchmarkDecodeAssignFast(b *testing.B) {
	attrs := map[string]any{}
	b.ReportAllocs()
	for b.Loop() {
		var req assignRequest
		if !parseAssign(benchAssignBody, &req, attrs) {
			b.Fatal("refused")
		}
	}
}

// BenchmarkDecodeAssignLibrary is the strict decoder (the library) on the same body.
func BenchmarkDecodeAssignLibrary(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var req assignRequest
		if err := decodeBody(benchAssignBody, &req); err != nil {
			b.Fatal(err)
		}
	}
}
