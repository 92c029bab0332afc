package experiments

import (
	"strconv"
	"unicode/utf8"
)

// FNV-1a 32-bit parameters; GrowthBook's hashFnv32a multiplies by the prime
// with shifts and adds, which is the same arithmetic modulo 2^32.
const (
	fnvOffset32 uint32 = 0x811c9dc5
	fnvPrime32  uint32 = 0x01000193
)

// fnv1a32 continues an FNV-1a hash over the UTF-16 code units of s, because
// the JavaScript SDK hashes charCodeAt values, not UTF-8 bytes.
func fnv1a32(h uint32, s string) uint32 {
	for i := 0; i < len(s); {
		// Shopper ids are nearly always ASCII: one byte is one code unit.
		if c := s[i]; c < utf8.RuneSelf {
			h = (h ^ uint32(c)) * fnvPrime32
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r < 0x10000 {
			h = (h ^ uint32(r)) * fnvPrime32
			continue
		}
		r -= 0x10000
		h = (h ^ (0xD800 + uint32(r>>10))) * fnvPrime32
		h = (h ^ (0xDC00 + uint32(r&0x3FF))) * fnvPrime32
	}
	return h
}

// Hash maps a seed and a value to a number in [0, 1) with GrowthBook's hash
// version 1 or 2; ok is false for any other version.
func Hash(seed, value string, version int) (n float64, ok bool) {
	switch version {
	case 1:
		// Version 1 hashes value+seed; it is biased and kept only for layers.
		h := fnv1a32(fnv1a32(fnvOffset32, value), seed)
		return float64(h%1000) / 1000, true
	case 2:
		return hashV2(seedPrefix(seed), value), true
	default:
		return 0, false
	}
}

// seedPrefix is the FNV-1a state after the seed: hash version 2 hashes seed+value, so an
// experiment computes this once when the cache loads, not per shopper.
func seedPrefix(seed string) uint32 { return fnv1a32(fnvOffset32, seed) }

// hashV2 is hash version 2 of seed+value, given the seed's prefix state.
func hashV2(prefix uint32, value string) float64 {
	inner := fnv1a32(prefix, value)
	// The decimal text of the inner hash is hashed again; a stack buffer keeps this free of
	// heap allocation on the assignment path.
	var buf [20]byte
	digits := strconv.AppendUint(buf[:0], uint64(inner), 10)
	h := fnvOffset32
	for _, c := range digits {
		h = (h ^ uint32(c)) * fnvPrime32
	}
	return float64(h%10000) / 10000
}
