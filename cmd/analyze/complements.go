package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/xsell/xsell/internal/complements"
)

// cmdComplements shows the complements model the servers serve, or with --evaluate replays
// the latest orders against models built on the earlier ones under a grid of thresholds.
func cmdComplements(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("complements", stdout)
	evaluate := fs.Bool("evaluate", false, "hold out the latest orders, build on the rest and report hit rate at k and coverage per setting")
	k := fs.Int("k", 3, "complements offered per product (hit rate at k)")
	holdOut := fs.Float64("holdout", 0.1, "share of the window's orders, the latest, held out for testing")
	minOrders := fs.String("min-orders", "2,3,5,10", "grid: least orders a pair must share, comma-separated")
	minLLR := fs.String("min-llr", "0,3.84,10.83", "grid: least log-likelihood ratio G², comma-separated")
	minLift := fs.String("min-lift", "", "grid: least lift, comma-separated (default: the current setting)")
	top := fs.Int("top", 20, "without --evaluate: list this many products, strongest pairs first, with their best k complements")
	format := fs.String("format", "text", "text, json or csv")
	var dbf databaseFlag
	dbf.register(fs.FlagSet)
	out := fs.String("out", "", "write to this file instead of stdout")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := checkFormat("complements", *format, "text", "json", "csv"); err != nil {
		return err
	}
	req := complements.EvalRequest{HoldOut: *holdOut, K: *k}
	var err error
	if req.MinOrders, err = parseList(*minOrders, strconv.Atoi); err != nil {
		return usagef("complements: --min-orders: %v", err)
	}
	parseFloat := func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }
	if req.MinLLR, err = parseList(*minLLR, parseFloat); err != nil {
		return usagef("complements: --min-llr: %v", err)
	}
	if req.MinLift, err = parseList(*minLift, parseFloat); err != nil {
		return usagef("complements: --min-lift: %v", err)
	}

	prog := startProgress(stderr)
	defer prog.done()
	db, closeDB, err := openDB(ctx, dbf, prog.stage)
	if err != nil {
		return err
	}
	defer closeDB()
	settings, err := complements.LoadSettings(ctx, db)
	if err != nil {
		return err
	}
	var result any
	var text func(io.Writer) error
	var table func(*csv.Writer)
	if *evaluate {
		req.Settings, req.Until = settings.Settings, time.Now()
		if err := req.Validate(); err != nil {
			return usagef("complements: %v", err)
		}
		prog.stage("replaying held-out orders")
		ev, err := complements.Evaluate(ctx, db, req)
		if err != nil {
			return err
		}
		result, text, table = ev, func(w io.Writer) error { return writeEvaluationText(w, ev) }, func(cw *csv.Writer) { writeEvaluationCSV(cw, ev) }
	} else {
		snap, err := complements.Latest(ctx, db)
		if err != nil {
			return err
		}
		st := modelStatus{Settings: settings, Snapshot: snap}
		if snap != nil {
			st.Coverage = snap.Coverage()
			m, err := complements.LoadModel(ctx, db, snap)
			if err != nil {
				return err
			}
			for _, sku := range m.Best(*top) {
				list := m.Of(sku)
				st.Best = append(st.Best, productComplements{SKU: sku, Complements: list[:min(*k, len(list))]})
			}
		}
		result, text, table = st, func(w io.Writer) error { return writeModelText(w, st) }, func(cw *csv.Writer) { writeModelCSV(cw, st) }
	}
	prog.done()
	return writeOutput(*out, stdout, *format, result, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		table(cw)
		cw.Flush()
		return cw.Error()
	}, text)
}

// modelStatus is the newest snapshot and the settings of the next build.
type modelStatus struct {
	Snapshot *complements.Snapshot      `json:"snapshot"`
	Coverage float64                    `json:"coverage"`
	Settings complements.StoredSettings `json:"settings"`
	// Best are the products with the strongest complements, each with its best k.
	Best []productComplements `json:"best"`
}

// productComplements is a product and its best complements.
type productComplements struct {
	SKU         string                   `json:"sku"`
	Complements []complements.Complement `json:"complements"`
}

// parseList reads comma-separated values; the empty string is no value.
func parseList[T any](s string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		v, err := parse(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", part)
		}
		out = append(out, v)
	}
	return out, nil
}

func writeSettingsLine(b io.Writer, s complements.Settings) {
	fmt.Fprintf(b, "settings: %d days of orders; pairs in ≥ %d orders with lift ≥ %v, G² ≥ %v, confidence ≥ %v; ≤ %d complements a product; orders of ≤ %d products",
		s.WindowDays, s.MinOrders, s.MinLift, s.MinLLR, s.MinConfidence, s.MaxComplements, s.MaxBasket)
	if len(s.Excluded) > 0 {
		fmt.Fprintf(b, "; excluded: %s", strings.Join(s.Excluded, ", "))
	}
	fmt.Fprintln(b)
}

func writeModelText(w io.Writer, st modelStatus) error {
	b := &strings.Builder{}
	if st.Snapshot == nil {
		b.WriteString("No complements snapshot has been built yet (the servers build one every XSELL_COMPLEMENTS_REFRESH, or: server complements build).\n")
	} else {
		s := st.Snapshot
		fmt.Fprintf(b, "snapshot %d, built %s from %d orders (%s to %s), %d left out as larger than %d products\n",
			s.Version, s.BuiltAt.Format(time.RFC3339), s.Orders, s.WindowStart.Format("2006-01-02"), s.WindowEnd.Format("2006-01-02"), s.SkippedOrders, s.Settings.MaxBasket)
		fmt.Fprintf(b, "%d of %d products have complements (coverage %.1f%%); %d complements in all; built in %d ms\n",
			s.Products, s.Catalog, 100*st.Coverage, s.Pairs, s.BuildMillis)
	}
	if len(st.Best) > 0 {
		b.WriteString("\nstrongest first: product → its best complements (G², lift, orders together)\n")
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		for _, p := range st.Best {
			fmt.Fprintf(tw, "%s\t→", p.SKU)
			for i, c := range p.Complements {
				sep := " "
				if i > 0 {
					sep = ", "
				}
				fmt.Fprintf(tw, "%s%s (%.1f, %.2f, %d)", sep, c.SKU, c.Score, c.Lift, c.Orders)
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
		b.WriteString("\n")
	}
	b.WriteString("next build's ")
	writeSettingsLine(b, st.Settings.Settings)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeModelCSV(cw *csv.Writer, st modelStatus) {
	cw.Write([]string{"version", "built_at", "orders", "skipped_orders", "catalog", "products", "coverage", "pairs", "build_ms"})
	if s := st.Snapshot; s != nil {
		cw.Write([]string{strconv.FormatInt(s.Version, 10), s.BuiltAt.Format(time.RFC3339), strconv.FormatInt(s.Orders, 10),
			strconv.FormatInt(s.SkippedOrders, 10), strconv.Itoa(s.Catalog), strconv.Itoa(s.Products), ftoa(st.Coverage),
			strconv.FormatInt(s.Pairs, 10), strconv.Itoa(s.BuildMillis)})
	}
}

func writeEvaluationText(w io.Writer, ev *complements.Evaluation) error {
	b := &strings.Builder{}
	if ev.TrainOrders == 0 {
		fmt.Fprintf(b, "No orders between %s and %s: nothing to learn from or to test on.\n", ev.WindowStart.Format("2006-01-02"), ev.WindowEnd.Format("2006-01-02"))
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(b, "learned from %d orders placed %s to %s; tested on the %d later orders of two or more products (%d products on a page: the trials)\n",
		ev.TrainOrders, ev.WindowStart.Format("2006-01-02 15:04"), ev.Split.Format("2006-01-02 15:04"), ev.TestOrders, ev.Trials)
	fmt.Fprintf(b, "a trial hits when one of the product's %d complements is among the order's other products\n", ev.K)
	writeSettingsLine(b, ev.Settings)
	fmt.Fprintf(b, "baseline — offering the %d best sellers: hit rate %.1f%%\n\n", ev.K, 100*ev.Popularity)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\tmin orders\tmin G²\tmin lift\tproducts\tcoverage\ttrials covered\thit rate@%d\thit rate@%d covered\t\n", ev.K, ev.K)
	for _, r := range ev.Rows {
		mark := ""
		if r.Current {
			mark = "current →"
		}
		fmt.Fprintf(tw, "%s\t%d\t%v\t%v\t%d\t%.1f%%\t%.1f%%\t%.1f%%\t%.1f%%\t\n", mark, r.MinOrders, r.MinLLR, r.MinLift, r.Products,
			100*r.Coverage, 100*r.CoveredTrials, 100*r.HitRate, 100*r.HitRateCovered)
	}
	tw.Flush()
	b.WriteString("\ncoverage: share of the products bought in the training orders that have a complement.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeEvaluationCSV(cw *csv.Writer, ev *complements.Evaluation) {
	cw.Write([]string{"current", "min_orders", "min_llr", "min_lift", "min_confidence", "k", "train_orders", "test_orders", "trials",
		"catalog", "products", "coverage", "covered_trials", "hit_rate", "hit_rate_covered", "popularity_hit_rate"})
	for _, r := range ev.Rows {
		cw.Write([]string{strconv.FormatBool(r.Current), strconv.Itoa(r.MinOrders), ftoa(r.MinLLR), ftoa(r.MinLift), ftoa(r.MinConfidence),
			strconv.Itoa(ev.K), strconv.FormatInt(ev.TrainOrders, 10), strconv.FormatInt(ev.TestOrders, 10), strconv.FormatInt(ev.Trials, 10),
			strconv.Itoa(ev.Catalog), strconv.Itoa(r.Products), ftoa(r.Coverage), ftoa(r.CoveredTrials), ftoa(r.HitRate),
			ftoa(r.HitRateCovered), ftoa(ev.Popularity)})
	}
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
