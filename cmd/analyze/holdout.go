package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/report"
)

// cmdHoldout compares the program holdout with everyone else (SPEC §2b): a report like
// `analyze report`'s, the holdout as control.
func cmdHoldout(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("holdout", stdout)
	generation := fs.Int("generation", 0, "generation of the holdout to analyse (default: the current one; each change of percent or seed starts one)")
	since := fs.String("since", "", "only shoppers first exposed this long before the generation's end or now (e.g. 30d; default: the generation's whole life)")
	window := fs.String("window", "", "count a shopper's events only this long after first exposure (e.g. 7d, 36h; default: to the end)")
	format := fs.String("format", "text", "text, json, csv or html")
	out := fs.String("out", "", "write the report to this file instead of stdout")
	segment := fs.String("segment", "", "break results down by this attribute recorded at assignment (e.g. device)")
	cuped := fs.Bool("cuped", false, "reduce variance with revenue in the 14 days before first exposure (θ pooled)")
	sequential := fs.Bool("sequential", false, "always-valid confidence sequences, safe to look at daily")
	showSQL := fs.Bool("sql", false, "print the aggregate query with its arguments filled in and exit")
	var dbf databaseFlag
	dbf.register(fs.FlagSet)
	var sf statsFlags
	sf.register(fs.FlagSet)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *generation < 0 {
		return usagef("holdout: --generation must be 1 or more, got %d", *generation)
	}
	if err := checkFormat("holdout", *format, "text", "json", "csv", "html"); err != nil {
		return err
	}
	opts, err := sf.options("holdout")
	if err != nil {
		return err
	}
	opts.CUPED, opts.Sequential = *cuped, *sequential
	req := analysis.HoldoutRequest{Generation: *generation, Segment: *segment, Options: opts}
	if req.Since, err = parseDuration("since", *since); err != nil {
		return err
	}
	if req.Window, err = parseDuration("window", *window); err != nil {
		return err
	}
	return runReport(ctx, dbf, *showSQL, *format, *out, stdout, stderr, reportRun{
		prepare: func(ctx context.Context, src *analysis.Source) (*analysis.Prepared, error) {
			return src.PrepareHoldout(ctx, req)
		},
		report: func(ctx context.Context, src *analysis.Source, stage func(string)) (*analysis.Report, error) {
			req.Stage = stage
			return src.HoldoutReport(ctx, req)
		},
	})
}

// writeHoldoutHeader names the holdout and says what the figures below mean.
func writeHoldoutHeader(b *strings.Builder, rep *analysis.Report) {
	h := rep.Holdout
	fmt.Fprintf(b, "Programme holdout, generation %d: %g%% of shoppers (seed %q) kept from every cross-sell offer\n", h.Generation, h.Percent, h.Seed)
	b.WriteString(h.Meaning + "\n")
	targets := "none (no experiment names target products)"
	if len(h.TargetProducts) > 0 {
		targets = strings.Join(h.TargetProducts, ", ")
	}
	fmt.Fprintf(b, "Cross-sell: an order holding a target product of any experiment of the window: %s\n", targets)
}

// writeHoldoutTotals writes each per-shopper difference scaled to the shoppers who had the
// programme.
func writeHoldoutTotals(b *strings.Builder, rep *analysis.Report) {
	if rep.Holdout == nil || len(rep.Holdout.Totals) == 0 {
		return
	}
	fmt.Fprintf(b, "\nThe programme in all: the difference per shopper times the %d shoppers who had it\n", rep.Holdout.Totals[0].Shoppers)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "metric\ttotal\t%s CI\t\n", report.Level(rep.Alpha))
	for _, t := range rep.Holdout.Totals {
		f := report.HoldoutTotalFormat(rep, t)
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", t.Metric, f(t.Total), report.Interval(t.TotalCI, f))
	}
	tw.Flush()
}
