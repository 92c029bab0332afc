package offers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/database"
	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/loyalty"
	"github.com/xsell/xsell/internal/offers"
)

// TestChargeBonusesAsOneByOne: a crediting batch's bonuses charged together leave the spends
// and budgets that charging them one after the other leaves — for experiments without a
// points bound (the two-statement path), with a budget that the batch runs past, with a
// per-shopper limit, and with bonuses already charged by an earlier batch, of unknown
// experiments and of variants an experiment lacks.
func TestChargeBonusesAsOneByOne(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 123456000, time.UTC)
	var batch []loyalty.Bonus
	for i := range 12 {
		batch = append(batch, loyalty.Bonus{Experiment: "free", Variant: "points", ShopperID: fmt.Sprintf("s%d", i%5),
			Ref: fmt.Sprintf("o%d", i), Points: int64(100 + i), At: at.Add(time.Duration(i) * time.Second)})
	}
	batch = append(batch,
		loyalty.Bonus{Experiment: "free", Variant: "nope", ShopperID: "s1", Ref: "o-nope", Points: 50, At: at},
		loyalty.Bonus{Experiment: "ghost", Variant: "points", ShopperID: "s1", Ref: "o-ghost", Points: 50, At: at},
		loyalty.Bonus{Experiment: "free", Variant: "points", ShopperID: "s1", Ref: "o-zero", Points: 0, At: at})
	bounded := make([]loyalty.Bonus, len(batch))
	for i, b := range batch {
		b.Experiment = map[string]string{"free": "capped", "ghost": "ghost"}[b.Experiment]
		bounded[i] = b
	}
	perShopper := make([]loyalty.Bonus, len(batch))
	for i, b := range batch {
		b.Experiment = map[string]string{"free": "limited", "ghost": "ghost"}[b.Experiment]
		perShopper[i] = b
	}
	earlier := []loyalty.Bonus{batch[3], bounded[3], perShopper[3]}

	setup := func(t *testing.T) (*sqlx.DB, *offers.Budgets) {
		db := dbtest.New(t)
		started(t, db, "free", nil)
		started(t, db, "capped", func(d *experiments.Definition) {
			d.Variants[2].Budget = &experiments.Budget{Points: ptr(int64(700))}
		})
		started(t, db, "limited", func(d *experiments.Definition) {
			d.Budget = &experiments.Budget{PerShopper: &experiments.ShopperLimit{AcceptedOffers: ptr(2), Per: experiments.Window("24h")}}
		})
		return db, offers.NewBudgets(db, nil)
	}
	run := func(t *testing.T, db *sqlx.DB, f func(context.Context, *sqlx.Tx) error) {
		t.Helper()
		if err := database.Transact(context.Background(), db, nil, func(tx *database.Tx) error { return f(context.Background(), tx.Tx) }); err != nil {
			t.Fatal(err)
		}
	}
	together, tb := setup(t)
	oneByOne, ob := setup(t)
	for _, db := range []struct {
		db *sqlx.DB
		b  *offers.Budgets
	}{{together, tb}, {oneByOne, ob}} {
		run(t, db.db, func(ctx context.Context, tx *sqlx.Tx) error { return db.b.ChargeBonuses(ctx, tx, earlier) })
	}
	for _, bs := range [][]loyalty.Bonus{batch, bounded, perShopper} {
		run(t, together, func(ctx context.Context, tx *sqlx.Tx) error { return tb.ChargeBonuses(ctx, tx, bs) })
		run(t, oneByOne, func(ctx context.Context, tx *sqlx.Tx) error {
			for _, b := range bs {
				if err := ob.ChargeBonus(ctx, tx, b); err != nil {
					return err
				}
			}
			return nil
		})
	}
	gotBudgets := sameCharges(t, together, oneByOne)
	// What an operator reads: the unbounded experiment charged 100+…+111 points once each
	// (o3 in the earlier batch) to the variant's budget, and those and the 50 of a variant it
	// lacks to the experiment's.
	want := map[string]int64{"": 1316, "points": 1266}
	for _, b := range gotBudgets {
		if b.Experiment == "free" && b.Spent != want[b.Variant] {
			t.Errorf("budget free/%q spent %d points, want %d", b.Variant, b.Spent, want[b.Variant])
		}
	}
}
