package offers

// A shard keeps its shoppers' marks in an arena of its own, and each shopper's place in it in
// a map of plain numbers: neither holds a pointer, so the garbage collector never walks a
// million shoppers' state, and no shopper costs an allocation of their own.
//
// A shopper's list is a sequence of groups, each what one request counted (or one row of the
// feed brought): the time once, then the experiments' numbers; a request that counts the same
// experiments as the group before it (a returning shopper's usual request) keeps its time
// only. A shopper capped on 20 experiments after three requests keeps 26 words of 4 bytes,
// not 60 marks of 8, and a request works out the age of each group once.
//
// A group is kept until the last of its marks expires, so that a repeated group always has
// the one before it to stand on; a mark past its own horizon that is kept that way counts
// for nothing a cap asks about (every window that counts it ends within its horizon).
//
// The arena is a list of blocks that never move: a shopper's stretch lies in one block, and a
// new one is carved from the last block, or from a new block when the last is full, so that
// growing the arena never copies it. A shopper's first stretch is sized for what their caps
// let them hold (Admit's room), so that their marks do not move as they come; a list that
// outgrows its stretch anyway (caps raised, more experiments) moves to one twice as large.
// The holes left behind are counted and squeezed out by the sweep (compact).

// span is a shopper's place in the arena: words [off, off+n) of block blk, room for cap.
// Before next (Unix seconds) none of their groups can have expired, so that a request need
// not look.
type span struct {
	next   uint32
	off    uint16
	blk    uint16
	n, cap uint16
}

// A group is two words, its time (Unix seconds; a closure's end) and its head, followed by
// its experiments' numbers when it has more than one: the head of a group of one is that
// number with the flags, the head of a repeated group says only that it is one.
const (
	closedFlag = 1 << 31 // the group closes offers until its time (a per-shopper limit)
	multiFlag  = 1 << 30 // the group's numbers follow its head, which holds their count
	repeatFlag = 1 << 29 // the group counts the numbers of the group before it
	idMask     = 1<<29 - 1
	countMask  = 1<<16 - 1
)

const (
	// maxWords bounds one shopper's list: a shopper at every cap of the experiments they can
	// be in holds far fewer (caps allow at most MaxCapOffers each).
	maxWords = 1<<16 - 1
	// firstBlock and blockWords size the blocks: a shard's first is small (most shards of a
	// quiet server hold few shoppers), each next one twice the last, up to blockWords (32 kB,
	// the largest allocation Go serves from its size classes). A stretch longer than that
	// gets a block of its own.
	firstBlock = 512
	blockWords = 8192
	// maxBlocks bounds a shard's blocks (their number is a span's blk).
	maxBlocks = 1<<16 - 1
)

// groupLen is the words of a group of n experiments, repeated or not.
func groupLen(n int, repeat bool) int {
	if n == 1 || repeat {
		return 2
	}
	return 2 + n
}

// groups walks a list's groups in order.
type groups struct {
	list []uint32
	i    int
	src  []uint32 // the numbers of the last group that listed them, which a repeat counts
}

// next reads the next group: its time, its head and its experiments' numbers (to be masked
// with idMask); false after the last.
func (g *groups) next() (at, head uint32, ids []uint32, ok bool) {
	if g.i >= len(g.list) {
		return 0, 0, nil, false
	}
	at, head = g.list[g.i], g.list[g.i+1]
	switch {
	case head&repeatFlag != 0:
		ids = g.src
		g.i += 2
	case head&multiFlag != 0:
		n := int(head & countMask)
		ids = g.list[g.i+2 : g.i+2+n]
		g.src = ids
		g.i += 2 + n
	default:
		ids = g.list[g.i+1 : g.i+2]
		g.src = nil
		g.i += 2
	}
	return at, head, ids, true
}

// putGroup writes the group of ids (at most maxWords of them, none with a flag) at dst's
// start; a repeat (of the group just before) writes its time only.
func putGroup(dst []uint32, at uint32, closed bool, ids []uint32, repeat bool) {
	var flags uint32
	if closed {
		flags = closedFlag
	}
	dst[0] = at
	switch {
	case repeat && len(ids) > 1:
		dst[1] = repeatFlag | flags
	case len(ids) == 1:
		dst[1] = ids[0] | flags
	default:
		dst[1] = uint32(len(ids)) | multiFlag | flags
		copy(dst[2:], ids)
	}
}

// liveIn is the number of marks in a list that still count at time t: closures not ended,
// opportunities within their experiment's horizon.
func liveIn(list []uint32, t uint32, horizons []uint32) int {
	n := 0
	g := groups{list: list}
	for {
		at, head, ids, ok := g.next()
		if !ok {
			return n
		}
		for _, id := range ids {
			if (head&closedFlag != 0 && at > t) || (head&closedFlag == 0 && keep(at, id&idMask, t, horizons)) {
				n++
			}
		}
	}
}

// words is the stretch of sp.
func (sh *shard) words(sp span) []uint32 {
	return sh.blocks[sp.blk][sp.off : int(sp.off)+int(sp.n)]
}

// push appends a group to the shopper's list, whose place is sp (zero when they have none),
// and returns the new place; repeat says that ids are those of the list's last group. A list
// that must move gets room for room words (Admit's estimate of what the shopper can hold),
// and at least twice its old room.
func (sh *shard) push(h uint64, sp span, at uint32, closed bool, ids []uint32, repeat bool, room int, horizons []uint32) span {
	repeat = repeat && sp.n > 0
	n := int(sp.n) + groupLen(len(ids), repeat)
	if n > maxWords || len(ids) == 0 {
		return sp // cannot happen within the caps' bounds; never grow without one
	}
	if sp.n == 0 {
		sp.next = ^uint32(0)
	}
	sp.next = min(sp.next, groupEnd(at, closed, ids, horizons))
	if n <= int(sp.cap) {
		putGroup(sh.blocks[sp.blk][int(sp.off)+int(sp.n):], at, closed, ids, repeat)
		sp.n = uint16(n)
		sh.index.set(h, sp)
		return sp
	}
	room = min(max(room, n, 2*int(sp.cap)), maxWords)
	blk, off, ok := sh.carve(room)
	if !ok {
		return sp
	}
	dst := sh.blocks[blk][off : off+room]
	if sp.cap > 0 {
		copy(dst, sh.words(sp))
		sh.holes += int(sp.cap)
	}
	putGroup(dst[sp.n:], at, closed, ids, repeat)
	sp = span{next: sp.next, off: uint16(off), blk: uint16(blk), n: uint16(n), cap: uint16(room)}
	sh.index.set(h, sp)
	return sp
}

// carve takes a stretch of room words from the arena: from the last block when it has the
// room, else from a new block (the last one's unused rest becomes a hole).
func (sh *shard) carve(room int) (blk, off int, ok bool) {
	if last := len(sh.blocks) - 1; last >= 0 {
		b := sh.blocks[last]
		if cap(b)-len(b) >= room {
			sh.blocks[last] = b[:len(b)+room]
			return last, len(b), true
		}
	}
	if len(sh.blocks) >= maxBlocks {
		return 0, 0, false
	}
	size := firstBlock
	if last := len(sh.blocks) - 1; last >= 0 {
		sh.holes += cap(sh.blocks[last]) - len(sh.blocks[last])
		size = min(2*cap(sh.blocks[last]), blockWords)
	}
	size = max(size, room)
	sh.blocks = append(sh.blocks, make([]uint32, room, size))
	return len(sh.blocks) - 1, 0, true
}

// prune drops the shopper's groups whose marks have all expired (opportunities older than
// their experiment's horizon, closures that ended), and returns their place after it (zero,
// and forgotten, when none is left). Groups are squeezed in place; a repeated group whose
// group before it was dropped takes that group's numbers, in the room it left.
func (sh *shard) prune(h uint64, sp span, t uint32, horizons []uint32) span {
	if sp.cap == 0 || t < sp.next {
		return sp
	}
	list := sh.words(sp)
	w := 0
	sp.next = ^uint32(0)
	// src are the numbers a repeat stands for, where they are now; written says whether the
	// last group kept lists them.
	var src []uint32
	written := false
	for i := 0; i < len(list); {
		start := i
		at, head := list[i], list[i+1]
		var ids []uint32
		switch {
		case head&repeatFlag != 0:
			ids, i = src, i+2
		case head&multiFlag != 0:
			n := int(head & countMask)
			ids, i = list[i+2:i+2+n], i+2+n
		default:
			ids, i = list[i+1:i+2], i+2
		}
		end := groupEnd(at, head&closedFlag != 0, ids, horizons)
		if t >= end {
			if head&repeatFlag == 0 {
				src, written = ids, false // still where it was: nothing is written past w
			}
			continue
		}
		sp.next = min(sp.next, end)
		switch {
		case head&repeatFlag != 0 && written:
			list[w], list[w+1] = at, head
			w += 2
		case head&repeatFlag != 0:
			// Its numbers lie at or after w+2 (a dropped group's), or before w: copy moves
			// them either way.
			n := copy(list[w+2:], ids)
			list[w], list[w+1] = at, uint32(n)|multiFlag|(head&closedFlag)
			src, written = list[w+2:w+2+n], true
			w += 2 + n
		default:
			w += copy(list[w:], list[start:i])
			src, written = nil, false
			if head&multiFlag != 0 {
				src, written = list[w-len(ids):w], true
			}
		}
	}
	if w == 0 {
		sh.index.del(h)
		sh.holes += int(sp.cap)
		return span{}
	}
	sp.n = uint16(w)
	sh.index.set(h, sp)
	return sp
}

// keep says whether an opportunity of experiment id at time at still counts at time t.
func keep(at, id, t uint32, horizons []uint32) bool {
	return at > t || t-at < horizon(id, horizons)
}

// horizon is how long an experiment's opportunities are kept, in seconds.
func horizon(id uint32, horizons []uint32) uint32 {
	if int(id) < len(horizons) {
		return horizons[id]
	}
	return maxHorizon
}

// groupEnd is when the last of a group's marks stops counting: a closure's end, the latest
// of its opportunities' times plus their experiment's horizon.
func groupEnd(at uint32, closed bool, ids []uint32, horizons []uint32) uint32 {
	if closed {
		return at
	}
	e := uint32(0)
	for _, id := range ids {
		e = max(e, at+horizon(id&idMask, horizons))
	}
	return e
}

// compact rebuilds the arena without holes once they are most of it, each stretch keeping
// its room.
func (sh *shard) compact() {
	used := 0
	for _, b := range sh.blocks {
		used += len(b)
	}
	if sh.holes < 1024 || sh.holes < used/2 {
		return
	}
	old := sh.blocks
	sh.blocks, sh.holes = nil, 0
	for i := range sh.index.slots {
		s := &sh.index.slots[i]
		if s.h <= deadSlot {
			continue
		}
		blk, off, ok := sh.carve(int(s.sp.cap))
		if !ok { // maxBlocks blocks of live marks: 2^29 words in one shard, cannot happen
			sh.index.del(s.h)
			continue
		}
		copy(sh.blocks[blk][off:], old[s.sp.blk][s.sp.off:int(s.sp.off)+int(s.sp.n)])
		s.sp.blk, s.sp.off = uint16(blk), uint16(off)
	}
}
