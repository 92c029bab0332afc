package hashmix_test

import (
	"testing"

	"github.com/xsell/xsell/internal/hashmix"
)

// TestMixIsSplitmix64sFinaliser checks Mix against the first outputs of splitmix64 from seed
// 0 as Vigna's reference C code (prng.di.unimi.it/splitmix64.c) prints them: each is the
// finaliser applied to the state advanced by 0x9e3779b97f4a7c15.
func TestMixIsSplitmix64sFinaliser(t *testing.T) {
	want := []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f}
	var state uint64
	for i, w := range want {
		state += 0x9e3779b97f4a7c15
		if got := hashmix.Mix(state); got != w {
			t.Errorf("output %d: Mix = %#x, splitmix64 gives %#x", i, got, w)
		}
	}
}
