package offers

import (
	"math/rand/v2"
	"testing"
)

// TestTheTableAgreesWithAMap drives a shard's table and Go's map with the same random sets,
// removals and tidies — hashes of a few thousand shoppers, the reserved 0 and 1 among them — and checks
// every read and the number of entries against the map.
func TestTheTableAgreesWithAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 9))
	hashes := []uint64{0, 1} // keyed 2 and 3
	for range 3000 {
		hashes = append(hashes, r.Uint64())
	}
	var tb table
	want := map[uint64]span{}
	for step := range 200_000 {
		h := hashes[r.IntN(len(hashes))]
		switch r.IntN(10) {
		case 0, 1, 2, 3:
			sp := span{next: r.Uint32(), n: uint16(step)}
			tb.set(h, sp)
			want[h] = sp
		case 4, 5, 6:
			tb.del(h)
			delete(want, h)
		case 7:
			if step%1000 == 0 {
				tb.tidy()
			}
		}
		if got := tb.get(h); got != want[h] {
			t.Fatalf("step %d: hash %d has %+v, the map says %+v", step, h, got, want[h])
		}
		if tb.used != len(want) {
			t.Fatalf("step %d: %d entries, the map has %d", step, tb.used, len(want))
		}
	}
	for h, sp := range want {
		if got := tb.get(h); got != sp {
			t.Fatalf("hash %d has %+v, the map says %+v", h, got, sp)
		}
	}
}
