package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/report"
)

// writeBanditText lists a bandit's periods: when each began, the weights it assigned with and
// the shoppers each arm got, and each period's own SRM check.
func writeBanditText(b *strings.Builder, rep *analysis.Report) {
	sec := rep.Bandit
	if sec == nil {
		return
	}
	metric := ""
	if sec.Metric != "" {
		metric = " on " + sec.Metric
	}
	fmt.Fprintf(b, "\nBandit%s: %d periods of constant weights; every comparison below is made within the periods and combined (%s)\n",
		metric, len(sec.Periods), sec.Estimator)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "period\tfrom\t")
	for _, v := range rep.Variants {
		fmt.Fprintf(tw, "%s\t", v.Key)
	}
	fmt.Fprintln(tw, "SRM p\t")
	for _, p := range sec.Periods {
		fmt.Fprintf(tw, "%d\t%s\t", p.Period, p.Start.Format("2006-01-02 15:04:05"))
		for _, v := range rep.Variants {
			fmt.Fprintf(tw, "%.1f%% (%d)\t", 100*p.Weights[v.Key], p.Units[v.Key])
		}
		srm := "—"
		if p.SRM.PValue != nil {
			srm = report.P(*p.SRM.PValue)
			if p.SRM.Mismatch {
				srm += " MISMATCH"
			}
		}
		fmt.Fprintf(tw, "%s\t\n", srm)
	}
	tw.Flush()
	b.WriteString("(weight in force, and shoppers first exposed in the period)\n")
}
