package loyalty_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/apptest"
	"github.com/xsell/xsell/internal/database"
	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/loyalty"
)

// t0 is where every test clock starts.
var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

type fixture struct {
	svc   *loyalty.Service
	db    *sqlx.DB
	clock *apptest.Clock
	ctx   context.Context
	reg   *prometheus.Registry // holds xsell_quarantined_total
}

// newFixture is a Service on a fresh database with a clock at t0.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := dbtest.New(t)
	// Other packages test against the same cluster at the same time; stay well inside its
	// connection limit.
	db.SetMaxOpenConns(16)
	c := apptest.NewClock(t0)
	reg := prometheus.NewRegistry()
	svc := loyalty.New(db, loyalty.Options{Clock: c.Now, Quarantine: database.NewQuarantine(reg, nil)})
	return &fixture{svc: svc, db: db, clock: c, ctx: context.Background(), reg: reg}
}

// quarantined is xsell_quarantined_total{consumer} as /metrics would show it.
func (f *fixture) quarantined(t *testing.T, consumer string) float64 {
	t.Helper()
	families, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if fam.GetName() == "xsell_quarantined_total" && l.GetName() == "consumer" && l.GetValue() == consumer {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func (f *fixture) setProgram(t *testing.T, earnRate, pointValue, expiryDays, pendingDays int) {
	t.Helper()
	if _, err := f.svc.SetProgram(f.ctx, loyalty.Program{EarnRate: earnRate, PointValue: pointValue,
		ExpiryDays: expiryDays, PendingDays: pendingDays}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) earn(t *testing.T, shopper string, points int64, key string) loyalty.Receipt {
	t.Helper()
	out, err := f.svc.Earn(f.ctx, shopper, loyalty.EarnRequest{Points: points, IdempotencyKey: key, Reason: "test"})
	if err != nil {
		t.Fatalf("earn %d for %s: %v", points, shopper, err)
	}
	return out.Receipt
}

func (f *fixture) redeem(t *testing.T, shopper string, points int64, key string) loyalty.Receipt {
	t.Helper()
	out, err := f.svc.Redeem(f.ctx, shopper, loyalty.RedeemRequest{Points: points, IdempotencyKey: key})
	if err != nil {
		t.Fatalf("redeem %d for %s: %v", points, shopper, err)
	}
	return out.Receipt
}

func (f *fixture) reverse(t *testing.T, id int64, points int64, key string) loyalty.Receipt {
	t.Helper()
	r := loyalty.ReverseRequest{IdempotencyKey: key}
	if points > 0 {
		r.Points = &points
	}
	out, err := f.svc.Reverse(f.ctx, id, r)
	if err != nil {
		t.Fatalf("reverse %d of transaction %d: %v", points, id, err)
	}
	return out.Receipt
}

func (f *fixture) account(t *testing.T, shopper string) loyalty.Account {
	t.Helper()
	a, err := f.svc.Account(f.ctx, shopper)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// count runs a COUNT or SUM query that returns one integer.
func (f *fixture) count(t *testing.T, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := f.db.GetContext(f.ctx, &n, query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// lotRemaining is the remainder of the lot an earn made, read straight from the table.
func (f *fixture) lotRemaining(t *testing.T, earnID int64) int64 {
	t.Helper()
	return f.count(t, `SELECT remaining FROM loyalty_lots WHERE entry_id = $1`, earnID)
}

func wantCode(t *testing.T, err error, code apperr.Code) {
	t.Helper()
	var e *apperr.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("error = %v, want code %s", err, code)
	}
}

// checkBooks asserts that, for every account, the ledger, the lots and the moves agree and
// that no lot or reversal went beyond what it had.
func (f *fixture) checkBooks(t *testing.T) {
	t.Helper()
	bad := []struct{ what, query string }{
		{"accounts whose entries do not sum to their lot remainders", `
			SELECT count(*) FROM loyalty_accounts a
			WHERE (SELECT COALESCE(sum(points), 0) FROM loyalty_entries e WHERE e.shopper_id = a.shopper_id)
			   <> (SELECT COALESCE(sum(remaining), 0) FROM loyalty_lots l WHERE l.shopper_id = a.shopper_id)`},
		{"lots whose moves do not sum to their remainder", `
			SELECT count(*) FROM loyalty_lots l
			WHERE l.remaining <> (SELECT COALESCE(sum(points), 0) FROM loyalty_lot_moves m WHERE m.lot_id = l.id)`},
		{"entries whose moves do not sum to their points", `
			SELECT count(*) FROM loyalty_entries e
			WHERE e.points <> (SELECT COALESCE(sum(points), 0) FROM loyalty_lot_moves m WHERE m.entry_id = e.id)`},
		{"lots with a negative or excess remainder", `
			SELECT count(*) FROM loyalty_lots WHERE remaining < 0 OR remaining > points OR debt < 0`},
		// The references the database checks per statement (migration 00015), checked here
		// again over the whole ledger, independently of those triggers.
		{"entries of a shopper without an account", `
			SELECT count(*) FROM loyalty_entries e
			WHERE NOT EXISTS (SELECT 1 FROM loyalty_accounts a WHERE a.shopper_id = e.shopper_id)`},
		{"reversals of no entry of their shopper", `
			SELECT count(*) FROM loyalty_entries r LEFT JOIN loyalty_entries o ON o.id = r.reverses
			WHERE r.reverses IS NOT NULL AND o.shopper_id IS DISTINCT FROM r.shopper_id`},
		{"lots not made by an earn of their shopper for their points", `
			SELECT count(*) FROM loyalty_lots l LEFT JOIN loyalty_entries e ON e.id = l.entry_id
			WHERE e.kind IS DISTINCT FROM 'earn' OR e.shopper_id <> l.shopper_id OR e.points <> l.points`},
		{"earns without exactly one lot", `
			SELECT count(*) FROM loyalty_entries e
			WHERE e.kind = 'earn' AND (SELECT count(*) FROM loyalty_lots l WHERE l.entry_id = e.id) <> 1`},
		{"moves of no entry, no lot, or an entry and a lot of two shoppers", `
			SELECT count(*) FROM loyalty_lot_moves m
			LEFT JOIN loyalty_entries e ON e.id = m.entry_id LEFT JOIN loyalty_lots l ON l.id = m.lot_id
			WHERE e.shopper_id IS NULL OR l.shopper_id IS NULL OR e.shopper_id <> l.shopper_id`},
		{"transactions reversed beyond their points", `
			SELECT count(*) FROM loyalty_entries o
			WHERE (SELECT COALESCE(sum(abs(r.points) + r.shortfall), 0) FROM loyalty_entries r WHERE r.reverses = o.id)
			    > abs(o.points)`},
	}
	for _, b := range bad {
		if n := f.count(t, b.query); n != 0 {
			t.Errorf("%d %s", n, b.what)
		}
	}
}

func fmtInt(n int64) string { return strconv.FormatInt(n, 10) }
