package loyalty_test

import (
	"errors"
	"testing"

	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/database"
)

// TestLedgerReferencesAreCheckedPerStatement writes, behind the service's back, rows the ledger
// must refuse — the database's own checks (migration 00015) instead of foreign keys — and
// rows it must keep, and checks that a refusal is one a background consumer quarantines.
func TestLedgerReferencesAreCheckedPerStatement(t *testing.T) {
	f := newFixture(t)
	a := f.earn(t, "alice", 100, "a1")
	b := f.earn(t, "bob", 50, "b1")
	lot := func(entry int64) int64 {
		return f.count(t, `SELECT id FROM loyalty_lots WHERE entry_id = $1`, entry)
	}
	refused := []struct{ name, query, code string }{
		{"an entry of a shopper without an account", `INSERT INTO loyalty_entries (shopper_id, kind, points, source, created_at)
			VALUES ('nobody', 'earn', 5, 'api', now())`, "23503"},
		{"a reversal of another shopper's entry", `INSERT INTO loyalty_entries (shopper_id, kind, points, reverses, source, created_at)
			VALUES ('bob', 'reverse', -5, ` + fmtInt(a.Transaction.ID) + `, 'api', now())`, "23503"},
		{"a reversal of no entry", `INSERT INTO loyalty_entries (shopper_id, kind, points, reverses, source, created_at)
			VALUES ('bob', 'reverse', -5, 999999, 'api', now())`, "23503"},
		{"a lot on another shopper's earn", `WITH e AS (INSERT INTO loyalty_entries (shopper_id, kind, points, source, created_at)
			VALUES ('alice', 'earn', 5, 'api', now()) RETURNING id)
			INSERT INTO loyalty_lots (shopper_id, entry_id, points, remaining, earned_at, available_at)
			SELECT 'bob', id, 5, 5, now(), now() FROM e`, "23503"},
		{"a lot on no entry", `INSERT INTO loyalty_lots (shopper_id, entry_id, points, remaining, earned_at, available_at)
			VALUES ('bob', 999999, 5, 5, now(), now())`, "23503"},
		{"a move joining two shoppers' entry and lot", `INSERT INTO loyalty_lot_moves (entry_id, lot_id, points)
			VALUES (` + fmtInt(b.Transaction.ID) + `, ` + fmtInt(lot(a.Transaction.ID)) + `, 1)`, "23503"},
		{"a move on no lot", `INSERT INTO loyalty_lot_moves (entry_id, lot_id, points)
			VALUES (` + fmtInt(b.Transaction.ID) + `, 999999, 1)`, "23503"},
		{"one bad row among good ones", `INSERT INTO loyalty_entries (shopper_id, kind, points, source, created_at)
			SELECT s, 'earn', 5, 'api', now() FROM unnest(ARRAY['alice', 'bob', 'nobody']) s`, "23503"},
		{"deleting an entry", `DELETE FROM loyalty_entries WHERE id = ` + fmtInt(b.Transaction.ID), "23001"},
		{"deleting an account", `DELETE FROM loyalty_accounts WHERE shopper_id = 'bob'`, "23001"},
		{"emptying the lots", `TRUNCATE loyalty_lots, loyalty_lot_moves`, "23001"},
		{"moving a lot to another entry", `UPDATE loyalty_lots SET entry_id = ` + fmtInt(b.Transaction.ID) +
			` WHERE entry_id = ` + fmtInt(a.Transaction.ID), "23001"},
	}
	for _, r := range refused {
		_, err := f.db.ExecContext(f.ctx, r.query)
		var pqErr *pq.Error
		if !errors.As(err, &pqErr) || string(pqErr.Code) != r.code {
			t.Errorf("%s: error %v, want SQLSTATE %s", r.name, err, r.code)
			continue
		}
		if !database.Refused(err) {
			t.Errorf("%s: %v is not a refusal a consumer would quarantine", r.name, err)
		}
	}
	// What the service writes passes the checks: a redeem (moves on lots), a reversal, and a
	// lot's remainder changing.
	f.redeem(t, "alice", 30, "a2")
	f.reverse(t, a.Transaction.ID, 10, "a3")
	if got := f.account(t, "alice").Balance; got != 60 {
		t.Errorf("alice's balance %d, want 60", got)
	}
	if got := f.account(t, "bob").Balance; got != 50 {
		t.Errorf("bob's balance %d, want 50 (nothing refused was kept)", got)
	}
	f.checkBooks(t)
}
