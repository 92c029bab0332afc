// Command simulate drives a running xsell server through its public HTTP API as a checkout
// would: shoppers arrive over simulated days that end now, are assigned, see and accept offers,
// order and refund, with the true effects of each strategy planted by a scenario file. It only
// parses flags and writes output; internal/simulation does the work.
//
//	simulate --scenario FILE [--server URL] [--experiment KEY] [--create] [--wait-ready 60s]
//	         [--shoppers N] [--days N] [--seed N] [--concurrency N] [--batch N]
//	         [--admin-key SECRET] [--checkout-key SECRET] [--prefix P]
//
// Progress goes to stderr (a bar with rate and ETA on a terminal, a line every few seconds
// otherwise), the summary of what was sent to stdout. Exit status 2 for usage errors, 1 for
// the rest.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/xsell/xsell/internal/simulation"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, isTerminal(os.Stderr))
	stop()
	os.Exit(code)
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, terminal bool) int {
	err := simulate(ctx, args, stdout, stderr, terminal)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case ctx.Err() != nil:
		err = errors.New("interrupted; the events sent so far are stored, and running it again sends only the rest")
	}
	fmt.Fprintln(stderr, "simulate: "+strings.Join(strings.Fields(err.Error()), " "))
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func simulate(ctx context.Context, args []string, stdout, stderr io.Writer, terminal bool) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	scenario := fs.String("scenario", "", "scenario file, YAML or JSON (required)")
	server := fs.String("server", envOr("XSELL_URL", "http://127.0.0.1:8080"), "base URL of the running server ($XSELL_URL)")
	key := fs.String("experiment", "", "experiment key (default: the scenario's experiment)")
	create := fs.Bool("create", false, "create and start the scenario's experiment first")
	waitReady := fs.Duration("wait-ready", 0, "wait this long for GET /readyz to answer 200 before starting (0: do not wait)")
	shoppers := fs.Int("shoppers", 0, "shoppers to simulate (default: the scenario's)")
	days := fs.Int("days", 0, "days the arrivals are spread over, ending now (default: the scenario's)")
	seed := fs.Uint64("seed", 0, "random seed (default: the scenario's)")
	concurrency := fs.Int("concurrency", 8, "clients sending requests at once")
	batch := fs.Int("batch", 500, "events per POST /v1/events (1..1000)")
	adminKey := fs.String("admin-key", envOr("XSELL_ADMIN_KEY", "dev-admin"), "admin API key: back-dated assignments, experiment set-up ($XSELL_ADMIN_KEY)")
	checkoutKey := fs.String("checkout-key", envOr("XSELL_CHECKOUT_KEY", "dev-checkout"), "checkout API key: events ($XSELL_CHECKOUT_KEY)")
	prefix := fs.String("prefix", "", "start of every shopper, event and order id (default: the experiment key)")
	learn := fs.Int("learn", 0, "first report the orders of this many shoppers in no experiment, over the days before the run's, and wait for the server to learn complements from them (for strategies with source complements)")
	waitLoyalty := fs.Duration("wait-loyalty", 3*time.Minute, "at the end, wait this long for the server to credit every order's points, which reports count as offer cost (0: do not wait)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, "usage of simulate:")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return err
		}
		return usagef("%v (see simulate -h)", err)
	}
	switch {
	case fs.NArg() > 0:
		return usagef("unexpected argument %q (flags start with --)", fs.Arg(0))
	case *scenario == "":
		return usagef("--scenario FILE is required")
	case *concurrency < 1 || *concurrency > 256:
		return usagef("--concurrency must be between 1 and 256, got %d", *concurrency)
	case *batch < 1 || *batch > 1000:
		return usagef("--batch must be between 1 and 1000, got %d", *batch)
	case *shoppers < 0 || *days < 0 || *learn < 0:
		return usagef("--shoppers, --days and --learn must be positive")
	}
	sc, err := simulation.LoadScenario(*scenario)
	if err != nil {
		return err
	}
	if *shoppers > 0 {
		sc.Shoppers = *shoppers
	}
	if *days > 0 {
		sc.Days = *days
	}
	if *seed != 0 {
		sc.Seed = *seed
	}
	if err := sc.Validate(); err != nil {
		return err
	}
	if *key == "" {
		*key = sc.ExperimentKey()
	}
	if *key == "" {
		return usagef("--experiment KEY is required: the scenario defines no experiment")
	}
	cfg := simulation.Config{
		BaseURL: strings.TrimRight(*server, "/"), AdminKey: *adminKey, CheckoutKey: *checkoutKey,
		Experiment: *key, Prefix: *prefix, Concurrency: *concurrency, BatchSize: *batch,
		WaitLoyalty: *waitLoyalty,
	}
	if *waitLoyalty == 0 {
		cfg.WaitLoyalty = -1
	}
	if *waitReady > 0 {
		if err := simulation.WaitReady(ctx, cfg, *waitReady); err != nil {
			return err
		}
	}
	if *learn > 0 {
		h, err := simulation.Learn(ctx, sc, cfg, *learn)
		if err != nil {
			return fmt.Errorf("learning complements: %w", err)
		}
		fmt.Fprintf(stdout, "reported %d orders of %d past shoppers; complements snapshot %d learned from %d orders: %d products have complements\n",
			h.Orders, h.Shoppers, h.Version, h.Learned, h.Products)
	}
	if *create {
		if err := simulation.CreateExperiment(ctx, sc, cfg); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created and started experiment %s\n", *key)
	}
	var prog simulation.Progress
	stopProgress := startProgress(stderr, terminal, &prog)
	sum, err := simulation.Run(ctx, sc, cfg, &prog)
	stopProgress()
	if err != nil {
		return err
	}
	return writeSummary(stdout, sum)
}
