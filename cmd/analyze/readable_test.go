package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeUnits writes a units CSV to a temporary file and returns its path.
func writeUnits(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "units.csv")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReportReadsWithoutAGlossary(t *testing.T) {
	var b strings.Builder
	b.WriteString("unit_id,variant,net_revenue,revenue,orders,refunded\n")
	// 400 units per arm. Net revenue is negative on average (refunds and offer costs): control
	// −EUR 2.00 per unit, treatment −EUR 1.00, so treatment is better by EUR 1.00 while a lift
	// over the negative control mean would read −50%. Revenue 2904 or 0 minor units (EUR 29.04
	// for half the units) with one order per buyer; one refund in control, none in treatment.
	for i := range 400 {
		fmt.Fprintf(&b, "c%d,control,%d,%d,%d,%d\n", i, -200+100*(i%5-2), 2904*(i%2), i%2, b2i(i == 9))
		fmt.Fprintf(&b, "t%d,treat,%d,%d,%d,0\n", i, -100+100*(i%5-2), 2904*(i%2), i%2)
	}
	b.WriteString("c7,treat,0,0,0,0\n") // c7 is also in treat: left out and counted
	path := writeUnits(t, b.String())
	code, out, stderr := runCLI(t, "file", "--input", path, "--currency", "EUR", "--lower-is-better", "refunded",
		"--ratio", "aov=revenue/orders", "--cap", "off")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"net_revenue (mean, primary)",
		"−EUR 2.00",
		"treat beats control on net_revenue: +EUR 1.00 [",
		"(no lift: control mean is negative, so a relative lift would have the wrong sign; read the difference)",
		"revenue (mean)",
		"EUR 14.52",
		"aov (ratio)",
		"EUR 29.04",
		"refunded (proportion, lower is better)",
		"0.251%", // 1 refund in 399 units, with its significant digits
		"Left out: 1 units seen in two variants",
		"Capping: off",
		"Money in EUR",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "−50") || strings.Contains(out, "2904.00") || strings.Contains(out, "0.00%") {
		t.Errorf("a lift over a negative mean, money in minor units or a rounded-away rate:\n%s", out)
	}
	page := filepath.Join(t.TempDir(), "r.html")
	if code, _, stderr := runCLI(t, "file", "--input", path, "--currency", "EUR", "--format", "html", "--out", page); code != 0 {
		t.Fatalf("html: %s", stderr)
	}
	html, _ := os.ReadFile(page)
	for _, want := range []string{"€14.52", "−€2.00", "&#43;€1.00", "net_revenue: effect vs control", "difference (EUR)"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("html lacks %q", want)
		}
	}
}

func TestTooFewUnitsSaySo(t *testing.T) {
	path := writeUnits(t, "variant,converted\ncontrol,0\ncontrol,0\ntreat,1\ntreat,1\n")
	code, out, _ := runCLI(t, "file", "--input", path)
	if code != 0 || !strings.Contains(out, "treat vs control on converted: too few units to test: control has 2 and treat 2; a verdict needs at least 30 in each arm") ||
		strings.Contains(out, "beats") {
		t.Errorf("0/2 vs 2/2: exit %d\n%s", code, out)
	}
	// Without the minimum, the exact test: p = 0.125, no verdict of "beats".
	code, out, _ = runCLI(t, "file", "--input", path, "--min-units", "0")
	if code != 0 || !strings.Contains(out, "no significant difference") || !strings.Contains(out, "0.125") {
		t.Errorf("0/2 vs 2/2 without a minimum: exit %d\n%s", code, out)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
