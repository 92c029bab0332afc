package offers

import (
	"github.com/xsell/xsell/internal/experiments"
)

// tally is what one request counts of a shopper's marks, in one pass over them: for each
// candidate, its experiment's opportunities within each period and whether its offer is
// closed, and every opportunity within each period for the global cap. It lives on the
// request's stack. The first maxFast candidates with distinct numbers (modulo 256) are
// counted in the pass, and candidates of the same experiment share one count; any other
// candidate is counted by a scan of its own (a request of more experiments than that, or two
// experiments numbered alike modulo 256).
type tally struct {
	slot [256]uint8 // experiment number mod 256 → 1 + index of its candidate, 0 for none
	ids  [maxFast]uint32
	// own is, for candidate i, 1 + the index whose counts stand for it, 0 when none does.
	own    [maxFast]uint8
	n      [maxFast][classes]int32 // within each period, once add has run
	closed [maxFast]bool
	all    [classes]int
	// last are the numbers of the list's last group when it counted opportunities: a request
	// counting the same ones repeats it.
	last []uint32
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

// index prepares the tally for the request's candidates.
func (tl *tally) index(cands []experiments.Candidate) {
	for i := range min(len(cands), maxFast) {
		id := cands[i].ID
		switch s := &tl.slot[id&255]; {
		case *s == 0:
			*s, tl.ids[i], tl.own[i] = uint8(i+1), id, uint8(i+1)
		case tl.ids[*s-1] == id:
			tl.own[i] = *s
		}
	}
}

// owner is the index whose counts stand for candidate i, or -1 when it has none.
func (tl *tally) owner(i int) int {
	if i >= maxFast {
		return -1
	}
	return int(tl.own[i]) - 1
}

// add counts a shopper's marks (their list of groups) as of time t.
func (tl *tally) add(list []uint32, t uint32) {
	g := groups{list: list}
	for {
		at, head, ids, ok := g.next()
		if !ok {
			break
		}
		tl.last = nil
		if head&closedFlag != 0 {
			if at > t {
				for _, id := range ids {
					id &= idMask
					if s := int(tl.slot[id&255]) - 1; s >= 0 && tl.ids[s] == id {
						tl.closed[s] = true
					}
				}
			}
			continue
		}
		if head&(multiFlag|repeatFlag) != 0 {
			tl.last = ids
		}
		if at > t {
			continue // counted at a later time than this request's (a back-dated request)
		}
		cl := ageClass(t - at)
		if cl == classes {
			continue
		}
		tl.all[cl] += len(ids)
		for _, id := range ids {
			id &= idMask
			if s := int(tl.slot[id&255]) - 1; s >= 0 && tl.ids[s] == id {
				tl.n[s][cl]++
			}
		}
	}
	// From counts by age class to counts within each period.
	for s := range tl.n {
		tl.n[s][1] += tl.n[s][0]
		tl.n[s][2] += tl.n[s][1]
	}
	tl.all[1] += tl.all[0]
	tl.all[2] += tl.all[1]
}

// total is every opportunity within the period.
func (tl *tally) total(p experiments.Window) int { return tl.all[class(p)] }

// scan counts experiment id's opportunities within each period, this request's added ones
// included, by a pass of its own: for a candidate the tally does not count.
func scan(id uint32, list, added []uint32, t uint32) [classes]int32 {
	var n [classes]int32
	n[0] = countOf(added, id)
	g := groups{list: list}
	for {
		at, head, ids, ok := g.next()
		if !ok {
			break
		}
		if head&closedFlag != 0 || at > t {
			continue
		}
		if cl := ageClass(t - at); cl < classes {
			n[cl] += countOf(ids, id)
		}
	}
	n[1] += n[0]
	n[2] += n[1]
	return n
}

// countOf is how many of a group's numbers (or this request's) are experiment id's.
func countOf(ids []uint32, id uint32) int32 {
	var n int32
	for _, k := range ids {
		if k&idMask == id {
			n++
		}
	}
	return n
}

// closedFor reports whether a per-shopper limit closed candidate i's offer at time t.
func (tl *tally) closedFor(i int, cands []experiments.Candidate, list []uint32, t uint32) bool {
	if o := tl.owner(i); o >= 0 {
		return tl.closed[o]
	}
	g := groups{list: list}
	for {
		at, head, ids, ok := g.next()
		if !ok {
			return false
		}
		if head&closedFlag != 0 && at > t && countOf(ids, cands[i].ID&idMask) > 0 {
			return true
		}
	}
}

// bump counts one more opportunity of candidate i, just given.
func (tl *tally) bump(i int) {
	if o := tl.owner(i); o >= 0 {
		for cl := range classes {
			tl.n[o][cl]++
		}
	}
	for cl := range classes {
		tl.all[cl]++
	}
}
