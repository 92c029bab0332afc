package targeting

import (
	"testing"
	"unicode/utf16"
)

// Expected values for non-ASCII strings were computed independently in
// Python over UTF-16 code units, the way the JavaScript SDK sees strings:
//
//	def fnv(s):
//	    b = s.encode('utf-16-le'); h = 0x811c9dc5
//	    for i in range(0, len(b), 2):
//	        h ^= b[i] | (b[i+1] << 8); h = (h * 16777619) & 0xffffffff
//	    return h
//	h2 = lambda seed, v: (fnv(str(fnv(seed + v))) % 10000) / 10000
//	h1 = lambda seed, v: (fnv(v + seed) % 1000) / 1000
func TestFNV1a32(t *testing.T) {
	cases := []struct {
		in   string
		want uint32
	}{
		// Published FNV-1a 32-bit test vectors.
		{"", 0x811c9dc5},
		{"a", 0xe40c292c},
		{"foobar", 0xbf9cf968},
		// One UTF-16 unit 0x00E9, not the UTF-8 bytes C3 A9.
		{"é", 0x6c0b6c44},
		// U+1F600 is the surrogate pair D83D DE00.
		{"😀", 0xcb31c4b8},
		{"shopper-😀-é", 0x17d7b23c},
	}
	for _, c := range cases {
		if got := fnv1a32(fnvOffset32, c.in); got != c.want {
			t.Errorf("fnv1a32(%q) = %#x; want %#x", c.in, got, c.want)
		}
	}
}

// fnv1a32Range is fnv1a32 written the plain way, the yardstick of its ASCII path.
func fnv1a32Range(h uint32, s string) uint32 {
	for _, r := range s {
		if r >= 0x10000 {
			hi, lo := utf16.EncodeRune(r)
			h = (h ^ uint32(hi)) * fnvPrime32
			r = lo
		}
		h = (h ^ uint32(r)) * fnvPrime32
	}
	return h
}

func TestFNV1a32AgreesWithThePlainLoop(t *testing.T) {
	for _, s := range []string{"", "shopper-0a1b2c3d", "é", "😀", "shopper-😀-é", "\xff\xfe-bad-utf8", "\xed\xa0\x80-surrogate"} {
		if got, want := fnv1a32(fnvOffset32, s), fnv1a32Range(fnvOffset32, s); got != want {
			t.Errorf("fnv1a32(%q) = %#x; the plain loop gives %#x", s, got, want)
		}
	}
}

// BenchmarkFNV hashes a typical shopper id with fnv1a32 and with the plain range loop.
func BenchmarkFNV(b *testing.B) {
	const id = "shopper-0a1b2c3d4e5f"
	var sink uint32
	b.Run("ascii-path", func(b *testing.B) {
		for b.Loop() {
			sink = fnv1a32(sink, id)
		}
	})
	b.Run("range-loop", func(b *testing.B) {
		for b.Loop() {
			sink = fnv1a32Range(sink, id)
		}
	})
}

func TestHashNonASCII(t *testing.T) {
	if got, ok := Hash("exp-😀", "shopper-é", 2); !ok || got != 0.8653 {
		t.Errorf("Hash v2 = %v, %v; want 0.8653", got, ok)
	}
	if got, ok := Hash("__layer-é", "s-😀", 1); !ok || got != 0.657 {
		t.Errorf("Hash v1 = %v, %v; want 0.657", got, ok)
	}
	if !InNamespace("s-😀", "layer-é", 0.657, 0.658) || InNamespace("s-😀", "layer-é", 0.658, 1) {
		t.Errorf("InNamespace does not place s-😀 at 0.657 of layer-é")
	}
}

func TestHashUnknownVersion(t *testing.T) {
	for _, v := range []int{0, 3, -1} {
		if _, ok := Hash("seed", "id", v); ok {
			t.Errorf("Hash version %d: ok; want not ok", v)
		}
	}
}

// Hashing runs for every experiment of every assignment request, so it must not allocate.
func TestHashDoesNotAllocate(t *testing.T) {
	id := "shopper-8952klfjas09ujkasdf-😀"
	allocs := testing.AllocsPerRun(100, func() {
		Hash("exp-cross-sell-bundles", id, 2)
		Hash("exp-cross-sell-bundles", id, 1)
		NewSeed("exp-cross-sell-bundles").Hash(id)
		InNamespace(id, "checkout-layer", 0, 0.5)
	})
	if allocs != 0 {
		t.Errorf("hashing allocates %v times per run; want 0", allocs)
	}
}

func BenchmarkHash(b *testing.B) {
	const seed, id = "exp-cross-sell-bundles", "shopper-0a1b2c3d4e5f"
	// The assignment cache prepares each experiment's seed once; "v2" is the simple
	// alternative of hashing the seed for every shopper.
	b.Run("v2", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Hash(seed, id, 2)
		}
	})
	b.Run("v2-prepared-seed", func(b *testing.B) {
		prepared := NewSeed(seed)
		b.ReportAllocs()
		for b.Loop() {
			prepared.Hash(id)
		}
	})
	b.Run("v1", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Hash(seed, id, 1)
		}
	})
	b.Run("InNamespace", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			InNamespace(id, "checkout-layer", 0, 0.5)
		}
	})
}

// HashValue gives the text the JavaScript SDK hashes: `attributes[attr] || ""` concatenated to
// the seed, which prints numbers as String(n) does. Expected strings are what node prints.
func TestHashValue(t *testing.T) {
	cases := []struct {
		in   any
		want string
		ok   bool
	}{
		{"d-42", "d-42", true},
		{42.0, "42", true},
		{1.5, "1.5", true},
		{1e21, "1e+21", true},
		{1e-7, "1e-7", true},
		{true, "true", true},
		// Falsy values are no identifier: the SDK leaves the shopper out.
		{"", "", false}, {0.0, "", false}, {false, "", false}, {nil, "", false},
		// Arrays and objects are no identifier either (the SDK would hash "a,b").
		{[]any{"a", "b"}, "", false}, {map[string]any{"a": 1.0}, "", false},
	}
	for _, c := range cases {
		if got, ok := HashValue(c.in); got != c.want || ok != c.ok {
			t.Errorf("HashValue(%#v) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
