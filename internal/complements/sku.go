package complements

import (
	"strings"
	"unicode/utf8"
)

// SKUProblem says why sku is not a SKU — 1 to MaxSKULen bytes of UTF-8 text without NUL —
// as a problem code and message, or ok.
func SKUProblem(sku string) (code, message string, ok bool) {
	switch {
	case sku == "":
		return "required", "a SKU is 1 to 128 bytes of text", false
	case !utf8.ValidString(sku):
		return "invalid_utf8", "must be valid UTF-8", false
	case strings.IndexByte(sku, 0) >= 0:
		return "invalid_character", "must not contain the NUL character", false
	case len(sku) > MaxSKULen:
		return "too_long", "a SKU is at most 128 bytes", false
	}
	return "", "", true
}
