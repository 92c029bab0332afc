package offers

import (
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xsell/xsell/internal/experiments"
)

// Counter is the per-shopper memory of the offer pipeline (experiments.Limiter): the
// opportunities counted against frequency caps and the offers closed by per-shopper limits.
// A request reads and updates it under one shard lock; nothing on the request path touches
// the database. What this server counts is shared with the others through Postgres by Feed,
// which also brings theirs in (docs/offers.md gives the delay and the memory).
type Counter struct {
	seed   maphash.Seed
	shards [shardCount]shard
	ids    idTable
	// pending is the number of marks waiting in the shards for Feed to write; past
	// maxPending new ones are dropped (and counted) rather than grow without bound while the
	// database is away.
	pending    atomic.Int64
	maxPending int64
	dropped    atomic.Int64
}

const shardCount = 256

// shard holds the shoppers whose hash falls in it, and the marks counted here since the last
// flush. The padding keeps two shards' locks off one cache line.
type shard struct {
	mu     sync.Mutex
	index  table      // shopper → their marks in the arena (arena.go, table.go)
	blocks [][]uint32 // the arena
	holes  int        // words of the arena no shopper's list uses
	rows   []pendingRow
	ids    []uint32 // the experiment numbers of rows, each row a stretch of them
	_      [64]byte
}

// pendingRow is what one request counted here: experiments ids[off:off+n] of its shard.
type pendingRow struct {
	shopper string
	at      uint32
	off, n  uint32
}

// outRow is what one request counted here, as the feed takes it to write.
type outRow struct {
	shopper string
	at      uint32
	ids     []uint32
}

// DefaultMaxPending bounds the marks waiting to be written: 2,000,000 (about 64 MB).
const DefaultMaxPending = 2_000_000

// NewCounter returns an empty Counter; maxPending bounds the marks waiting for Feed to write
// (DefaultMaxPending when 0).
func NewCounter(maxPending int) *Counter {
	if maxPending <= 0 {
		maxPending = DefaultMaxPending
	}
	c := &Counter{seed: maphash.MakeSeed(), maxPending: int64(maxPending)}
	c.ids.init()
	return c
}

// ID implements experiments.Limiter: the experiment's number, and from now on its marks are
// kept for horizon (its longest window).
func (c *Counter) ID(key string, horizon time.Duration) uint32 { return c.ids.id(key, horizon) }

// unix is t in whole seconds, as marks keep it.
func unix(t time.Time) uint32 { return uint32(max(t.Unix(), 0)) }

// Admit implements experiments.Limiter.
func (c *Counter) Admit(shopperID string, at time.Time, count bool, global *experiments.FrequencyCap, cands []experiments.Candidate) {
	t := unix(at)
	h := maphash.String(c.seed, shopperID)
	sh := &c.shards[h%shardCount]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	hz := c.ids.horizons()
	sp := sh.prune(h, sh.index.get(h), t, hz)
	var list []uint32
	if sp.n > 0 {
		list = sh.words(sp)
	}
	var tl tally
	tl.index(cands)
	tl.add(list, t)
	used := 0
	if global != nil {
		used = tl.total(global.Per)
	}
	var buf [32]uint32
	added := buf[:0] // the experiments of this request's opportunities, pushed as one group
	for i := range cands {
		cand := &cands[i]
		capped := global != nil && used >= global.Offers
		if o := tl.owner(i); !capped && o >= 0 {
			capped = cand.Limits.Reached(&tl.n[o])
		} else if !capped {
			n := scan(cand.ID, list, added, t)
			capped = cand.Limits.Reached(&n)
		}
		if capped {
			cand.Result = experiments.VerdictCapped
			continue
		}
		cand.Result = experiments.VerdictShow
		if tl.closedFor(i, cands, list, t) {
			cand.Result = experiments.VerdictClosed
		}
		if count {
			added = append(added, cand.ID&idMask)
			tl.bump(i)
			used++
		}
	}
	if len(added) == 0 {
		return
	}
	repeat := len(added) > 1 && slices.Equal(tl.last, added)
	room := 0
	if int(sp.n)+groupLen(len(added), repeat) > int(sp.cap) {
		room = roomFor(cands, global)
	}
	sh.push(h, sp, t, false, added, repeat, room, hz)
	if c.pending.Add(int64(len(added))) > c.maxPending {
		// The database has been away too long: other servers will not learn of these.
		c.pending.Add(-int64(len(added)))
		c.dropped.Add(int64(len(added)))
		return
	}
	off := uint32(len(sh.ids))
	sh.ids = append(sh.ids, added...)
	sh.rows = append(sh.rows, pendingRow{shopper: shopperID, at: t, off: off, n: uint32(len(added))})
}

// roomPerCap bounds what roomFor counts for one experiment: a cap above it is reached by
// fewer shoppers, whose lists then move (and double) rather than every shopper reserving it.
const roomPerCap = 8

// roomFor is how many words a shopper given these candidates can come to hold, as far as
// their caps tell, when they come back with the same candidates: one group listing them, and
// the time and head of a group for each request that can still count one — as many as the
// largest of their caps (at most roomPerCap), or of the global cap's offers. A shopper whose
// requests count other experiments each time outgrows it, and moves.
func roomFor(cands []experiments.Candidate, global *experiments.FrequencyCap) int {
	groups := 1
	for i := range cands {
		groups = max(groups, min(cands[i].Limits.Largest(), roomPerCap))
	}
	if global != nil {
		groups = max(groups, min(global.Offers, roomPerCap))
	}
	return len(cands) + 2*groups
}

// apply adds marks another server counted, or closures until at, to a shopper: ids are
// experiments' numbers.
func (c *Counter) apply(shopperID string, ids []uint32, at uint32, closed bool) {
	h := maphash.String(c.seed, shopperID)
	sh := &c.shards[h%shardCount]
	sh.mu.Lock()
	sh.push(h, sh.index.get(h), at, closed, ids, false, groupLen(len(ids), false), c.ids.horizons())
	sh.mu.Unlock()
}

// take removes and returns what was counted here since the last take.
func (c *Counter) take() []outRow {
	var out []outRow
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		rows, ids := sh.rows, sh.ids
		// The taken buffers are the writer's now; the next ones start at their size, so that
		// a steady stream grows them once per flush, and a burst's size is not kept.
		sh.rows, sh.ids = make([]pendingRow, 0, len(rows)), make([]uint32, 0, len(ids))
		sh.mu.Unlock()
		for _, r := range rows {
			out = append(out, outRow{shopper: r.shopper, at: r.at, ids: ids[r.off : r.off+r.n]})
		}
	}
	return out
}

// marksIn is the number of marks in rows.
func marksIn(rows []outRow) int {
	n := 0
	for _, r := range rows {
		n += len(r.ids)
	}
	return n
}

// giveBack returns rows a failed write could not store, to be written with the next ones.
func (c *Counter) giveBack(rows []outRow) {
	sh := &c.shards[0]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for _, r := range rows {
		sh.rows = append(sh.rows, pendingRow{shopper: r.shopper, at: r.at, off: uint32(len(sh.ids)), n: uint32(len(r.ids))})
		sh.ids = append(sh.ids, r.ids...)
	}
}

// sweep prunes every shopper's marks, forgets shoppers left with none and squeezes the holes
// out of the arenas; it returns how many shoppers and marks remain.
func (c *Counter) sweep(now time.Time) (shoppers, total int) {
	t := unix(now)
	hz := c.ids.horizons()
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for _, s := range sh.index.slots {
			if s.h > deadSlot {
				sh.prune(s.h, s.sp, t, hz)
			}
		}
		sh.index.tidy()
		sh.compact()
		for _, s := range sh.index.slots {
			if s.h > deadSlot {
				total += liveIn(sh.words(s.sp), t, hz)
			}
		}
		shoppers += sh.index.used
		sh.mu.Unlock()
	}
	return shoppers, total
}
