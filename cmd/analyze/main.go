// Command analyze reports on experiments and on the program holdout, analyses exported unit
// data, plans sample sizes and mines product affinity; it only parses flags and writes output, internal/analysis does the work.
//
//	analyze report   --experiment KEY [--phase N] [--format text|json|csv|html] [--out FILE]
//	                 [--alpha A] [--correction holm|bh|none] [--segment ATTRIBUTE] [--cuped]
//	                 [--sequential] [--window DURATION] [--cap Q|off] [--min-units N]
//	                 [--from rollups|events] [--sql] [--database-url URL]
//	analyze holdout  [--generation N] [--since DURATION] [--window DURATION] [--format text|json|csv|html]
//	                 [--out FILE] [--alpha A] [--correction holm|bh|none] [--segment ATTRIBUTE] [--cuped]
//	                 [--sequential] [--cap Q|off] [--min-units N] [--sql] [--database-url URL]
//	analyze file     --input units.csv [--control KEY] [--weights k=w,...] [--lower-is-better COLS]
//	                 [--ratio name=num/den]... [--currency CODE] [--money COLS] [--alpha A]
//	                 [--correction C] [--cap Q|off] [--min-units N] [--format F] [--out FILE]
//	analyze plan     --baseline B --mde M [--relative] [--stddev S] [--stddev-treatment S]
//	                 [--multiplicative] [--variants K] [--metrics N] [--segments N]
//	                 [--correction C] [--sequential] [--alpha A] [--power P] [--daily-traffic N]
//	analyze affinity [--since DURATION] [--min-orders N] [--top K] [--format text|json|csv] [--database-url URL]
//	analyze complements [--evaluate [--k K] [--holdout SHARE] [--min-orders LIST] [--min-llr LIST]
//	                 [--min-lift LIST]] [--format text|json|csv] [--database-url URL]
//	analyze list     [--format text|json|csv] [--database-url URL]
//
// The database is --database-url, else $ANALYZE_DATABASE_URL, else $DATABASE_URL, or with
// none of them the private cluster `make run` uses (XSELL_DATA_DIR, default .xsell), started
// for the run and stopped afterwards if analyze started it. analyze only reads, so it can be
// pointed at a read-only hot standby. Errors are one line on stderr; exit status 2 for usage
// errors, 1 for the rest.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/report"
	"github.com/xsell/xsell/internal/stats"
)

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

const topUsage = `analyze — experiment analysis for xsell

usage:
  analyze report   --experiment KEY [--phase N] [--format text|json|csv|html] [--out FILE]
                   [--alpha A] [--correction holm|bh|none] [--segment ATTRIBUTE]
                   [--cuped] [--sequential] [--window DURATION] [--cap 0.999|off] [--min-units N]
                   [--from rollups|events] [--sql] [--database-url URL]
  analyze holdout  [--generation N] [--since 30d] [--window DURATION] [--format text|json|csv|html]
                   [--out FILE] [--alpha A] [--correction holm|bh|none] [--segment ATTRIBUTE]
                   [--cuped] [--sequential] [--cap 0.999|off] [--min-units N] [--sql]
                   [--database-url URL]
                   the program holdout against everyone else: the whole programme's
                   incremental effect per shopper (revenue, net revenue, cross-sell, cost)
  analyze file     --input units.csv [--control KEY] [--weights control=0.5,b=0.5]
                   [--lower-is-better COLS] [--ratio name=num/den]... [--currency CODE]
                   [--money COLS] [--alpha A] [--correction holm|bh|none] [--cap 0.999|off]
                   [--min-units N] [--format ...] [--out FILE]
  analyze plan     --baseline B --mde M [--relative] [--stddev S] [--stddev-treatment S]
                   [--multiplicative] [--variants K] [--metrics N] [--segments N]
                   [--correction holm|bh|none] [--sequential] [--alpha A] [--power P]
                   [--daily-traffic N] [--format text|json]
  analyze affinity [--since DURATION] [--min-orders N] [--top K] [--format text|json|csv]
                   [--database-url URL]
  analyze complements [--evaluate [--k K] [--holdout SHARE] [--min-orders 2,3,5,10]
                   [--min-llr 0,3.84,10.83] [--min-lift LIST]] [--format text|json|csv]
                   [--database-url URL]
  analyze list     [--format text|json|csv] [--database-url URL]

Run "analyze COMMAND -h" for a command's flags. The database is --database-url, else
$ANALYZE_DATABASE_URL, else $DATABASE_URL, or with none the private cluster that "make run"
uses (XSELL_DATA_DIR, default .xsell). analyze only reads: point it at a hot standby.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	}
	msg := strings.Join(strings.Fields(err.Error()), " ") // one line, whatever the cause wrote
	fmt.Fprintln(stderr, "analyze: "+msg)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return usagef("a command is needed: report, holdout, file, plan, affinity, complements or list")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "report":
		return cmdReport(ctx, rest, stdout, stderr)
	case "holdout":
		return cmdHoldout(ctx, rest, stdout, stderr)
	case "file":
		return cmdFile(rest, stdout, stderr)
	case "plan":
		return cmdPlan(rest, stdout, stderr)
	case "affinity":
		return cmdAffinity(ctx, rest, stdout, stderr)
	case "complements":
		return cmdComplements(ctx, rest, stdout, stderr)
	case "list":
		return cmdList(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, topUsage)
		return nil
	}
	return usagef("unknown command %q (want report, holdout, file, plan, affinity, complements or list)", cmd)
}

// cmdFlags is a command's flag set and where its -h help goes.
type cmdFlags struct {
	*flag.FlagSet
	help io.Writer
}

// newFlags returns a flag set whose errors come back as one-line usage errors instead of a
// printed usage dump; -h prints the command's flags.
func newFlags(name string, stdout io.Writer) *cmdFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	// The flag package calls Usage on every parse error; parse prints help only for -h.
	fs.Usage = func() {}
	return &cmdFlags{FlagSet: fs, help: stdout}
}

// parse parses flags, turning a bad flag into a usage error and refusing stray arguments.
func parse(fs *cmdFlags, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			w := fs.help
			fmt.Fprintf(w, "usage of analyze %s:\n", fs.Name())
			fs.SetOutput(w)
			fs.PrintDefaults()
			return err
		}
		return usagef("%s: %v (see analyze %s -h)", fs.Name(), err, fs.Name())
	}
	if fs.NArg() > 0 {
		return usagef("%s: unexpected argument %q (flags start with --)", fs.Name(), fs.Arg(0))
	}
	return nil
}

// checkFormat refuses a format the command cannot write.
func checkFormat(cmd, format string, allowed ...string) error {
	for _, a := range allowed {
		if format == a {
			return nil
		}
	}
	return usagef("%s: --format must be one of %s, got %q", cmd, strings.Join(allowed, ", "), format)
}

// parseDuration accepts Go durations and whole days such as 14d.
func parseDuration(flagName, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err == nil && n > 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	return 0, usagef("--%s must be a positive duration such as 36h or 14d, got %q", flagName, s)
}

// statsFlags are the method flags report and file share.
type statsFlags struct {
	alpha      float64
	correction string
	cap        string
	minUnits   int
}

func (sf *statsFlags) register(fs *flag.FlagSet) {
	fs.Float64Var(&sf.alpha, "alpha", 0.05, "two-sided significance level")
	fs.StringVar(&sf.correction, "correction", "holm", "multiple-testing correction: holm, bh or none")
	fs.StringVar(&sf.cap, "cap", strconv.FormatFloat(analysis.DefaultCap, 'f', -1, 64),
		"cap revenue-like means at this quantile of all units (and 1 minus it below), or off")
	fs.IntVar(&sf.minUnits, "min-units", analysis.DefaultMinUnits, "fewest units in each arm for a verdict (0: no minimum)")
}

func (sf *statsFlags) options(cmd string) (analysis.Options, error) {
	c, err := stats.ParseCorrection(sf.correction)
	if err != nil {
		return analysis.Options{}, usagef("%s: --correction must be holm, bh or none, got %q", cmd, sf.correction)
	}
	o := analysis.Options{Alpha: sf.alpha, Correction: c, MinUnits: sf.minUnits}
	if sf.cap != "off" {
		q, err := strconv.ParseFloat(sf.cap, 64)
		if err != nil || !(q > 0.5 && q < 1) {
			return o, usagef("%s: --cap must be a quantile between 0.5 and 1 such as 0.999, or off, got %q", cmd, sf.cap)
		}
		o.Cap = q
	}
	if err := o.Validate(); err != nil {
		return o, usagef("%s: --%v", cmd, err)
	}
	return o, nil
}

// listFlag is a flag that takes comma-separated names and may be repeated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l = append(*l, part)
		}
	}
	return nil
}

// ratioFlag collects --ratio name=num/den, repeatable.
type ratioFlag []analysis.RatioSpec

func (r *ratioFlag) String() string { return fmt.Sprint(*r) }

func (r *ratioFlag) Set(s string) error {
	spec, err := analysis.ParseRatio(s)
	if err != nil {
		return err
	}
	*r = append(*r, spec)
	return nil
}

// output opens --out (or stdout) and returns a close function that reports write errors.
func output(path string, stdout io.Writer) (io.Writer, func() error, error) {
	if path == "" || path == "-" {
		return stdout, func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot write %s: %v", path, err)
	}
	return f, f.Close, nil
}

// writeOutput writes v to --out (or stdout) in format: JSON, or by the command's own CSV or
// text writer; a failed close is an error.
func writeOutput(path string, stdout io.Writer, format string, v any, csvOut, textOut func(io.Writer) error) error {
	w, closeOut, err := output(path, stdout)
	if err != nil {
		return err
	}
	switch format {
	case "json":
		err = writeJSON(w, v)
	case "csv":
		err = csvOut(w)
	default:
		err = textOut(w)
	}
	if cerr := closeOut(); err == nil {
		err = cerr
	}
	return err
}

func cmdReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("report", stdout)
	key := fs.String("experiment", "", "experiment key (required)")
	phase := fs.Int("phase", 0, "phase to analyse (default: the current one)")
	format := fs.String("format", "text", "text, json, csv or html")
	out := fs.String("out", "", "write the report to this file instead of stdout")
	segment := fs.String("segment", "", "break results down by this attribute recorded at assignment (e.g. device)")
	cuped := fs.Bool("cuped", false, "reduce variance with revenue in the 14 days before first exposure (θ pooled)")
	sequential := fs.Bool("sequential", false, "always-valid confidence sequences, safe to look at daily")
	window := fs.String("window", "", "count a shopper's events only this long after first exposure (e.g. 7d, 36h)")
	showSQL := fs.Bool("sql", false, "print the aggregate query with its arguments filled in and exit (for benchmarks)")
	var dbf databaseFlag
	dbf.register(fs.FlagSet)
	from := fs.String("from", "rollups", "rollups (read the rollup job's figures where they are up to date) or events (compute every figure from events)")
	var sf statsFlags
	sf.register(fs.FlagSet)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *key == "" {
		return usagef("report: --experiment KEY is required")
	}
	if *phase < 0 {
		return usagef("report: --phase must be 1 or more, got %d", *phase)
	}
	if err := checkFormat("report", *format, "text", "json", "csv", "html"); err != nil {
		return err
	}
	opts, err := sf.options("report")
	if err != nil {
		return err
	}
	opts.CUPED, opts.Sequential = *cuped, *sequential
	win, err := parseDuration("window", *window)
	if err != nil {
		return err
	}
	if *from != "rollups" && *from != "events" {
		return usagef("report: --from must be rollups or events, got %q", *from)
	}
	req := analysis.ReportRequest{Experiment: *key, Phase: *phase, Segment: *segment, Window: win, Options: opts, FromEvents: *from == "events"}
	return runReport(ctx, dbf, *showSQL, *format, *out, stdout, stderr, reportRun{
		prepare: func(ctx context.Context, src *analysis.Source) (*analysis.Prepared, error) {
			return src.Prepare(ctx, req)
		},
		report: func(ctx context.Context, src *analysis.Source, stage func(string)) (*analysis.Report, error) {
			req.Stage = stage
			return src.Report(ctx, req)
		},
	})
}

// reportRun is what a command that reports from the database runs: the statement it would
// print for --sql, or the report.
type reportRun struct {
	prepare func(ctx context.Context, src *analysis.Source) (*analysis.Prepared, error)
	report  func(ctx context.Context, src *analysis.Source, stage func(string)) (*analysis.Report, error)
}

// runReport opens the database and prints r's statement with its arguments filled in
// (showSQL) or writes r's report in format to out.
func runReport(ctx context.Context, dbf databaseFlag, showSQL bool, format, out string, stdout, stderr io.Writer, r reportRun) error {
	prog := startProgress(stderr)
	defer prog.done()
	src, closeDB, err := openSource(ctx, dbf, prog.stage)
	if err != nil {
		return err
	}
	defer closeDB()
	if showSQL {
		p, err := r.prepare(ctx, src)
		if err != nil {
			return err
		}
		q, err := p.InlineSQL()
		if err != nil {
			return err
		}
		prog.done()
		_, err = fmt.Fprintln(stdout, strings.TrimSpace(q)+";")
		return err
	}
	rep, err := r.report(ctx, src, prog.stage)
	if err != nil {
		return err
	}
	prog.done()
	return writeReport(rep, format, out, stdout)
}

// writeReport writes a report in the chosen format to --out or stdout.
func writeReport(rep *analysis.Report, format, out string, stdout io.Writer) error {
	w, closeOut, err := output(out, stdout)
	if err != nil {
		return err
	}
	switch format {
	case "json":
		err = writeJSON(w, rep)
	case "csv":
		err = writeReportCSV(w, rep)
	case "html":
		err = report.WritePage(w, rep)
	default:
		err = writeReportText(w, rep)
	}
	if cerr := closeOut(); err == nil && cerr != nil {
		err = fmt.Errorf("writing %s: %v", out, cerr)
	}
	return err
}

func cmdFile(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("file", stdout)
	input := fs.String("input", "", "CSV with a variant column, an optional unit_id column and numeric metric columns (required)")
	control := fs.String("control", "", `control variant (default: "control" if present, else the first in the file)`)
	weights := fs.String("weights", "", "expected traffic shares for the SRM check, e.g. control=0.5,b=0.5 (default: equal)")
	format := fs.String("format", "text", "text, json, csv or html")
	out := fs.String("out", "", "write the report to this file instead of stdout")
	var lower, moneyCols listFlag
	var ratios ratioFlag
	fs.Var(&lower, "lower-is-better", "metric columns (or ratio names) where lower is better, comma-separated")
	fs.Var(&ratios, "ratio", "a ratio metric Σnum/Σden from two columns, as name=num/den (repeatable)")
	currency := fs.String("currency", "", "ISO 4217 code whose minor units the money columns hold, e.g. EUR")
	fs.Var(&moneyCols, "money", "money columns, comma-separated (default with --currency: revenue, offer_cost, net_revenue, aov)")
	var sf statsFlags
	sf.register(fs.FlagSet)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *input == "" {
		return usagef("file: --input FILE is required")
	}
	if err := checkFormat("file", *format, "text", "json", "csv", "html"); err != nil {
		return err
	}
	opts, err := sf.options("file")
	if err != nil {
		return err
	}
	fo := analysis.FileOptions{Control: *control, Options: opts, LowerIsBetter: lower, Ratios: ratios, Currency: *currency, Money: moneyCols}
	if *weights != "" {
		if fo.Weights, err = analysis.ParseWeights(*weights); err != nil {
			return usagef("file: --weights: %v", err)
		}
	}
	f, err := os.Open(*input)
	if err != nil {
		return fmt.Errorf("cannot read %s: %v", *input, errors.Unwrap(err))
	}
	defer f.Close()
	rep, err := analysis.FileReport(f, *input, fo)
	if err != nil {
		return err
	}
	return writeReport(rep, *format, *out, stdout)
}

func cmdPlan(args []string, stdout, _ io.Writer) error {
	fs := newFlags("plan", stdout)
	var req analysis.PlanRequest
	fs.Float64Var(&req.Baseline, "baseline", 0, "control conversion rate (or control mean with --stddev) (required)")
	fs.Float64Var(&req.MDE, "mde", 0, "minimum detectable effect: absolute, or relative with --relative (required)")
	fs.BoolVar(&req.Relative, "relative", false, "the MDE is relative to the baseline (0.1 = +10%)")
	fs.Float64Var(&req.StdDev, "stddev", 0, "per-unit standard deviation, for a mean metric")
	fs.Float64Var(&req.StdDevTreatment, "stddev-treatment", 0, "per-unit standard deviation in treatment when it differs from control")
	fs.BoolVar(&req.Multiplicative, "multiplicative", false, "the effect scales each value (e.g. +5% per basket), so treatment's spread grows with it")
	fs.IntVar(&req.Variants, "variants", 2, "arms including control")
	fs.IntVar(&req.Metrics, "metrics", len(analysis.StandardMetrics), "metrics the report tests: 7 for analyze report, the metric columns and ratios for analyze file")
	fs.IntVar(&req.Segments, "segments", 0, "values of the --segment attribute the report will break results down by")
	correction := fs.String("correction", "holm", "the report's multiple-testing correction: holm, bh or none")
	fs.BoolVar(&req.Sequential, "sequential", false, "plan for reading the report with --sequential (confidence sequences)")
	fs.Float64Var(&req.Alpha, "alpha", 0.05, "two-sided significance level of the whole report")
	fs.Float64Var(&req.Power, "power", 0.8, "chance of detecting an effect of the MDE's size")
	fs.Float64Var(&req.DailyTraffic, "daily-traffic", 0, "eligible shoppers a day, for the days needed")
	format := fs.String("format", "text", "text or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	seen := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { seen[f.Name] = true })
	if !seen["baseline"] || !seen["mde"] {
		return usagef("plan: --baseline and --mde are required")
	}
	if err := checkFormat("plan", *format, "text", "json"); err != nil {
		return err
	}
	c, err := stats.ParseCorrection(*correction)
	if err != nil {
		return usagef("plan: --correction must be holm, bh or none, got %q", *correction)
	}
	req.Correction = c
	if req.Metrics < 1 {
		return usagef("plan: --metrics must be at least 1, got %d", req.Metrics)
	}
	res, err := analysis.Plan(req)
	if err != nil {
		return usagef("plan: %v", err)
	}
	if *format == "json" {
		return writeJSON(stdout, res)
	}
	return writePlanText(stdout, res)
}

func cmdAffinity(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("affinity", stdout)
	since := fs.String("since", "90d", "only orders placed this long ago or later (e.g. 30d, 720h; 0 for all)")
	minOrders := fs.Int("min-orders", 5, "a pair must be bought together in at least this many orders")
	top := fs.Int("top", 10, "pairs to list, and complements per product")
	format := fs.String("format", "text", "text, json or csv")
	out := fs.String("out", "", "write to this file instead of stdout")
	var dbf databaseFlag
	dbf.register(fs.FlagSet)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := checkFormat("affinity", *format, "text", "json", "csv"); err != nil {
		return err
	}
	req := analysis.AffinityRequest{MinOrders: *minOrders, Top: *top}
	if *since != "0" {
		d, err := parseDuration("since", *since)
		if err != nil {
			return err
		}
		req.Since = d
	}
	if req.MinOrders < 1 || req.Top < 1 {
		return usagef("affinity: --min-orders and --top must be at least 1")
	}
	prog := startProgress(stderr)
	defer prog.done()
	src, closeDB, err := openSource(ctx, dbf, prog.stage)
	if err != nil {
		return err
	}
	defer closeDB()
	prog.stage("counting products bought together")
	aff, err := src.Affinity(ctx, req)
	if err != nil {
		return err
	}
	prog.done()
	return writeOutput(*out, stdout, *format, aff,
		func(w io.Writer) error { return writeAffinityCSV(w, aff) }, func(w io.Writer) error { return writeAffinityText(w, aff) })
}

func cmdList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("list", stdout)
	format := fs.String("format", "text", "text, json or csv")
	var dbf databaseFlag
	dbf.register(fs.FlagSet)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := checkFormat("list", *format, "text", "json", "csv"); err != nil {
		return err
	}
	prog := startProgress(stderr)
	defer prog.done()
	src, closeDB, err := openSource(ctx, dbf, prog.stage)
	if err != nil {
		return err
	}
	defer closeDB()
	items, err := src.List(ctx)
	if err != nil {
		return err
	}
	prog.done()
	switch *format {
	case "json":
		return writeJSON(stdout, items)
	case "csv":
		return writeListCSV(stdout, items)
	}
	return writeListText(stdout, items)
}
