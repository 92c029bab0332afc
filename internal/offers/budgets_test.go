package offers_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/database"
	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/offers"
)

var admin = experiments.Actor{Role: "admin", Name: "test"}

// started creates and starts an experiment with a control, a bundle (300 EUR cents off) and
// a loyalty variant (200 bonus points), after edit.
func started(t *testing.T, db *sqlx.DB, key string, edit func(d *experiments.Definition)) {
	t.Helper()
	d := experiments.Definition{Key: key, Name: key, Variants: []experiments.Variant{
		{Key: "control", Name: "C", Weight: 0.34, Strategy: experiments.Strategy{Type: experiments.StrategyNone}},
		{Key: "bundle", Name: "B", Weight: 0.33, Strategy: experiments.Strategy{Type: experiments.StrategyBundle,
			Products: []string{"sku-2"}, DiscountAmount: ptr(int64(300)), Currency: "EUR", Timing: experiments.TimingCart}},
		{Key: "points", Name: "P", Weight: 0.33, Strategy: experiments.Strategy{Type: experiments.StrategyLoyaltyPoints,
			Products: []string{"sku-2"}, BonusPoints: ptr(int64(200)), Timing: experiments.TimingCheckout}},
	}}
	if edit != nil {
		edit(&d)
	}
	st := experiments.NewStore(db, nil)
	ctx := context.Background()
	if _, err := st.Create(ctx, admin, d); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Transition(ctx, admin, key, experiments.ActionStart, nil); err != nil {
		t.Fatal(err)
	}
}

// charge runs one spend in a transaction of its own.
func charge(ctx context.Context, db *sqlx.DB, b *offers.Budgets, s offers.Spend) (offers.SpendResult, error) {
	var res offers.SpendResult
	err := database.Transact(ctx, db, nil, func(tx *database.Tx) error {
		var err error
		res, err = b.Charge(ctx, tx.Tx, s)
		return err
	})
	return res, err
}

func status(t *testing.T, db *sqlx.DB, b *offers.Budgets, key string) []experiments.BudgetStatus {
	t.Helper()
	e, err := experiments.NewStore(db, nil).Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.Status(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestConcurrentSpendsNeverOverspend: 200 strict spends at once on a budget that fits 50 —
// exactly 50 go through, every time, and the rest are refused with budget_exhausted.
func TestConcurrentSpendsNeverOverspend(t *testing.T) {
	db := dbtest.New(t)
	db.SetMaxOpenConns(32) // within the test cluster's connections, shared with other packages
	started(t, db, "race", func(d *experiments.Definition) {
		d.Variants[2].Budget = &experiments.Budget{Points: ptr(int64(50 * 100))}
	})
	b := offers.NewBudgets(db, nil)
	ctx := context.Background()
	for round := range 3 {
		if round > 0 { // start each round with the budget's room back
			if _, err := db.Exec(`UPDATE offer_budgets SET spent = 0, exhausted_at = NULL`); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		accepted, refused := 0, 0
		for i := range 200 {
			wg.Go(func() {
				_, err := charge(ctx, db, b, offers.Spend{Experiment: "race", Variant: "points", ShopperID: fmt.Sprintf("s-%d", i),
					Kind: experiments.BudgetPoints, Amount: 100, Ref: fmt.Sprintf("r%d-%d", round, i), At: time.Now(), Strict: true})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					accepted++
				case apperr.CodeOf(err) == apperr.BudgetExhausted:
					refused++
				default:
					t.Errorf("spend %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		st := status(t, db, b, "race")
		if accepted != 50 || refused != 150 || st[0].Spent != 5000 || st[0].Overspent != 0 || !st[0].Exhausted {
			t.Fatalf("round %d: %d accepted, %d refused, status %+v; want exactly 50 accepted and the budget spent, not over", round, accepted, refused, st)
		}
	}
}

// TestOrdersOverspendOnceAndCloseTheBudget: an order cannot be refused after the fact, so an
// order's discount beyond the budget is recorded as overspent, and the budget closes.
func TestOrdersOverspendOnceAndCloseTheBudget(t *testing.T) {
	db := dbtest.New(t)
	started(t, db, "orders", func(d *experiments.Definition) {
		d.Budget = &experiments.Budget{Discount: &experiments.Amount{Amount: 1000, Currency: "EUR"}}
	})
	b := offers.NewBudgets(db, nil)
	ctx := context.Background()
	// The orders happened on four days before today, as a late report or the simulator's
	// back-dated traffic sends them: the budget ran out on the third one's day.
	day := time.Now().UTC().Truncate(time.Second).Add(-10 * 24 * time.Hour)
	for i := range 4 {
		res, err := charge(ctx, db, b, offers.Spend{Experiment: "orders", Variant: "bundle", ShopperID: "s", Kind: experiments.BudgetDiscount,
			Amount: 300, Currency: "EUR", Base: 3000, Ref: fmt.Sprintf("o-%d", i), At: day.Add(time.Duration(i) * 24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		// The third leaves 100, too little for another bundle of 300: the budget closes. The
		// fourth, from a shopper shown the offer before, overspends by 200.
		if wantOver := []int64{0, 0, 0, 200}[i]; res.Over != wantOver || res.Closed != (i == 2) {
			t.Fatalf("order %d: %+v, want over %d, closed by the third", i, res, wantOver)
		}
	}
	// The same order again is a duplicate and charges nothing.
	if res, err := charge(ctx, db, b, offers.Spend{Experiment: "orders", Variant: "bundle", ShopperID: "s",
		Kind: experiments.BudgetDiscount, Amount: 300, Currency: "EUR", Base: 3000, Ref: "o-0", At: time.Now()}); err != nil || !res.Duplicate {
		t.Fatalf("a repeated order: %+v %v", res, err)
	}
	st := status(t, db, b, "orders")
	closed := day.Add(2 * 24 * time.Hour)
	if len(st) != 1 || st[0].Spent != 1200 || st[0].Left != 0 || st[0].Overspent != 200 || !st[0].Exhausted ||
		st[0].ExhaustedAt == nil || !st[0].ExhaustedAt.Equal(closed) {
		t.Fatalf("status %+v, want exhausted at %s (the third order's time)", st, closed)
	}
	var log []struct {
		Event string    `db:"event"`
		At    time.Time `db:"at"`
	}
	if err := db.Select(&log, `SELECT event, at FROM offer_budget_log WHERE experiment = 'orders' ORDER BY id`); err != nil ||
		len(log) != 1 || log[0].Event != "exhausted" || !log[0].At.Equal(closed) {
		t.Fatalf("budget log %v %v, want one exhausted at %s", log, err, closed)
	}
}

// TestRefundsGiveTheBudgetBack: a refund returns the discount's share of what was refunded,
// and a budget that gets money back below its limit opens again.
func TestRefundsGiveTheBudgetBack(t *testing.T) {
	db := dbtest.New(t)
	started(t, db, "refunds", func(d *experiments.Definition) {
		d.Variants[1].Budget = &experiments.Budget{Discount: &experiments.Amount{Amount: 600, Currency: "EUR"}}
	})
	b := offers.NewBudgets(db, nil)
	ctx := context.Background()
	for i := range 2 {
		if _, err := charge(ctx, db, b, offers.Spend{Experiment: "refunds", Variant: "bundle", ShopperID: "s", Kind: experiments.BudgetDiscount,
			Amount: 300, Currency: "EUR", Base: 3000, Ref: fmt.Sprintf("o-%d", i), At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if st := status(t, db, b, "refunds"); !st[0].Exhausted {
		t.Fatalf("spent 600 of 600: %+v", st)
	}
	give := func(ref string, amount int64) {
		t.Helper()
		err := database.Transact(ctx, db, nil, func(tx *database.Tx) error {
			return b.Return(ctx, tx.Tx, "refunds", experiments.BudgetDiscount, ref, amount)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	give("o-0", 100)
	if st := status(t, db, b, "refunds"); st[0].Spent != 500 || st[0].Left != 100 || !st[0].Exhausted {
		t.Fatalf("after 100 back (too little for a bundle of 300): %+v", st)
	}
	give("o-0", 1000) // never more than the spend: 200 more
	if st := status(t, db, b, "refunds"); st[0].Spent != 300 || st[0].Left != 300 || st[0].Exhausted {
		t.Fatalf("after the whole discount back: %+v", st)
	}
	give("unknown", 50) // nothing was charged for it
	var events []string
	if err := db.Select(&events, `SELECT event FROM offer_budget_log WHERE experiment = 'refunds' ORDER BY id`); err != nil || fmt.Sprint(events) != "[exhausted reopened]" {
		t.Fatalf("budget log %v %v", events, err)
	}
}

// TestPerShopperLimitsHoldUnderConcurrency: twenty strict spends of one shopper at once
// against a limit of three accepted offers — exactly three go through; the others are
// refused with per_shopper_limit_exceeded, and the offer closes to the shopper.
func TestPerShopperLimitsHoldUnderConcurrency(t *testing.T) {
	db := dbtest.New(t)
	db.SetMaxOpenConns(20)
	started(t, db, "limits", func(d *experiments.Definition) {
		d.Variants[2].Budget = &experiments.Budget{PerShopper: &experiments.ShopperLimit{AcceptedOffers: ptr(3), Per: experiments.PeriodMonth}}
	})
	b := offers.NewBudgets(db, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[apperr.Code]int{}
	for i := range 20 {
		wg.Go(func() {
			_, err := charge(ctx, db, b, offers.Spend{Experiment: "limits", Variant: "points", ShopperID: "greedy",
				Kind: experiments.BudgetPoints, Amount: 200, Ref: fmt.Sprintf("k-%d", i), At: time.Now(), Strict: true})
			code := apperr.Code("ok")
			if err != nil {
				code = apperr.CodeOf(err)
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes["ok"] != 3 || codes[apperr.ShopperLimit] != 17 {
		t.Fatalf("outcomes %v, want 3 accepted and 17 refused", codes)
	}
	// Another shopper is not limited by the first.
	if _, err := charge(ctx, db, b, offers.Spend{Experiment: "limits", Variant: "points", ShopperID: "other",
		Kind: experiments.BudgetPoints, Amount: 200, Ref: "other-1", At: time.Now(), Strict: true}); err != nil {
		t.Fatal(err)
	}
	var closed []string
	if err := db.Select(&closed, `SELECT shopper_id FROM offer_feed WHERE kind = 'closed' AND until > now() + interval '29 days'`); err != nil ||
		fmt.Sprint(closed) != "[greedy]" {
		t.Fatalf("closures %v %v, want the greedy shopper's offer closed for about 30 days", closed, err)
	}
}

// TestAShoppersDiscountLimitRecordsTheOrderBeyondIt: orders over a shopper's discount limit
// are recorded (they happened), the part beyond the limit as over, and the offer closes to
// the shopper until the oldest discount leaves the window.
func TestAShoppersDiscountLimitRecordsTheOrderBeyondIt(t *testing.T) {
	db := dbtest.New(t)
	started(t, db, "dlimit", func(d *experiments.Definition) {
		d.Budget = &experiments.Budget{Discount: &experiments.Amount{Amount: 1_000_000, Currency: "EUR"},
			PerShopper: &experiments.ShopperLimit{Discount: ptr(int64(500)), Per: experiments.PeriodWeek}}
	})
	b := offers.NewBudgets(db, nil)
	ctx := context.Background()
	first := time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Second)
	var over []int64
	for i := range 2 {
		res, err := charge(ctx, db, b, offers.Spend{Experiment: "dlimit", Variant: "bundle", ShopperID: "s", Kind: experiments.BudgetDiscount,
			Amount: 300, Currency: "EUR", Base: 3000, Ref: fmt.Sprintf("o-%d", i), At: first.Add(time.Duration(i) * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		over = append(over, res.Over)
	}
	if fmt.Sprint(over) != "[0 100]" {
		t.Fatalf("over by order: %v, want [0 100]", over)
	}
	var until time.Time
	if err := db.Get(&until, `SELECT until FROM offer_feed WHERE kind = 'closed' AND shopper_id = 's'`); err != nil {
		t.Fatal(err)
	}
	// 600 of 500 in the week: once the first order (300) leaves, 300 < 500.
	if want := first.Add(7 * 24 * time.Hour); !until.Equal(want) {
		t.Fatalf("closed until %s, want %s", until.UTC(), want)
	}
}

// TestABudgetAddedWhileASpendIsInFlightWaitsForIt: a spend holds its experiment's definition
// until it commits, so a budget added meanwhile cannot be passed by spends that read the
// definition without it (the spender's batches charge unbounded spends as a set). The change
// waits for the spend, then goes through.
func TestABudgetAddedWhileASpendIsInFlightWaitsForIt(t *testing.T) {
	db := dbtest.New(t)
	started(t, db, "late", nil)
	ctx := context.Background()
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // rolled back below; this only covers a failure
	if _, err := offers.NewBudgets(db, nil).Charge(ctx, tx, offers.Spend{Experiment: "late", Variant: "bundle",
		ShopperID: "s-1", Kind: experiments.BudgetDiscount, Amount: 300, Currency: "EUR", Ref: "o-1", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	change := func() error {
		return database.Transact(ctx, db, nil, func(tx *database.Tx) error {
			if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '200ms'`); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `UPDATE experiments SET budget = '{"discount": {"amount": 1000, "currency": "EUR"}}' WHERE key = 'late'`)
			return err
		})
	}
	var pqErr *pq.Error
	if err := change(); !errors.As(err, &pqErr) || pqErr.Code != "55P03" {
		t.Fatalf("a definition change during a spend: %v, want it to wait on the spend's lock (55P03 here)", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := change(); err != nil {
		t.Fatalf("the same change once the spend is over: %v", err)
	}
}

// spendRow and budgetRow are what an operator reads of offer_spends and offer_budgets.
type spendRow struct {
	Experiment, Variant, ShopperID, Kind, Ref, Currency string
	Amount, Base, Refunded, Returned, Over              int64
	At                                                  time.Time
}

type budgetRow struct {
	Experiment, Variant, Kind, Currency string
	Spent                               int64
	Closed                              bool
}

// sameCharges fails unless the spends and budgets charged in batches (db batched) are those
// charged one by one (db oneByOne), and returns the batched budgets.
func sameCharges(t *testing.T, batched, oneByOne *sqlx.DB) []budgetRow {
	t.Helper()
	state := func(db *sqlx.DB) (s []spendRow, b []budgetRow) {
		if err := db.Select(&s, `SELECT experiment, variant, shopper_id AS shopperid, kind, ref, currency, amount, base,
			refunded, returned, over, at FROM offer_spends ORDER BY experiment, ref`); err != nil {
			t.Fatal(err)
		}
		if err := db.Select(&b, `SELECT experiment, variant, kind, currency, spent, exhausted_at IS NOT NULL AS closed
			FROM offer_budgets ORDER BY experiment, variant, kind, currency`); err != nil {
			t.Fatal(err)
		}
		return s, b
	}
	gotSpends, gotBudgets := state(batched)
	wantSpends, wantBudgets := state(oneByOne)
	if !reflect.DeepEqual(gotSpends, wantSpends) {
		t.Errorf("spends charged in batches:\n%+v\none by one:\n%+v", gotSpends, wantSpends)
	}
	if !reflect.DeepEqual(gotBudgets, wantBudgets) {
		t.Errorf("budgets charged in batches:\n%+v\none by one:\n%+v", gotBudgets, wantBudgets)
	}
	return gotBudgets
}
