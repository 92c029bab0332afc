package targeting

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// FNV-1a 32-bit parameters; GrowthBook's hashFnv32a multiplies by the prime with shifts and
// adds, which is the same arithmetic modulo 2^32.
const (
	fnvOffset32 uint32 = 0x811c9dc5
	fnvPrime32  uint32 = 0x01000193
)

// fnv1a32 continues an FNV-1a hash over the UTF-16 code units of s, because the JavaScript SDK
// hashes charCodeAt values, not UTF-8 bytes (which is why hash/fnv does not serve). Shopper
// ids are nearly always ASCII, one byte a code unit, and take a path of their own:
// BenchmarkFNV compares it with the plain range loop (fnv1a32Range in hash_test.go), figures in
// docs/benchmarks.md.
func fnv1a32(h uint32, s string) uint32 {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			h = (h ^ uint32(c)) * fnvPrime32
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r >= 0x10000 {
			hi, lo := utf16.EncodeRune(r)
			h = (h ^ uint32(hi)) * fnvPrime32
			r = lo
		}
		h = (h ^ uint32(r)) * fnvPrime32
	}
	return h
}

// Hash maps a seed and a value to a number in [0, 1) with GrowthBook's hash version 1 or 2;
// ok is false for any other version.
func Hash(seed, value string, version int) (n float64, ok bool) {
	switch version {
	case 1:
		return hashV1(fnv1a32(fnv1a32(fnvOffset32, value), seed)), true
	case 2:
		return NewSeed(seed).Hash(value), true
	default:
		return 0, false
	}
}

// hashV1 is hash version 1, given the FNV-1a hash of value+seed: biased, and kept only for
// namespaces.
func hashV1(h uint32) float64 { return float64(h%1000) / 1000 }

// Seed is an experiment's seed prepared for hash version 2, which hashes seed+value: the seed's
// part is worked out once, when the experiment is loaded, rather than for every shopper.
type Seed struct{ prefix uint32 }

// NewSeed prepares seed for Seed.Hash.
func NewSeed(seed string) Seed { return Seed{prefix: fnv1a32(fnvOffset32, seed)} }

// Hash is GrowthBook's hash version 2 of the seed followed by value, in [0, 1).
func (s Seed) Hash(value string) float64 {
	inner := fnv1a32(s.prefix, value)
	// The decimal text of the inner hash is hashed again; its digits are ASCII, one code unit
	// each, and a buffer on the stack keeps the assignment path free of heap allocation.
	var buf [10]byte
	h := fnvOffset32
	for _, c := range strconv.AppendUint(buf[:0], uint64(inner), 10) {
		h = (h ^ uint32(c)) * fnvPrime32
	}
	return float64(h%10000) / 10000
}

// HashValue is the text GrowthBook hashes for an attribute's value: a string, a number as
// JavaScript prints it, or true. A falsy value (missing, null, "", 0, false) has none, as the
// SDK's `attributes[attr] || ""` gives the empty string that excludes the shopper. Arrays and
// objects have none either: the SDK would hash their JavaScript text ("a,b", "[object
// Object]"), which is no identifier.
func HashValue(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, x != ""
	case float64:
		if !jsTruthy(x) {
			return "", false
		}
		return jsToString(x), true
	case bool:
		if !x {
			return "", false
		}
		return "true", true
	}
	return "", false
}
