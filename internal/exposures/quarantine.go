package exposures

import (
	"strings"
	"unicode/utf8"
)

// The consumers whose refused rows go to the quarantine table (internal/database.Quarantine),
// as named there and in xsell_quarantined_total: the stager quarantines a request's row by
// shopper and exposures, the merge a staged row by its id in exposure_log.
const (
	StagingConsumer = "exposures_staging"
	MergeConsumer   = "exposures_merge"
)

// unstorable says why a text column cannot hold s as it is, or "" when it can.
func unstorable(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "holds a NUL byte"
	}
	return ""
}
