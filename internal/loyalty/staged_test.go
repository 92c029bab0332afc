package loyalty_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/xsell/xsell/internal/exposures"
	"github.com/xsell/xsell/internal/loyalty"
)

// stage writes the shopper's exposure to key's variant in phase 1 into exposure_log, as the
// exposure recorder's COPY stages it, not merged into exposures yet.
func (f *fixture) stage(t *testing.T, key, shopper, variant string) {
	t.Helper()
	if _, err := f.db.ExecContext(f.ctx, `INSERT INTO exposure_log (shopper_id, at, attributes, experiments, phases, variants)
		VALUES ($1, $2, '{}', ARRAY[$3], '{1}', ARRAY[$4])`, shopper, f.clock.Now(), key, variant); err != nil {
		t.Fatal(err)
	}
}

// merge runs the exposure recorder's merge of everything staged: a Run whose context has
// already ended only drains, and merges what is staged before it returns.
func (f *fixture) merge(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	if err := exposures.New(f.db, exposures.Config{QueueSize: 1, SeenSize: 1}, nil, nil).Run(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.count(t, `SELECT count(*) FROM exposure_log`); n != 0 {
		t.Fatalf("%d exposure rows still staged after the merge", n)
	}
}

// TestAStagedExposureEarnsTheBonusOnce: the recorder merges exposures in the background, and
// under load trails assignment by a minute or more, so an order may be credited while its
// shopper's exposure is still staged. It earns the bonus then, once; when the merge has run,
// nothing is credited again (the event is not read twice, and the same order id again earns
// nothing), and a later order earns from the merged exposure. A shopper seen in two variants
// — one merged, one staged, then merged and flagged — earns no bonus, as analysis leaves them
// out. Both ways of
// crediting a batch (set-based, and event by event) give the same.
func TestAStagedExposureEarnsTheBonusOnce(t *testing.T) {
	for _, eventByEvent := range []bool{false, true} {
		t.Run(fmt.Sprintf("event by event %v", eventByEvent), func(t *testing.T) {
			f := newFixture(t)
			if eventByEvent {
				loyalty.CreditEventByEvent(f.svc)
			}
			f.experiment(t, "points-exp", "running", pointsVariants, map[string]string{"s-split": "control"})
			f.stage(t, "points-exp", "s-1", "points50")
			f.stage(t, "points-exp", "s-split", "points50")
			f.order(t, "ev-1", "s-1", "o-1", 10_000, 0, "EUR", t0, "sku-cond")
			f.order(t, "ev-2", "s-split", "o-2", 10_000, 0, "EUR", t0, "sku-cond")
			f.credit(t, 2)
			if n := f.count(t, `SELECT count(*) FROM exposures WHERE shopper_id = 's-1'`); n != 0 {
				t.Fatalf("s-1 has %d merged exposures before the merge ran", n)
			}
			entries := func(order string) string {
				var out []string
				for _, e := range f.orderEntries(t, order) {
					s := fmt.Sprint(e.Kind, " ", e.Points)
					if e.Experiment != nil && e.Variant != nil {
						s += " " + *e.Experiment + " " + *e.Variant
					}
					out = append(out, s)
				}
				return fmt.Sprint(out)
			}
			if got, want := entries("o-1"), "[earn 100 earn 50 points-exp points50]"; got != want {
				t.Fatalf("o-1 with the exposure staged: %s, want %s", got, want)
			}
			if got, want := entries("o-2"), "[earn 100]"; got != want {
				t.Fatalf("o-2 of a shopper in two variants: %s, want %s", got, want)
			}

			f.merge(t)
			f.credit(t, 0)
			f.order(t, "ev-3", "s-1", "o-1", 10_000, 0, "EUR", t0, "sku-cond") // the same order again
			f.order(t, "ev-4", "s-1", "o-4", 10_000, 0, "EUR", t0, "sku-cond")
			f.order(t, "ev-5", "s-split", "o-5", 10_000, 0, "EUR", t0, "sku-cond") // merged: flagged as in two
			f.credit(t, 3)
			if got, want := entries("o-1"), "[earn 100 earn 50 points-exp points50]"; got != want {
				t.Fatalf("o-1 after the merge: %s, want %s", got, want)
			}
			if got, want := entries("o-4"), "[earn 100 earn 50 points-exp points50]"; got != want {
				t.Fatalf("a later order, the exposure merged: %s, want %s", got, want)
			}
			if a := f.account(t, "s-1"); a.Balance != 300 {
				t.Fatalf("s-1 balance = %d, want 300: two orders of 100 and one bonus each", a.Balance)
			}
			if a := f.account(t, "s-split"); a.Balance != 200 {
				t.Fatalf("s-split balance = %d, want 200: two orders, no bonus for a shopper in two variants", a.Balance)
			}
			f.checkBooks(t)
		})
	}
}
