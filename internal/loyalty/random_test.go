package loyalty_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/loyalty"
)

// TestRandomConcurrentOperationsKeepTheBooks runs thousands of earns, redemptions, reversals,
// replays, expiry runs and clock moves from several goroutines at once over a few accounts,
// then checks the books against what the test itself saw succeed.
func TestRandomConcurrentOperationsKeepTheBooks(t *testing.T) {
	const (
		workers  = 8
		opsEach  = 250 // 2,000 operations
		shoppers = 5
	)
	f := newFixture(t)
	f.setProgram(t, 1, 1, 2, 0) // lots live two days; the clock moves up to six hours a step

	type done struct {
		id      int64
		shopper string
		body    []byte
		replay  func() (loyalty.Outcome, error)
	}
	var (
		mu               sync.Mutex
		transactions     []int64 // earns and redemptions, for reversals to pick from
		replayable       []done
		earned, redeemed int64
		okOps, refused   int
		reversalsOK      int
		replaysOK        int
		unexpected       []error
	)
	record := func(err error, allowed ...apperr.Code) bool {
		if err == nil {
			return true
		}
		for _, c := range allowed {
			if apperr.CodeOf(err) == c {
				mu.Lock()
				refused++
				mu.Unlock()
				return false
			}
		}
		mu.Lock()
		unexpected = append(unexpected, err)
		mu.Unlock()
		return false
	}

	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(42, uint64(w)))
			for i := range opsEach {
				shopper := fmt.Sprintf("s-%d", rng.IntN(shoppers))
				key := fmt.Sprintf("w%d-%d", w, i)
				switch p := rng.IntN(100); {
				case p < 35:
					req := loyalty.EarnRequest{Points: 1 + rng.Int64N(200), IdempotencyKey: key, Reason: "random"}
					out, err := f.svc.Earn(f.ctx, shopper, req)
					if record(err) {
						mu.Lock()
						earned += req.Points
						okOps++
						transactions = append(transactions, out.Receipt.Transaction.ID)
						replayable = append(replayable, done{out.Receipt.Transaction.ID, shopper, out.Body,
							func() (loyalty.Outcome, error) { return f.svc.Earn(f.ctx, shopper, req) }})
						mu.Unlock()
					}
				case p < 65:
					req := loyalty.RedeemRequest{Points: 1 + rng.Int64N(250), IdempotencyKey: key}
					out, err := f.svc.Redeem(f.ctx, shopper, req)
					if record(err, apperr.InsufficientPoints) {
						mu.Lock()
						redeemed += req.Points
						okOps++
						transactions = append(transactions, out.Receipt.Transaction.ID)
						mu.Unlock()
					}
				case p < 82:
					mu.Lock()
					if len(transactions) == 0 {
						mu.Unlock()
						continue
					}
					id := transactions[rng.IntN(len(transactions))]
					mu.Unlock()
					req := loyalty.ReverseRequest{IdempotencyKey: key}
					if rng.IntN(2) == 0 {
						req.Points = ptr(1 + rng.Int64N(100))
					}
					_, err := f.svc.Reverse(f.ctx, id, req)
					if record(err, apperr.Conflict) { // already reversed, or fewer points left
						mu.Lock()
						okOps++
						reversalsOK++
						mu.Unlock()
					}
				case p < 88:
					mu.Lock()
					if len(replayable) == 0 {
						mu.Unlock()
						continue
					}
					d := replayable[rng.IntN(len(replayable))]
					mu.Unlock()
					out, err := d.replay()
					if record(err) {
						if !out.Replayed || !bytes.Equal(out.Body, d.body) {
							mu.Lock()
							unexpected = append(unexpected, fmt.Errorf("replay of %d answered %s, first answer %s", d.id, out.Body, d.body))
							mu.Unlock()
						}
						mu.Lock()
						replaysOK++
						mu.Unlock()
					}
				case p < 92:
					_, err := f.svc.ExpireDue(f.ctx)
					record(err)
				default:
					f.clock.Advance(time.Duration(rng.Int64N(int64(6 * time.Hour))))
				}
			}
		}()
	}
	wg.Wait()
	if len(unexpected) > 0 {
		t.Fatalf("%d unexpected errors, the first: %v", len(unexpected), unexpected[0])
	}
	if _, err := f.svc.ExpireDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d operations succeeded (%d reversals, %d replays), %d refused; %d earned, %d redeemed",
		okOps, reversalsOK, replaysOK, refused, earned, redeemed)
	if reversalsOK < 100 || replaysOK < 50 || refused < 50 {
		t.Fatalf("the mix did not exercise enough: %d reversals, %d replays, %d refusals", reversalsOK, replaysOK, refused)
	}

	f.checkBooks(t)
	// What the ledger says was earned and redeemed is what the test saw succeed: nothing lost,
	// nothing counted twice (replays included).
	if got := f.count(t, `SELECT COALESCE(sum(points), 0) FROM loyalty_entries WHERE kind = 'earn'`); got != earned {
		t.Errorf("earn entries sum to %d, the test earned %d", got, earned)
	}
	if got := f.count(t, `SELECT COALESCE(-sum(points), 0) FROM loyalty_entries WHERE kind = 'redeem'`); got != redeemed {
		t.Errorf("redeem entries sum to %d, the test redeemed %d", got, redeemed)
	}
	if got := f.count(t, `SELECT count(*) FROM loyalty_idempotency`); got != int64(okOps) {
		t.Errorf("%d idempotency keys stored, %d operations succeeded", got, okOps)
	}
	// With every lapsed lot written off, balance + pending is what the lots hold, which is
	// what the ledger sums to, and none of it is negative.
	for i := range shoppers {
		shopper := fmt.Sprintf("s-%d", i)
		a := f.account(t, shopper)
		lots := f.count(t, `SELECT COALESCE(sum(remaining), 0) FROM loyalty_lots WHERE shopper_id = $1`, shopper)
		ledger := f.count(t, `SELECT COALESCE(sum(points), 0) FROM loyalty_entries WHERE shopper_id = $1`, shopper)
		if a.Balance < 0 || a.Pending != 0 || a.Balance != lots || lots != ledger {
			t.Errorf("%s: balance %d, pending %d, lot remainders %d, ledger %d; want all equal and >= 0",
				shopper, a.Balance, a.Pending, lots, ledger)
		}
	}
}
