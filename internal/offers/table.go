package offers

// table is a shard's index of its shoppers, the hash of a shopper id to their span, in one
// array probed linearly: finding a returning shopper reads one cache line besides the
// shard's own, where Go's map reads its header, a group's control word and the slot (on a
// capped request these lines are cold; docs/benchmarks.md compares the two). Removed entries
// leave a marker until the array is rebuilt, so that entries never move while the sweep
// walks them.
type table struct {
	slots []slot
	used  int // live entries
	dead  int // slots of removed entries
}

type slot struct {
	h  uint64
	sp span
}

// Hashes 0 and 1 mark an empty slot and a removed one: a shopper hashing to either is
// keyed 2 or 3 (keyOf).
const (
	emptySlot = 0
	deadSlot  = 1
	minSlots  = 8
)

// keyOf is the key of hash h in a table.
func keyOf(h uint64) uint64 {
	if h <= deadSlot {
		return h + 2
	}
	return h
}

// home is where the probe for key k starts; the low bits chose the shard.
func (t *table) home(k uint64) int { return int(k>>8) & (len(t.slots) - 1) }

// get is the span of hash h, zero when it has none.
func (t *table) get(h uint64) span {
	if len(t.slots) == 0 {
		return span{}
	}
	k, mask := keyOf(h), len(t.slots)-1
	for i := t.home(k); ; i = (i + 1) & mask {
		switch t.slots[i].h {
		case k:
			return t.slots[i].sp
		case emptySlot:
			return span{}
		}
	}
}

// set gives hash h the span sp.
func (t *table) set(h uint64, sp span) {
	k := keyOf(h)
	if len(t.slots) > 0 {
		// An update first: entries never move while the sweep walks them.
		mask := len(t.slots) - 1
		for i := t.home(k); t.slots[i].h != emptySlot; i = (i + 1) & mask {
			if t.slots[i].h == k {
				t.slots[i].sp = sp
				return
			}
		}
	}
	if (t.used+t.dead+1)*4 > len(t.slots)*3 {
		t.rebuild(t.used + 1)
	}
	mask := len(t.slots) - 1
	free := -1
	for i := t.home(k); ; i = (i + 1) & mask { // k is not in the table: the loop above looked
		switch t.slots[i].h {
		case deadSlot:
			if free < 0 {
				free = i
			}
		case emptySlot:
			if free < 0 {
				free = i
			} else {
				t.dead--
			}
			t.slots[free] = slot{h: k, sp: sp}
			t.used++
			return
		}
	}
}

// del removes hash h.
func (t *table) del(h uint64) {
	if len(t.slots) == 0 {
		return
	}
	k, mask := keyOf(h), len(t.slots)-1
	for i := t.home(k); ; i = (i + 1) & mask {
		switch t.slots[i].h {
		case k:
			t.slots[i].h = deadSlot
			t.used--
			t.dead++
			return
		case emptySlot:
			return
		}
	}
}

// rebuild lays the live entries out again in an array at most half full with n of them,
// without removed ones.
func (t *table) rebuild(n int) {
	size := minSlots
	for size < 2*n {
		size *= 2
	}
	old := t.slots
	t.slots, t.used, t.dead = make([]slot, size), 0, 0
	mask := size - 1
	for _, s := range old {
		if s.h <= deadSlot {
			continue
		}
		i := t.home(s.h)
		for t.slots[i].h != emptySlot {
			i = (i + 1) & mask
		}
		t.slots[i] = s
		t.used++
	}
}

// tidy rebuilds the table when removed entries outnumber live ones, so that a shard whose
// shoppers left gives its memory back.
func (t *table) tidy() {
	if t.dead > t.used && len(t.slots) > minSlots {
		t.rebuild(t.used)
	}
}
