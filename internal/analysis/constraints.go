package analysis

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Constraint is a stretch of the window during which an offer budget was spent, so that its
// variants served the control's experience ("offer": "budget_exhausted", SPEC §2a): from
// Since the comparison of those variants is diluted towards the control.
type Constraint struct {
	// Variant is the variant whose budget was spent; empty for the experiment's own budget,
	// which constrains every variant that spends it.
	Variant string    `json:"variant,omitempty"`
	Kind    string    `json:"kind"` // discount or points
	Since   time.Time `json:"since"`
	// Until is when the budget opened again (a refund, a raised budget); nil while closed.
	Until *time.Time `json:"until,omitempty"`
}

// constraints reads from the budgets' log the stretches of [start, end) during which a budget
// of experiment was spent. A budget closed before start counts from start. The window starts
// at the phase's start, or at its first exposure when that is earlier: exposures back-dated
// to before the start (an import, the simulator's past days) are analysed, and so are the
// budgets that ran out among them.
func constraints(ctx context.Context, db sqlx.QueryerContext, experiment string, phase int, start, end time.Time) ([]Constraint, error) {
	var first sql.NullTime
	if err := sqlx.GetContext(ctx, db, &first, `SELECT min(first_seen) FROM exposures
		WHERE experiment_key = $1 AND phase = $2`, experiment, phase); err != nil {
		return nil, fmt.Errorf("reading the first exposure of %q: %w", experiment, err)
	}
	if first.Valid && first.Time.Before(start) {
		start = first.Time
	}
	var log []struct {
		Variant string    `db:"variant"`
		Kind    string    `db:"kind"`
		Event   string    `db:"event"`
		At      time.Time `db:"at"`
	}
	if err := sqlx.SelectContext(ctx, db, &log, `SELECT variant, kind, event, at FROM offer_budget_log
		WHERE experiment = $1 AND at < $2 ORDER BY id`, experiment, end); err != nil {
		return nil, fmt.Errorf("reading the budget log of %q: %w", experiment, err)
	}
	var out []Constraint
	open := map[[2]string]int{} // (variant, kind) → its constraint still open in out
	for _, e := range log {
		k := [2]string{e.Variant, e.Kind}
		i, closed := open[k]
		switch {
		case e.Event == "exhausted" && !closed:
			open[k] = len(out)
			out = append(out, Constraint{Variant: e.Variant, Kind: e.Kind, Since: e.At.UTC()})
		case e.Event == "reopened" && closed:
			at := e.At.UTC()
			out[i].Until = &at
			delete(open, k)
		}
	}
	kept := out[:0]
	for _, c := range out {
		if c.Until != nil && !c.Until.After(start) {
			continue // over before the window
		}
		if c.Since.Before(start) {
			c.Since = start.UTC()
		}
		kept = append(kept, c)
	}
	return kept, nil
}

// warning says a constraint in words, for the report's reader.
func (c Constraint) warning() string {
	whose := "the experiment's " + c.Kind + " budget"
	if c.Variant != "" {
		whose = fmt.Sprintf("variant %s's %s budget", c.Variant, c.Kind)
	}
	until := "to the end of the window"
	if c.Until != nil {
		until = "until " + c.Until.Format("2006-01-02 15:04 MST") + ", when it opened again"
	}
	return fmt.Sprintf("%s was spent from %s %s: its offers gave the control's experience (budget_exhausted), so effects after that date are diluted towards the control",
		whose, c.Since.Format("2006-01-02 15:04 MST"), until)
}
