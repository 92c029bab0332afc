package loyalty_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/loyalty"
)

func TestFiftyConcurrentRedeemsOfAThousandPoints(t *testing.T) {
	f := newFixture(t)
	f.earn(t, "s-1", 1000, "grant")
	var (
		wg          sync.WaitGroup
		mu          sync.Mutex
		ok, refused int
		unexpected  []error
		start       = make(chan struct{})
	)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := f.svc.Redeem(f.ctx, "s-1", loyalty.RedeemRequest{Points: 100, IdempotencyKey: fmt.Sprintf("r-%d", i)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case apperr.CodeOf(err) == apperr.InsufficientPoints:
				refused++
			default:
				unexpected = append(unexpected, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(unexpected) > 0 {
		t.Fatalf("unexpected errors: %v", unexpected)
	}
	if ok != 10 || refused != 40 {
		t.Fatalf("%d redeems succeeded and %d were refused, want 10 and 40", ok, refused)
	}
	a := f.account(t, "s-1")
	if a.Balance != 0 || a.LifetimeRedeemed != 1000 {
		t.Fatalf("account = %+v, want balance 0 and 1000 redeemed", a)
	}
	if n := f.count(t, `SELECT count(*) FROM loyalty_entries WHERE kind = 'redeem'`); n != 10 {
		t.Fatalf("%d redeem entries, want 10", n)
	}
	f.checkBooks(t)
}

func TestExpiryAtTheExactBoundary(t *testing.T) {
	f := newFixture(t)
	f.setProgram(t, 1, 1, 1, 0) // a lot lives exactly 24 hours
	e := f.earn(t, "s-1", 100, "e1")
	if want := t0.Add(24 * time.Hour); e.Transaction.ExpiresAt == nil || !e.Transaction.ExpiresAt.Equal(want) {
		t.Fatalf("expires_at = %v, want %v", e.Transaction.ExpiresAt, want)
	}

	f.clock.Set(t0.Add(24*time.Hour - time.Microsecond))
	if a := f.account(t, "s-1"); a.Balance != 100 || a.Expired != 0 {
		t.Fatalf("one microsecond before expiry: %+v, want balance 100", a)
	}
	f.redeem(t, "s-1", 1, "r1")
	if n, err := f.svc.ExpireDue(f.ctx); err != nil || n != 0 {
		t.Fatalf("ExpireDue before the boundary = %d, %v; want 0", n, err)
	}

	f.clock.Set(t0.Add(24 * time.Hour))
	// The job has not run, and yet the lot can no longer be spent.
	a := f.account(t, "s-1")
	if a.Balance != 0 || a.Expired != 99 || a.NextExpiry != nil {
		t.Fatalf("at the boundary before the job: %+v, want balance 0, expired 99, no next expiry", a)
	}
	_, err := f.svc.Redeem(f.ctx, "s-1", loyalty.RedeemRequest{Points: 1, IdempotencyKey: "r2"})
	wantCode(t, err, apperr.InsufficientPoints)

	if n, err := f.svc.ExpireDue(f.ctx); err != nil || n != 1 {
		t.Fatalf("ExpireDue at the boundary = %d, %v; want 1", n, err)
	}
	if n, err := f.svc.ExpireDue(f.ctx); err != nil || n != 0 {
		t.Fatalf("ExpireDue again = %d, %v; want 0", n, err)
	}
	if got := f.count(t, `SELECT sum(points) FROM loyalty_entries WHERE kind = 'expire'`); got != -99 {
		t.Fatalf("expire entries sum to %d, want -99", got)
	}
	if a := f.account(t, "s-1"); a.Balance != 0 || a.Expired != 99 || a.LifetimeEarned != 100 || a.LifetimeRedeemed != 1 {
		t.Fatalf("after the job: %+v", a)
	}
	f.checkBooks(t)
}

func TestRedeemSpendsTheLotsThatExpireFirst(t *testing.T) {
	f := newFixture(t)
	f.setProgram(t, 1, 1, 10, 0)
	a := f.earn(t, "s-1", 100, "a") // expires t0+10d
	f.setProgram(t, 1, 1, 0, 0)
	never := f.earn(t, "s-1", 100, "never") // never expires: spent last
	f.clock.Advance(24 * time.Hour)
	f.setProgram(t, 1, 1, 10, 0)
	b := f.earn(t, "s-1", 100, "b") // expires t0+11d

	r := f.redeem(t, "s-1", 150, "r")
	if r.Balance != 150 {
		t.Fatalf("balance after redeeming 150 of 300 = %d", r.Balance)
	}
	for _, c := range []struct {
		name string
		id   int64
		want int64
	}{{"a", a.Transaction.ID, 0}, {"b", b.Transaction.ID, 50}, {"never", never.Transaction.ID, 100}} {
		if got := f.lotRemaining(t, c.id); got != c.want {
			t.Errorf("lot %s holds %d, want %d", c.name, got, c.want)
		}
	}

	// Reversed after lot a expired, the points go back to a with its original expiry: they are
	// not spendable, and the expiry job writes them off.
	f.clock.Set(t0.Add(10 * 24 * time.Hour))
	rev := f.reverse(t, r.Transaction.ID, 0, "undo")
	if rev.Transaction.Points != 150 || rev.Balance != 200 {
		t.Fatalf("reversal = %+v, want +150 and balance 200 (b 100 + never 100; a has expired)", rev)
	}
	if got := f.lotRemaining(t, a.Transaction.ID); got != 100 {
		t.Fatalf("lot a holds %d after the reversal, want 100", got)
	}
	if n, err := f.svc.ExpireDue(f.ctx); err != nil || n != 1 {
		t.Fatalf("ExpireDue = %d, %v; want 1 (lot a)", n, err)
	}
	if acc := f.account(t, "s-1"); acc.Balance != 200 || acc.Expired != 100 {
		t.Fatalf("account = %+v, want balance 200 (b and never), expired 100 (a)", acc)
	}
	f.checkBooks(t)
}

func TestIdempotentReplaysAndConflicts(t *testing.T) {
	f := newFixture(t)
	first, err := f.svc.Earn(f.ctx, "s-1", loyalty.EarnRequest{Points: 300, IdempotencyKey: "k1", Reason: "welcome"})
	if err != nil || first.Replayed || first.Status != 201 {
		t.Fatalf("first earn = %+v, %v", first, err)
	}
	f.clock.Advance(time.Hour)
	f.earn(t, "s-1", 5, "k2") // the balance moves on; a replay still shows the first answer
	again, err := f.svc.Earn(f.ctx, "s-1", loyalty.EarnRequest{Points: 300, IdempotencyKey: "k1", Reason: "welcome"})
	if err != nil || !again.Replayed || again.Status != first.Status || !bytes.Equal(again.Body, first.Body) {
		t.Fatalf("replay = %d %s (replayed %v), %v; want %d %s", again.Status, again.Body, again.Replayed, err, first.Status, first.Body)
	}
	if again.Receipt.Balance != 300 {
		t.Fatalf("replayed balance = %d, want the first answer's 300", again.Receipt.Balance)
	}
	if n := f.count(t, `SELECT count(*) FROM loyalty_entries`); n != 2 {
		t.Fatalf("%d entries, want 2: a replay writes nothing", n)
	}

	_, err = f.svc.Earn(f.ctx, "s-1", loyalty.EarnRequest{Points: 301, IdempotencyKey: "k1", Reason: "welcome"})
	wantCode(t, err, apperr.IdempotencyConflict)
	_, err = f.svc.Redeem(f.ctx, "s-1", loyalty.RedeemRequest{Points: 300, IdempotencyKey: "k1"})
	wantCode(t, err, apperr.IdempotencyConflict)
	// Keys belong to a shopper: another shopper may use the same one.
	f.earn(t, "s-2", 300, "k1")

	// A redemption beyond the balance writes nothing, not even its key...
	before := f.count(t, `SELECT (SELECT count(*) FROM loyalty_entries) + (SELECT count(*) FROM loyalty_lot_moves)
		+ (SELECT count(*) FROM loyalty_idempotency) + (SELECT sum(remaining) FROM loyalty_lots)`)
	_, err = f.svc.Redeem(f.ctx, "s-1", loyalty.RedeemRequest{Points: 306, IdempotencyKey: "big"})
	wantCode(t, err, apperr.InsufficientPoints)
	after := f.count(t, `SELECT (SELECT count(*) FROM loyalty_entries) + (SELECT count(*) FROM loyalty_lot_moves)
		+ (SELECT count(*) FROM loyalty_idempotency) + (SELECT sum(remaining) FROM loyalty_lots)`)
	if before != after {
		t.Fatalf("a refused redemption changed the tables (%d -> %d)", before, after)
	}
	// ...so the same key works once the balance covers it.
	f.earn(t, "s-1", 1, "k3")
	if r := f.redeem(t, "s-1", 306, "big"); r.Balance != 0 {
		t.Fatalf("balance after redeeming everything = %d", r.Balance)
	}

	// A reversal replays too, and a different reversal under its key is refused.
	id := first.Receipt.Transaction.ID
	_, err = f.svc.Reverse(f.ctx, id, loyalty.ReverseRequest{IdempotencyKey: "k2"})
	wantCode(t, err, apperr.IdempotencyConflict)
	rev1 := f.reverse(t, id, 0, "undo")
	rev2 := f.reverse(t, id, 0, "undo")
	if rev1.Transaction.ID != rev2.Transaction.ID {
		t.Fatalf("replayed reversal made transaction %d, first was %d", rev2.Transaction.ID, rev1.Transaction.ID)
	}
	f.checkBooks(t)
}

func TestValidationNamesTheFields(t *testing.T) {
	f := newFixture(t)
	_, err := f.svc.Earn(f.ctx, "", loyalty.EarnRequest{Points: 0})
	var fields []string
	if e, ok := err.(*apperr.Error); ok {
		for _, d := range e.Details {
			fields = append(fields, d.Field)
		}
	}
	if fmt.Sprint(fields) != "[shopper_id points idempotency_key reason]" {
		t.Fatalf("earn problems = %v (%v)", fields, err)
	}
	_, err = f.svc.Redeem(f.ctx, "s-1", loyalty.RedeemRequest{Points: loyalty.MaxPoints + 1, IdempotencyKey: "k"})
	wantCode(t, err, apperr.Invalid)
	_, err = f.svc.Reverse(f.ctx, 12345, loyalty.ReverseRequest{IdempotencyKey: "k"})
	wantCode(t, err, apperr.NotFound)
}

func TestReversingAnEarnWhosePointsWereSpent(t *testing.T) {
	f := newFixture(t)
	e := f.earn(t, "s-1", 100, "e")
	r := f.redeem(t, "s-1", 70, "r")

	rev := f.reverse(t, e.Transaction.ID, 0, "undo-e")
	if rev.Transaction.Points != -30 || rev.Transaction.Shortfall != 70 || rev.Balance != 0 {
		t.Fatalf("reversal = %+v, want -30 with shortfall 70 and balance 0", rev)
	}
	_, err := f.svc.Reverse(f.ctx, e.Transaction.ID, loyalty.ReverseRequest{IdempotencyKey: "undo-e-again"})
	wantCode(t, err, apperr.Conflict)

	// Undoing the redemption too pays off the shortfall: both transactions are void, so the
	// shopper ends with nothing rather than 70 points that came from nowhere.
	rr := f.reverse(t, r.Transaction.ID, 0, "undo-r")
	if rr.Transaction.Points != 0 || rr.Transaction.Shortfall != 70 || rr.Balance != 0 {
		t.Fatalf("reversal of the redemption = %+v, want 0 with shortfall 70 and balance 0", rr)
	}
	a := f.account(t, "s-1")
	if a.Balance != 0 || a.LifetimeEarned != 0 || a.LifetimeRedeemed != 0 {
		t.Fatalf("account = %+v, want all zero", a)
	}
	f.checkBooks(t)
}

func TestPartialReversalsOfARedemption(t *testing.T) {
	f := newFixture(t)
	f.setProgram(t, 1, 1, 10, 0)
	a := f.earn(t, "s-1", 100, "a")
	f.clock.Advance(time.Hour)
	b := f.earn(t, "s-1", 100, "b")
	r := f.redeem(t, "s-1", 150, "r") // a: 100, b: 50

	// Points go back to the latest-expiring lot first.
	if x := f.reverse(t, r.Transaction.ID, 30, "p1"); x.Transaction.Points != 30 || x.Balance != 80 {
		t.Fatalf("first partial reversal = %+v", x)
	}
	if got := [2]int64{f.lotRemaining(t, a.Transaction.ID), f.lotRemaining(t, b.Transaction.ID)}; got != [2]int64{0, 80} {
		t.Fatalf("lots a, b = %v, want [0 80]", got)
	}
	_, err := f.svc.Reverse(f.ctx, r.Transaction.ID, loyalty.ReverseRequest{IdempotencyKey: "p2", Points: ptr(121)})
	wantCode(t, err, apperr.Conflict)
	if x := f.reverse(t, r.Transaction.ID, 120, "p3"); x.Transaction.Points != 120 || x.Balance != 200 {
		t.Fatalf("second partial reversal = %+v", x)
	}
	if got := [2]int64{f.lotRemaining(t, a.Transaction.ID), f.lotRemaining(t, b.Transaction.ID)}; got != [2]int64{100, 100} {
		t.Fatalf("lots a, b = %v, want [100 100]", got)
	}
	_, err = f.svc.Reverse(f.ctx, r.Transaction.ID, loyalty.ReverseRequest{IdempotencyKey: "p4"})
	wantCode(t, err, apperr.Conflict)
	// Reversals themselves cannot be reversed.
	_, err = f.svc.Reverse(f.ctx, r.Transaction.ID+1, loyalty.ReverseRequest{IdempotencyKey: "p5"})
	wantCode(t, err, apperr.Conflict)
	f.checkBooks(t)
}

func TestExpiryJobTwiceAtOnce(t *testing.T) {
	f := newFixture(t)
	f.setProgram(t, 1, 1, 1, 0)
	for i := range 40 {
		f.earn(t, fmt.Sprintf("s-%d", i%8), int64(10+i), fmt.Sprintf("e-%d", i))
	}
	f.clock.Advance(48 * time.Hour)
	var wg sync.WaitGroup
	counts := make([]int, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[i], errs[i] = f.svc.ExpireDue(f.ctx)
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || counts[0]+counts[1] != 40 {
		t.Fatalf("two runs wrote %v lots (%v), want 40 in total", counts, errs)
	}
	if n := f.count(t, `SELECT count(DISTINCT lot_id) FROM loyalty_lot_moves m JOIN loyalty_entries e ON e.id = m.entry_id
		WHERE e.kind = 'expire'`); n != 40 {
		t.Fatalf("%d lots have an expire entry, want 40", n)
	}
	// 40 lots of 10..49 points: 40*10 + (0+...+39) = 1180.
	if got := f.count(t, `SELECT -sum(points) FROM loyalty_entries WHERE kind = 'expire'`); got != 1180 {
		t.Fatalf("expired %d points, want 1180", got)
	}
	f.checkBooks(t)
}

func TestProgramSettings(t *testing.T) {
	f := newFixture(t)
	p, err := f.svc.Program(f.ctx)
	if err != nil || p.EarnRate != 1 || p.PointValue != 1 || p.ExpiryDays != 365 || p.PendingDays != 0 {
		t.Fatalf("default program = %+v, %v", p, err)
	}
	_, err = f.svc.SetProgram(f.ctx, loyalty.Program{EarnRate: -1, PointValue: 2_000_000, ExpiryDays: 4000, PendingDays: 366})
	e, _ := err.(*apperr.Error)
	if e == nil || len(e.Details) != 4 || e.Details[0].Field != "earn_rate" || e.Details[3].Field != "pending_days" {
		t.Fatalf("error = %v, want four problems from earn_rate to pending_days", err)
	}
	_, err = f.svc.SetProgram(f.ctx, loyalty.Program{EarnRate: 1, ExpiryDays: 14, PendingDays: 14})
	if e, _ := err.(*apperr.Error); e == nil || len(e.Details) != 1 || e.Details[0].Field != "expiry_days" {
		t.Fatalf("expiry not after pending: %v", err)
	}
	got, err := f.svc.SetProgram(f.ctx, loyalty.Program{EarnRate: 3, PointValue: 2, ExpiryDays: 0, PendingDays: 30})
	if err != nil || got.EarnRate != 3 || got.PendingDays != 30 || !got.UpdatedAt.Equal(t0) {
		t.Fatalf("set = %+v, %v", got, err)
	}
}

func TestTransactionsNewestFirstInPages(t *testing.T) {
	f := newFixture(t)
	for i := range 5 {
		f.earn(t, "s-1", int64(i+1), fmt.Sprintf("e%d", i))
	}
	f.earn(t, "s-2", 9, "other")
	var seen []int64
	cursor := ""
	for range 3 {
		p, err := f.svc.Transactions(f.ctx, "s-1", cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range p.Transactions {
			seen = append(seen, tr.Points)
		}
		cursor = p.NextCursor
	}
	if fmt.Sprint(seen) != "[5 4 3 2 1]" || cursor != "" {
		t.Fatalf("pages = %v (cursor %q), want [5 4 3 2 1] and no cursor", seen, cursor)
	}
	_, err := f.svc.Transactions(f.ctx, "s-1", "x", 0)
	wantCode(t, err, apperr.Invalid)
}

func ptr(n int64) *int64 { return &n }
