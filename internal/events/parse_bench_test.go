package events

import (
	"encoding/json"
	"fmt"
	"testing"
)

// benchBatch is a batch of 100 events shaped like scripts/bench/events.sh's.
func benchBatch() []json.RawMessage {
	out := make([]json.RawMessage, 100)
	for i := range out {
		switch {
		case i < 60:
			out[i] = json.RawMessage(fmt.Sprintf(`{"id":"bench-c01-%07d","type":"offer_viewed","shopper_id":"s-%d","occurred_at":"2026-11-25T13:10:00Z","experiment":"pdp-bundle"}`, i, i))
		case i < 97:
			out[i] = json.RawMessage(fmt.Sprintf(`{"id":"bench-c01-%07d","type":"order_completed","shopper_id":"s-%d","occurred_at":"2026-11-25T13:10:00Z","experiment":"pdp-bundle","order_id":"o-%d","amount":2400,"discount":150,"currency":"EUR","items":[{"sku":"sku-shampoo","quantity":1,"unit_price":900},{"sku":"sku-conditioner","quantity":1,"unit_price":1500}]}`, i, i, i))
		default:
			out[i] = json.RawMessage(fmt.Sprintf(`{"id":"bench-c01-%07d","type":"order_refunded","shopper_id":"s-%d","occurred_at":"2026-11-25T13:10:00Z","order_id":"o-%d","amount":1500,"currency":"EUR"}`, i, i, i))
		}
	}
	return out
}

func BenchmarkParse100(b *testing.B) {
	batch := benchBatch()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(batch, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
