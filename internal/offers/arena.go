package offers

// A shard keeps its shoppers' marks in an arena of its own, and each shopper's place in it in
// a map of plain numbers: neither holds a pointer, so the garbage collector never walks a
// million shoppers' state, and no shopper costs an allocation of their own.
//
// The arena is a list of blocks that never move: a shopper's stretch lies in one block, and a
// new one is carved from the last block, or from a new block when the last is full, so that
// growing the arena never copies it. A shopper's first stretch is sized for what their caps
// let them hold (Admit's room), so that their marks do not move as they come; a list that
// outgrows its stretch anyway (caps raised, more experiments) moves to one twice as large.
// The holes left behind are counted and squeezed out by the sweep (compact).

// span is a shopper's place in the arena: marks [off, off+n) of block blk, room for cap.
// Before next (Unix seconds) none of them can have expired, so that a request need not look.
type span struct {
	next   uint32
	off    uint16
	blk    uint16
	n, cap uint16
}

const (
	// maxMarks bounds one shopper's list: a shopper at every cap of the experiments they can
	// be in holds far fewer (caps allow at most MaxCapOffers each).
	maxMarks = 1<<16 - 1
	// firstBlock and blockMarks size the blocks: a shard's first is small (most shards of a
	// quiet server hold few shoppers), each next one twice the last, up to blockMarks (32 kB,
	// the largest allocation Go serves from its size classes). A stretch longer than that
	// gets a block of its own.
	firstBlock = 256
	blockMarks = 4096
	// maxBlocks bounds a shard's blocks (their number is a span's blk).
	maxBlocks = 1<<16 - 1
)

// marks is the stretch of sp.
func (sh *shard) marks(sp span) []mark {
	return sh.blocks[sp.blk][sp.off : int(sp.off)+int(sp.n)]
}

// push appends marks to the shopper's list, whose place is sp (zero when they have none),
// and returns the new place. A list that must move gets room for room marks (Admit's
// estimate of what the shopper can hold), and at least twice its old room.
func (sh *shard) push(h uint64, sp span, ks []mark, room int, horizons []uint32) span {
	n := int(sp.n) + len(ks)
	if n > maxMarks {
		return sp // cannot happen within the caps' bounds; never grow without one
	}
	if sp.n == 0 {
		sp.next = ^uint32(0)
	}
	for _, k := range ks {
		sp.next = min(sp.next, expiry(k, horizons))
	}
	if n <= int(sp.cap) {
		copy(sh.blocks[sp.blk][int(sp.off)+int(sp.n):], ks)
		sp.n = uint16(n)
		sh.index[h] = sp
		return sp
	}
	room = min(max(room, n, 2*int(sp.cap)), maxMarks)
	blk, off, ok := sh.carve(room)
	if !ok {
		return sp
	}
	dst := sh.blocks[blk][off : off+room]
	if sp.cap > 0 {
		copy(dst, sh.marks(sp))
		sh.holes += int(sp.cap)
	}
	copy(dst[sp.n:], ks)
	sp = span{next: sp.next, off: uint16(off), blk: uint16(blk), n: uint16(n), cap: uint16(room)}
	sh.index[h] = sp
	return sp
}

// carve takes a stretch of room marks from the arena: from the last block when it has the
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
		size = min(2*cap(sh.blocks[last]), blockMarks)
	}
	size = max(size, room)
	sh.blocks = append(sh.blocks, make([]mark, room, size))
	return len(sh.blocks) - 1, 0, true
}

// prune drops the shopper's opportunities older than their experiment's horizon and their
// closures that ended, and returns their place after it (zero, and forgotten, when none is
// left).
func (sh *shard) prune(h uint64, sp span, t uint32, horizons []uint32) span {
	if sp.cap == 0 || t < sp.next {
		return sp
	}
	list := sh.marks(sp)
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
		return span{}
	}
	sp.n = uint16(len(kept))
	sh.index[h] = sp
	return sp
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
	for h, sp := range sh.index {
		blk, off, ok := sh.carve(int(sp.cap))
		if !ok { // maxBlocks blocks of live marks: 2^28 marks in one shard, cannot happen
			delete(sh.index, h)
			continue
		}
		copy(sh.blocks[blk][off:], old[sp.blk][sp.off:int(sp.off)+int(sp.n)])
		sp.blk, sp.off = uint16(blk), uint16(off)
		sh.index[h] = sp
	}
}
