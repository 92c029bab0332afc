package targeting

import (
	"slices"
	"testing"
)

// JavaScript computes 0.2*0.2 as 0.04000000000000001 and 0.1+0.2 as
// 0.30000000000000004; the ranges must carry the same doubles, unrounded,
// or shoppers near a boundary would land in a different variant than the SDK
// puts them in.
func TestBucketRangesKeepsJavaScriptDoubles(t *testing.T) {
	got := BucketRanges(3, 0.2, []float64{0.2, 0.3, 0.5})
	if got[0][1] != 0.04000000000000001 {
		t.Errorf("first range ends at %v; want 0.04000000000000001", got[0][1])
	}
	got = BucketRanges(3, 1, []float64{0.1, 0.2, 0.7})
	want := [][2]float64{{0, 0.1}, {0.1, 0.30000000000000004}, {0.30000000000000004, 1}}
	if !slices.Equal(got, want) {
		t.Errorf("BucketRanges = %v; want %v", got, want)
	}
}

func TestRaisingCoverageKeepsRangeStarts(t *testing.T) {
	weights := []float64{0.2, 0.3, 0.5}
	low := BucketRanges(3, 0.3, weights)
	high := BucketRanges(3, 0.9, weights)
	for i := range low {
		if low[i][0] != high[i][0] || low[i][1] > high[i][1] {
			t.Errorf("range %d: %v at coverage 0.3 is not inside %v at 0.9", i, low[i], high[i])
		}
	}
}

func TestBucketRangesNoVariations(t *testing.T) {
	if got := BucketRanges(0, 1, nil); len(got) != 0 {
		t.Errorf("BucketRanges(0) = %v; want none", got)
	}
	if got := ChooseVariation(0.5, nil); got != -1 {
		t.Errorf("ChooseVariation over no ranges = %d; want -1", got)
	}
}
