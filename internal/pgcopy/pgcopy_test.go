package pgcopy

import (
	"strings"
	"testing"
	"time"
)

// TestAppendTimestampAgreesWithTimeFormat: the COPY text's timestamps name the same instant
// as time.Format's RFC 3339, whatever the zone the time came in.
func TestAppendTimestampAgreesWithTimeFormat(t *testing.T) {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	for _, tc := range []time.Time{
		time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		time.Date(2026, 12, 31, 23, 59, 59, 999999999, zone),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 1000, time.UTC),
	} {
		got := string(AppendTimestamp(nil, tc))
		back, err := time.Parse(time.RFC3339Nano, got)
		if err != nil || !back.Equal(tc) {
			t.Errorf("AppendTimestamp(%v) = %s, which reads back as %v (%v)", tc, got, back, err)
		}
		if !strings.HasSuffix(got, "Z") {
			t.Errorf("AppendTimestamp(%v) = %s, not in UTC", tc, got)
		}
	}
}

// TestRowsEscapeWhatCOPYReadsSpecially: backslash, tab, newline and carriage return are
// escaped as COPY's text format wants; NULL is \N; columns are tab-separated.
func TestRowsEscapeWhatCOPYReadsSpecially(t *testing.T) {
	var r Rows
	n := int64(-7)
	r.Text("plain").Text("a\\b\tc\nd\re").Opt("").Num(nil).Num(&n).Bytes([]byte("x\ty")).End()
	r.Raw([]byte("2026")).End()
	want := "plain\ta\\\\b\\tc\\nd\\re\t\\N\t\\N\t-7\tx\\ty\n2026\n"
	if string(r.B) != want {
		t.Fatalf("rows = %q, want %q", r.B, want)
	}
}
