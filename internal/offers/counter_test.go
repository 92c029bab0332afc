package offers_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/offers"
)

// refOpp is one opportunity in the reference count: which experiment, when (Unix seconds).
type refOpp struct {
	exp int
	at  int64
}

// refExp is an experiment of the reference: its caps by window (seconds → offers) and how
// long its opportunities count at all.
type refExp struct {
	caps    map[int64]int
	horizon int64
}

// refAdmit is the rule of docs/offers.md written out plainly, independently of the counter:
// for each candidate in order, capped when the shopper's opportunities within the global
// cap's window reach it, or their opportunities of the experiment within one of its caps'
// windows reach that cap; otherwise shown, and counted.
func refAdmit(opps []refOpp, exps []refExp, global *experiments.FrequencyCap, now int64, cands []int) ([]bool, []refOpp) {
	capped := make([]bool, len(cands))
	within := func(exp int, window int64) int {
		n := 0
		for _, o := range opps {
			if (exp < 0 || o.exp == exp) && o.at <= now && now-o.at < window {
				n++
			}
		}
		return n
	}
	for i, e := range cands {
		if global != nil && within(-1, int64(global.Per.Duration()/time.Second)) >= global.Offers {
			capped[i] = true
			continue
		}
		for window, offers := range exps[e].caps {
			capped[i] = capped[i] || within(e, window) >= offers
		}
		if !capped[i] {
			opps = append(opps, refOpp{exp: e, at: now})
		}
	}
	return capped, opps
}

// TestTheCounterAgreesWithAPlainCount drives the counter with two months of requests of
// 20,000 shoppers — a few hundred of them frequent, over their caps — and about 50,000 who
// come once, and checks every
// verdict against a plain count of each shopper's opportunities, and what the daily sweep
// keeps against the opportunities still within their experiment's window. Caps above what a
// shopper's first stretch of the arena is sized for make lists move; shoppers whose marks
// all expire are forgotten, which leaves holes the sweep squeezes out (compacts).
func TestTheCounterAgreesWithAPlainCount(t *testing.T) {
	const (
		day      = 24 * 60 * 60
		shoppers = 20_000
		requests = 300_000
	)
	cap := func(offers int, per experiments.Window) *experiments.FrequencyCap {
		return &experiments.FrequencyCap{Offers: offers, Per: per}
	}
	global := cap(25, experiments.PeriodWeek)
	// Experiments with a daily cap; a weekly cap above the first stretch's room; a monthly
	// cap with a daily one; and one counted by the global cap only.
	defs := [][]*experiments.FrequencyCap{
		{cap(3, experiments.PeriodDay)},
		{cap(20, experiments.PeriodWeek)},
		{cap(2, experiments.PeriodDay), cap(6, experiments.PeriodMonth)},
		nil,
	}
	c := offers.NewCounter(1 << 30)
	exps := make([]refExp, len(defs))
	ids := make([]uint32, len(defs))
	limits := make([]experiments.CapLimits, len(defs))
	for i, caps := range defs {
		exps[i] = refExp{caps: map[int64]int{}, horizon: 7 * day} // the global cap's window
		for _, cp := range caps {
			w := int64(cp.Per.Duration() / time.Second)
			exps[i].caps[w] = cp.Offers
			exps[i].horizon = max(exps[i].horizon, w)
		}
		ids[i] = c.ID(fmt.Sprintf("e%d", i), time.Duration(exps[i].horizon)*time.Second)
		for _, cp := range caps {
			limits[i] = mergeLimits(limits[i], cp)
		}
	}
	r := rand.New(rand.NewPCG(19, 5))
	ref := make([][]refOpp, shoppers+requests/5)
	once := shoppers
	now := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).Unix()
	lastSweep := now
	moved := false
	for range requests {
		now += int64(r.IntN(40)) // about 2,000 requests a day: two months in all
		var s int
		switch r.IntN(6) {
		case 0, 1, 2:
			s = r.IntN(300) // the frequent ones
		case 3, 4:
			s = r.IntN(shoppers)
		default:
			s, once = once, once+1 // here once: forgotten a week or a month later
		}
		var cands []int
		for e := range defs {
			if r.IntN(4) != 0 {
				cands = append(cands, e)
			}
		}
		in := make([]experiments.Candidate, len(cands))
		for i, e := range cands {
			in[i] = experiments.Candidate{Limits: limits[e], ID: ids[e]}
		}
		id := fmt.Sprintf("shopper-%d", s)
		c.Admit(id, time.Unix(now, 0), true, global, in)
		var want []bool
		want, ref[s] = refAdmit(ref[s], exps, global, now, cands)
		for i, e := range cands {
			if got := in[i].Result == experiments.VerdictCapped; got != want[i] {
				t.Fatalf("%s at %s, experiment e%d: capped %v, the plain count says %v",
					id, time.Unix(now, 0).UTC().Format(time.DateTime), e, got, want[i])
			}
			moved = moved || (!want[i] && e == 1 && countOf(ref[s], 1, now, 7*day) > 8)
		}
		if now-lastSweep >= day {
			lastSweep = now
			c.DropPending()
			gotShoppers, gotMarks := c.Sweep(time.Unix(now, 0))
			wantShoppers, wantMarks := 0, 0
			for i := range ref {
				kept := ref[i][:0]
				for _, o := range ref[i] {
					if now-o.at < exps[o.exp].horizon {
						kept = append(kept, o)
					}
				}
				ref[i] = kept
				wantMarks += len(kept)
				if len(kept) > 0 {
					wantShoppers++
				}
			}
			if gotShoppers != wantShoppers || gotMarks != wantMarks {
				t.Fatalf("sweep at %s: %d shoppers and %d marks kept, want %d and %d",
					time.Unix(now, 0).UTC().Format(time.DateTime), gotShoppers, gotMarks, wantShoppers, wantMarks)
			}
		}
	}
	if !moved {
		t.Fatal("no shopper went past the room of their first stretch: the test does not exercise a move")
	}
}

// mergeLimits adds a cap to limits as the snapshot does: the fewest offers per window.
func mergeLimits(l experiments.CapLimits, cp *experiments.FrequencyCap) experiments.CapLimits {
	w := map[experiments.Window]int{experiments.PeriodDay: 0, experiments.PeriodWeek: 1, experiments.PeriodMonth: 2}[cp.Per]
	if l[w] == 0 || int(l[w]) > cp.Offers {
		l[w] = uint16(cp.Offers)
	}
	return l
}

// countOf is how many of opps are of experiment e within window (seconds) of now.
func countOf(opps []refOpp, e int, now, window int64) int {
	n := 0
	for _, o := range opps {
		if o.exp == e && now-o.at < window {
			n++
		}
	}
	return n
}

// TestManyCandidatesAreCountedLikeFew checks the counter's slow path against the plain count:
// requests of 40 experiments (past the 32 a request tallies in one pass), two of them numbered
// alike modulo 256, each capped at 2 a day, alternating two candidate sets so that groups are
// both repeated and new.
func TestManyCandidatesAreCountedLikeFew(t *testing.T) {
	const day = 24 * 60 * 60
	c := offers.NewCounter(1 << 30)
	var ids []uint32
	for i := range 300 {
		id := c.ID(fmt.Sprintf("k%d", i), 24*time.Hour)
		if i < 39 || i == 256 {
			ids = append(ids, id)
		}
	}
	exps := make([]refExp, len(ids))
	in := make([]experiments.Candidate, len(ids))
	for i := range exps {
		exps[i] = refExp{caps: map[int64]int{day: 2}, horizon: day}
	}
	var ref []refOpp
	now := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).Unix()
	r := rand.New(rand.NewPCG(7, 11))
	for req := range 60 {
		now += int64(r.IntN(4 * 60 * 60))
		var cands []int
		for e := range ids {
			if req%3 != 2 || e%2 == 0 {
				cands = append(cands, e)
			}
		}
		in = in[:0]
		for _, e := range cands {
			in = append(in, experiments.Candidate{Limits: experiments.CapLimits{2, 0, 0}, ID: ids[e]})
		}
		c.Admit("shopper", time.Unix(now, 0), true, nil, in)
		var want []bool
		want, ref = refAdmit(ref, exps, nil, now, cands)
		for i, e := range cands {
			if got := in[i].Result == experiments.VerdictCapped; got != want[i] {
				t.Fatalf("request %d, experiment %d (number %d): capped %v, the plain count says %v", req, e, ids[e], got, want[i])
			}
		}
	}
}
