package targeting

import "testing"

// Expected strings are what GrowthBook's paddedVersionString returns.
func TestPaddedVersion(t *testing.T) {
	cases := []struct {
		in   any
		want string
	}{
		{"1.2.3", "    1-    2-    3-~"},
		{"v1.2.3-rc.1+build.5", "    1-    2-    3-rc-    1"},
		{"10.0.123456", "   10-    0-123456-~"},
		{nil, "    0"},
		{"", "    0"},
		{2.5, "    2-    5"},
	}
	for _, c := range cases {
		if got := paddedVersion(c.in); got != c.want {
			t.Errorf("paddedVersionString(%v) = %q; want %q", c.in, got, c.want)
		}
	}
}
