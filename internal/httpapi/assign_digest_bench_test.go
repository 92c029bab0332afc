package httpapi

import (
	"hash/maphash"
	"testing"
)

// digestSink keeps the compiler from dropping the benchmarks' hashing.
var digestSink uint64

// BenchmarkRequestDigest is the exposures' digest of a learned request (requestDigests: the
// body without its context, each side hashed whole) against streaming both sides through a
// maphash.Hash, the way it was written before.
func BenchmarkRequestDigest(b *testing.B) {
	body := []byte(`{"shopper_id":"shopper-123","attributes":{"country":"IT","device":"mobile","visits":5},"context":{"products":["sku-123","sku-4567","sku-8901"]}}`)
	req := &assignRequest{contextAt: [2]int{97, 143}}
	b.Run("two-parts", func(b *testing.B) {
		for b.Loop() {
			digestSink ^= requestDigests(body, req, 1, nil, 0).exposureDigest
		}
	})
	b.Run("streamed", func(b *testing.B) {
		at := req.contextAt
		for b.Loop() {
			var h maphash.Hash
			h.SetSeed(requestSeed)
			h.Write(body[:at[0]])
			h.WriteByte(0)
			h.Write(body[at[1]:])
			digestSink ^= h.Sum64()
		}
	})
}
