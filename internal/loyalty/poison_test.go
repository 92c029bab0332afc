package loyalty_test

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/loyalty"
)

// quarantineRow is a row of the quarantine table.
type quarantineRow struct {
	Key      string `db:"key"`
	SQLState string `db:"sqlstate"`
	Payload  string `db:"payload"`
}

func (f *fixture) quarantine(t *testing.T, consumer string) []quarantineRow {
	t.Helper()
	var rows []quarantineRow
	if err := f.db.SelectContext(f.ctx, &rows, `SELECT key, sqlstate, payload FROM quarantine WHERE consumer = $1 ORDER BY id`, consumer); err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestCreditingQuarantinesAnEventTheDatabaseRefuses(t *testing.T) {
	f := newFixture(t)
	// Written straight into the events table, past any validation at the edge: two refunds of
	// one order whose running total no bigint holds.
	f.order(t, "ev-1", "s-1", "o-1", 1_000, 0, "EUR", t0)
	f.refund(t, "ev-2", "s-9", "o-9", math.MaxInt64, t0)
	f.refund(t, "ev-3", "s-9", "o-9", math.MaxInt64, t0)
	f.order(t, "ev-4", "s-2", "o-2", 2_000, 0, "EUR", t0)
	f.credit(t, 4)
	if a, b := f.account(t, "s-1"), f.account(t, "s-2"); a.Balance != 10 || b.Balance != 20 {
		t.Fatalf("balances %d and %d, want 10 and 20: the events around the poison are credited", a.Balance, b.Balance)
	}
	q := f.quarantine(t, loyalty.CreditingConsumer)
	if len(q) != 1 || q[0].Key != "ev-3" || q[0].SQLState != "22003" {
		t.Fatalf("quarantine = %+v, want ev-3 refused with 22003 (out of range)", q)
	}
	if got := f.quarantined(t, loyalty.CreditingConsumer); got != 1 {
		t.Fatalf("xsell_quarantined_total{consumer=%q} = %v, want 1", loyalty.CreditingConsumer, got)
	}
	// The cursor went past the poison: the next order is credited, and nothing is met twice.
	f.order(t, "ev-5", "s-1", "o-3", 500, 0, "EUR", t0)
	f.credit(t, 1)
	if a := f.account(t, "s-1"); a.Balance != 15 {
		t.Fatalf("s-1 balance after a later order = %d, want 15", a.Balance)
	}
	if got := f.quarantined(t, loyalty.CreditingConsumer); got != 1 || len(f.quarantine(t, loyalty.CreditingConsumer)) != 1 {
		t.Fatalf("quarantined again: counter %v", got)
	}
	f.checkBooks(t)
}

func TestExpiryQuarantinesAnAccountTheDatabaseRefuses(t *testing.T) {
	f := newFixture(t)
	f.setProgram(t, 1, 1, 1, 0) // lots live one day
	for _, s := range []string{"s-1", "s-poison", "s-3"} {
		f.earn(t, s, 100, "k-"+s)
	}
	// A constraint added later stands for any reason the database may have to refuse one
	// account's expire entry; NOT VALID leaves the rows already there alone.
	if _, err := f.db.ExecContext(f.ctx, `ALTER TABLE loyalty_entries ADD CONSTRAINT poison
		CHECK (kind <> 'expire' OR shopper_id <> 's-poison') NOT VALID`); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(48 * time.Hour)
	n, err := f.svc.ExpireDue(f.ctx)
	if err != nil || n != 2 {
		t.Fatalf("ExpireDue = %d, %v; want the 2 other accounts' lots expired", n, err)
	}
	q := f.quarantine(t, loyalty.ExpiryConsumer)
	if len(q) != 1 || q[0].Key != "s-poison" || q[0].SQLState != "23514" {
		t.Fatalf("quarantine = %+v, want s-poison refused with 23514 (check violation)", q)
	}
	if got := f.quarantined(t, loyalty.ExpiryConsumer); got != 1 {
		t.Fatalf("xsell_quarantined_total{consumer=%q} = %v, want 1", loyalty.ExpiryConsumer, got)
	}
	// Later runs skip the quarantined account rather than failing on it again.
	if n, err := f.svc.ExpireDue(f.ctx); err != nil || n != 0 || f.quarantined(t, loyalty.ExpiryConsumer) != 1 {
		t.Fatalf("second ExpireDue = %d, %v", n, err)
	}
	// Deleting the quarantine row releases the account once the cause is gone.
	if _, err := f.db.ExecContext(f.ctx, `ALTER TABLE loyalty_entries DROP CONSTRAINT poison;
		DELETE FROM quarantine WHERE consumer = 'loyalty_expiry'`); err != nil {
		t.Fatal(err)
	}
	if n, err := f.svc.ExpireDue(f.ctx); err != nil || n != 1 {
		t.Fatalf("ExpireDue after the release = %d, %v; want s-poison's lot", n, err)
	}
	f.checkBooks(t)
}

// TestOneIdempotencyKeyTwentyTimesAtOnce sends one request twenty times at once, as a
// checkout retrying impatiently would: it is done once, and every other copy gets its answer
// replayed or is told the first is still in progress, never an error of the server.
func TestOneIdempotencyKeyTwentyTimesAtOnce(t *testing.T) {
	f := newFixture(t)
	earned := f.earn(t, "s-1", 1_000, "seed")
	ops := map[string]func() (loyalty.Outcome, error){
		"earn": func() (loyalty.Outcome, error) {
			return f.svc.Earn(f.ctx, "s-1", loyalty.EarnRequest{Points: 5, IdempotencyKey: "k-earn", Reason: "r"})
		},
		"redeem": func() (loyalty.Outcome, error) {
			return f.svc.Redeem(f.ctx, "s-1", loyalty.RedeemRequest{Points: 700, IdempotencyKey: "k-redeem"})
		},
		"reverse": func() (loyalty.Outcome, error) {
			return f.svc.Reverse(f.ctx, earned.Transaction.ID, loyalty.ReverseRequest{IdempotencyKey: "k-reverse", Points: ptr(200)})
		},
	}
	for name, op := range ops {
		start := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		done, replayed, inProgress := 0, 0, 0
		var bad []error
		for range 20 {
			wg.Go(func() {
				<-start
				out, err := op()
				mu.Lock()
				defer mu.Unlock()
				switch {
				case apperr.CodeOf(err) == apperr.RequestInProgress:
					inProgress++
				case err != nil:
					bad = append(bad, err)
				case out.Replayed:
					replayed++
				default:
					done++
				}
			})
		}
		close(start)
		wg.Wait()
		if len(bad) > 0 || done != 1 || replayed+inProgress != 19 {
			t.Fatalf("%s twenty times: %d done, %d replayed, %d in progress, errors %v; want 1 done and the rest replayed or in progress",
				name, done, replayed, inProgress, bad)
		}
		t.Logf("%s: %d replayed, %d in progress", name, replayed, inProgress)
	}
	// 1000 + 5 − 700 − 200: each done once.
	if a := f.account(t, "s-1"); a.Balance != 105 {
		t.Fatalf("balance %d, want 105", a.Balance)
	}
	f.checkBooks(t)
}
