package targeting

import (
	"strings"
	"unicode/utf8"
)

// versionCond is $veq, $vne, $vgt, $vgte, $vlt or $vlte: both sides padded, then compared as
// strings.
type versionCond struct {
	op   cmpOp
	want string // the argument, padded when compiled
}

func (c versionCond) matches(v any) bool {
	return c.op.holds(compareJSStrings(paddedVersion(v), c.want))
}

// paddedVersion is GrowthBook's paddedVersionString: a version turned into a string whose plain
// string order is the version order.
func paddedVersion(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case float64:
		s = jsToString(x)
	}
	if s == "" {
		s = "0"
	}
	// Drop a leading "v" and build metadata ("+..."); like the SDK's regular expression, the
	// build part is removed only if no line break follows the "+".
	s = strings.TrimPrefix(s, "v")
	lineStart := 0
	for i, r := range s {
		if r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029' {
			lineStart = i + utf8.RuneLen(r)
		}
	}
	if i := strings.IndexByte(s[lineStart:], '+'); i >= 0 {
		s = s[:lineStart+i]
	}
	parts := strings.Split(strings.ReplaceAll(s, "-", "."), ".")
	// A plain x.y.z gets "~", the highest printable ASCII character, so that a release sorts
	// after its pre-releases.
	if len(parts) == 3 {
		parts = append(parts, "~")
	}
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('-')
		}
		if isASCIIDigits(p) {
			// Left-padding numbers makes " 9" sort before "10".
			for j := len(p); j < 5; j++ {
				b.WriteByte(' ')
			}
		}
		b.WriteString(p)
	}
	return b.String()
}

func isASCIIDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
