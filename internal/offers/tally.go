package offers

import (
	"math"

	"github.com/xsell/xsell/internal/experiments"
)

// tally is what one request counts of a shopper's marks, in one pass over them: for each
// candidate, its experiment's opportunities by age class and whether its offer is closed, and
// every opportunity by age class for the global cap. It lives on the request's stack. The
// first maxFast candidates with distinct numbers (modulo 256) are counted in the pass; any
// other candidate is counted by a scan of its own (a request of more experiments than that,
// or two experiments numbered alike modulo 256).
type tally struct {
	slot   [256]uint8 // experiment number mod 256 → 1 + index of its candidate, 0 for none
	n      [maxFast][classes]uint16
	closed [maxFast]bool
	all    [classes]int
}

const (
	maxFast = 32
	classes = 3 // opportunities younger than 24h, 7d, 30d
	day     = 24 * 60 * 60
	// maxHorizon is the longest any opportunity is kept: the longest period, 30 days.
	maxHorizon = 30 * day
)

// class is the age class a period counts up to: 24h 0, 7d 1, 30d 2.
func class(p experiments.Window) int {
	switch p {
	case experiments.PeriodDay:
		return 0
	case experiments.PeriodWeek:
		return 1
	}
	return 2
}

// ageClass is the youngest class an opportunity of this age (seconds) falls in; classes when
// it is older than every period.
func ageClass(age uint32) int {
	switch {
	case age < day:
		return 0
	case age < 7*day:
		return 1
	case age < maxHorizon:
		return 2
	}
	return classes
}

func (tl *tally) index(cands []experiments.Candidate) {
	for i := range min(len(cands), maxFast) {
		s := cands[i].ID & 255
		if tl.slot[s] == 0 {
			tl.slot[s] = uint8(i + 1)
		}
	}
}

// owner is the index whose counts stand for candidate i, or -1 when it has none.
func (tl *tally) owner(i int, cands []experiments.Candidate) int {
	id := cands[i].ID
	o := int(tl.slot[id&255]) - 1
	if o < 0 || cands[o].ID != id {
		return -1
	}
	return o
}

// add counts a shopper's marks as of time t.
func (tl *tally) add(list []mark, t uint32, cands []experiments.Candidate) {
	for _, k := range list {
		if k.id&closedBit != 0 {
			id := k.id &^ closedBit
			if s := int(tl.slot[id&255]) - 1; s >= 0 && cands[s].ID == id && k.at > t {
				tl.closed[s] = true
			}
			continue
		}
		if k.at > t {
			continue // counted at a later time than this request's (a back-dated request)
		}
		cl := ageClass(t - k.at)
		if cl == classes {
			continue
		}
		tl.all[cl]++
		if s := int(tl.slot[k.id&255]) - 1; s >= 0 && cands[s].ID == k.id && tl.n[s][cl] < math.MaxUint16 {
			tl.n[s][cl]++
		}
	}
}

// cumulative turns counts by age class into counts within each period.
func cumulative[T uint16 | int](n [classes]T) [classes]int {
	var out [classes]int
	sum := 0
	for i, x := range n {
		sum += int(x)
		out[i] = sum
	}
	return out
}

// total is every opportunity within the period.
func (tl *tally) total(p experiments.Window) int { return cumulative(tl.all)[class(p)] }

// count is candidate i's opportunities within each period, this request's added ones included.
func (tl *tally) count(i int, cands []experiments.Candidate, list, added []mark, t uint32) [classes]int {
	if o := tl.owner(i, cands); o >= 0 {
		return cumulative(tl.n[o])
	}
	var n [classes]int
	id := cands[i].ID
	n[0] = countOf(added, id)
	for _, k := range list {
		if k.id == id && k.at <= t {
			if cl := ageClass(t - k.at); cl < classes {
				n[cl]++
			}
		}
	}
	return cumulative(n)
}

// countOf is how many of this request's opportunities are of experiment id.
func countOf(added []mark, id uint32) int {
	n := 0
	for _, k := range added {
		if k.id == id {
			n++
		}
	}
	return n
}

// closedFor reports whether a per-shopper limit closed candidate i's offer at time t.
func (tl *tally) closedFor(i int, cands []experiments.Candidate, list []mark, t uint32) bool {
	if o := tl.owner(i, cands); o >= 0 {
		return tl.closed[o]
	}
	for _, k := range list {
		if k.id == cands[i].ID|closedBit && k.at > t {
			return true
		}
	}
	return false
}

// bump counts one more opportunity of candidate i, just given.
func (tl *tally) bump(i int, cands []experiments.Candidate) {
	if o := tl.owner(i, cands); o >= 0 && tl.n[o][0] < math.MaxUint16 {
		tl.n[o][0]++
	}
	tl.all[0]++
}
