package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/number"

	"github.com/xsell/xsell/internal/money"
	"github.com/xsell/xsell/internal/simulation"
)

// writeSummary prints what the run sent, per arm, with the effects it planted.
func writeSummary(w io.Writer, s *simulation.Summary) error {
	fmt.Fprintf(w, "simulated %s shoppers arriving over %d days (%s to %s UTC) in experiment %s, phase %d\n",
		thousands(int64(s.Shoppers)), s.Days, s.From.UTC().Format("2006-01-02 15:04"), s.To.UTC().Format("2006-01-02 15:04"),
		s.Experiment, s.Phase)
	fmt.Fprintf(w, "sent %s events (%s already stored) in %s requests (%s retried) in %s\n\n",
		thousands(s.Events), thousands(s.Duplicates), thousands(s.Requests), thousands(s.Retries), s.Elapsed.Round(100*time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	visits := visitsMatter(s)
	head := "variant\tstrategy\tplanted effect\tshoppers\t"
	if visits {
		head += "visits\toffer shown\tcapped\tbudget spent\t"
	}
	fmt.Fprintln(tw, head+"offers seen\taccepted\torders\twith target\trevenue\tdiscounts\trefunds\t")
	cur := money.Lookup(s.Currency)
	for _, a := range s.Arms {
		name, strategy := a.Variant, a.Strategy
		if name == "" {
			name, strategy = "(not in experiment)", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t", name, strategy, effect(a.Effect), thousands(a.Shoppers))
		if visits {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t", thousands(a.Visits), thousands(a.Shown), thousands(a.HeldBack-a.Exhausted), thousands(a.Exhausted))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			thousands(a.Viewed), thousands(a.Accepted), thousands(a.Orders), thousands(a.CrossSell),
			cur.Number(float64(a.Revenue)), cur.Number(float64(a.Discount)), thousands(a.Refunds))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if a := s.Annoyance; a != nil {
		fmt.Fprintf(w, "\nplanted annoyance: every offer shown to a shopper beyond their first %d changes their chance to order by %+.0f%%\n",
			a.After, 100*a.Conversion)
	}
	for _, b := range s.Budgets {
		whose := "the experiment's"
		if b.Variant != "" {
			whose = "variant " + b.Variant + "'s"
		}
		fmt.Fprintf(w, "%s %s budget ran out on day %d of %d (%s UTC); from then its answers said \"budget_exhausted\"\n",
			whose, b.Kind, b.Day, s.Days, b.At.UTC().Format("2006-01-02 15:04"))
	}
	writeBandit(w, s)
	fmt.Fprintf(w, "\ntarget products: %s; money in %s", strings.Join(s.Targets, ", "), s.Currency)
	if s.LoyaltyReady {
		fmt.Fprint(w, "; every order's loyalty points credited")
	}
	fmt.Fprintln(w)
	if s.Warning != "" {
		fmt.Fprintln(w, "warning: "+s.Warning)
	}
	return nil
}

// visitsMatter says whether the run's shoppers came more than once or had offers held back,
// when the summary shows its visits and answers by offer.
func visitsMatter(s *simulation.Summary) bool {
	for _, a := range s.Arms {
		if a.Visits > a.Shoppers || a.HeldBack > 0 {
			return true
		}
	}
	return false
}

// effect describes a planted effect, e.g. "cross-sell +20%".
func effect(e simulation.Effect) string {
	var parts []string
	for _, p := range []struct {
		name string
		v    float64
	}{{"cross-sell", e.CrossSell}, {"conversion", e.Conversion}, {"refunds", e.Refund}} {
		if p.v != 0 {
			parts = append(parts, fmt.Sprintf("%s %+.0f%%", p.name, 100*p.v))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// english formats numbers as the summary's readers expect: 50,000.
var english = message.NewPrinter(language.English)

// thousands writes n with comma separators.
func thousands(n int64) string { return english.Sprint(number.Decimal(n)) }

// writeBandit lists a bandit's updates: the weights in force after each simulated day.
func writeBandit(w io.Writer, s *simulation.Summary) {
	if len(s.Bandit) == 0 {
		return
	}
	fmt.Fprintln(w, "\nbandit: weights after each update (back-dated to the end of the simulated day)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "after day\tat (UTC)\tperiod\t")
	var keys []string
	for _, a := range s.Arms {
		if a.Variant != "" {
			keys = append(keys, a.Variant)
			fmt.Fprintf(tw, "%s\t", a.Variant)
		}
	}
	fmt.Fprintln(tw)
	for _, b := range s.Bandit {
		period := "held"
		if b.Period != nil {
			period = fmt.Sprint(*b.Period)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t", b.Day, b.At.UTC().Format("2006-01-02 15:04"), period)
		for _, k := range keys {
			fmt.Fprintf(tw, "%.1f%%\t", 100*b.Weights[k])
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	for _, b := range s.Bandit {
		if b.Note != "" {
			fmt.Fprintf(w, "after day %d: %s\n", b.Day, b.Note)
		}
	}
}
