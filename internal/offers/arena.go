package offers

// A shard keeps its shoppers' marks in one slice of its own, the arena, and each shopper's
// place in it in a map of plain numbers: neither holds a pointer, so the garbage collector
// never walks a million shoppers' state, and no shopper costs an allocation of their own.
// A list that outgrows its place moves to the arena's end; the holes it leaves are counted
// and squeezed out by the sweep (compact).

// span is a shopper's place in the arena: marks [off, off+n), room for cap. Before next
// (Unix seconds) none of them can have expired, so that a request need not look.
type span struct {
	off    uint32
	next   uint32
	n, cap uint16
}

// maxMarks bounds one shopper's list: a shopper at every cap of the experiments they can be
// in holds far fewer (caps allow at most MaxCapOffers each).
const maxMarks = 1<<16 - 1

// list is the shopper's marks (nil when none); the slice aliases the arena.
func (sh *shard) list(h uint64) (span, []mark) {
	sp, ok := sh.index[h]
	if !ok {
		return span{}, nil
	}
	return sp, sh.arena[sp.off : sp.off+uint32(sp.n)]
}

// push appends marks to the shopper's list, whose place is sp (zero when they have none),
// making room for about hint more when it moves.
func (sh *shard) push(h uint64, sp span, ks []mark, hint int, horizons []uint32) {
	n := int(sp.n) + len(ks)
	if n > maxMarks {
		return // cannot happen within the caps' bounds; never grow without one
	}
	if sp.n == 0 {
		sp.next = ^uint32(0)
	}
	for _, k := range ks {
		sp.next = min(sp.next, expiry(k, horizons))
	}
	if n <= int(sp.cap) {
		copy(sh.arena[sp.off+uint32(sp.n):], ks)
		sp.n = uint16(n)
		sh.index[h] = sp
		return
	}
	room := min(max(int(sp.cap)*2, n+hint, 4), maxMarks)
	off := uint32(len(sh.arena))
	sh.arena = append(sh.arena, sh.arena[sp.off:sp.off+uint32(sp.n)]...)
	sh.arena = append(sh.arena, ks...)
	sh.arena = append(sh.arena, make([]mark, room-n)...)
	sh.holes += int(sp.cap)
	sh.index[h] = span{off: off, next: sp.next, n: uint16(n), cap: uint16(room)}
}

// prune drops the shopper's opportunities older than their experiment's horizon and their
// closures that ended, and forgets a shopper left with none.
func (sh *shard) prune(h uint64, t uint32, horizons []uint32) {
	sp, list := sh.list(h)
	if list == nil || t < sp.next {
		return
	}
	kept := list[:0]
	sp.next = ^uint32(0)
	for _, k := range list {
		if keep(k, t, horizons) {
			kept = append(kept, k)
			sp.next = min(sp.next, expiry(k, horizons))
		}
	}
	if len(kept) == 0 {
		delete(sh.index, h)
		sh.holes += int(sp.cap)
		return
	}
	sp.n = uint16(len(kept))
	sh.index[h] = sp
}

// keep says whether a mark still counts at time t.
func keep(k mark, t uint32, horizons []uint32) bool {
	if k.id&closedBit != 0 {
		return k.at > t
	}
	return k.at > t || t-k.at < horizon(k.id, horizons)
}

// horizon is how long an experiment's opportunities are kept, in seconds.
func horizon(id uint32, horizons []uint32) uint32 {
	if int(id) < len(horizons) {
		return horizons[id]
	}
	return maxHorizon
}

// expiry is when a mark stops counting: a closure's end, an opportunity's time plus its
// experiment's horizon.
func expiry(k mark, horizons []uint32) uint32 {
	if k.id&closedBit != 0 {
		return k.at
	}
	return k.at + horizon(k.id, horizons)
}

// compact rebuilds the arena without holes once they are most of it.
func (sh *shard) compact() {
	if sh.holes < 1024 || sh.holes < len(sh.arena)/2 {
		return
	}
	arena := make([]mark, 0, len(sh.arena)-sh.holes)
	for h, sp := range sh.index {
		off := uint32(len(arena))
		arena = append(arena, sh.arena[sp.off:sp.off+uint32(sp.cap)]...)
		sp.off = off
		sh.index[h] = sp
	}
	sh.arena, sh.holes = arena, 0
}
