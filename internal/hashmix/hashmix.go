// Package hashmix mixes 64-bit hashes for the in-memory tables of the request path (the
// exposures recorder's digests, the complements model's remembered choices): one
// implementation for both.
package hashmix

// Mix is splitmix64's finaliser, a bijection of 64 bits in which every input bit moves every
// output bit: a table probed from Mix(x) spreads keys that differ in one bit, and two keys
// that differ never meet by mixing.
func Mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
