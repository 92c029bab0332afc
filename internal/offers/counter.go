package offers

import (
	"hash/maphash"
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
	mu       sync.Mutex
	shoppers map[uint64]*marks
	out      []outMark
	_        [64]byte
}

// marks is one shopper's: opportunities (at = when) and closures (at = until, closedBit set).
type marks struct{ list []mark }

// mark is 8 bytes: a time in Unix seconds and the experiment's number.
type mark struct {
	at uint32
	id uint32
}

// closedBit marks a closure: the shopper's offer of experiment id is closed until at.
const closedBit = 1 << 31

// outMark is a mark counted here, to be written to the feed.
type outMark struct {
	shopper string
	at      uint32
	id      uint32
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
	for i := range c.shards {
		c.shards[i].shoppers = map[uint64]*marks{}
	}
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
	m := sh.shoppers[h]
	var tl tally
	tl.index(cands)
	if m != nil {
		m.prune(t, c.ids.horizons())
		tl.add(m.list, t, cands)
	}
	used := 0
	if global != nil {
		used = tl.total(global.Per)
	}
	for i := range cands {
		cand := &cands[i]
		n := tl.count(i, cands, m, t)
		capped := global != nil && used >= global.Offers
		for _, cp := range cand.Caps {
			capped = capped || (cp != nil && n[class(cp.Per)] >= cp.Offers)
		}
		if capped {
			cand.Result = experiments.OfferCapped
			continue
		}
		cand.Result = experiments.OfferShow
		if tl.closedFor(i, cands, m, t) {
			cand.Result = experiments.OfferBudgetExhausted
		}
		if !count {
			continue
		}
		if m == nil {
			m = &marks{}
			sh.shoppers[h] = m
		}
		m.list = append(m.list, mark{at: t, id: cand.ID})
		tl.bump(i, cands)
		used++
		if c.pending.Add(1) > c.maxPending {
			c.pending.Add(-1)
			c.dropped.Add(1)
			continue
		}
		sh.out = append(sh.out, outMark{shopper: shopperID, at: t, id: cand.ID})
	}
}

// apply adds marks another server counted (or a closure) to a shopper.
func (c *Counter) apply(shopperID string, ids []uint32, at uint32) {
	h := maphash.String(c.seed, shopperID)
	sh := &c.shards[h%shardCount]
	sh.mu.Lock()
	m := sh.shoppers[h]
	if m == nil {
		m = &marks{}
		sh.shoppers[h] = m
	}
	for _, id := range ids {
		m.list = append(m.list, mark{at: at, id: id})
	}
	sh.mu.Unlock()
}

// take removes and returns every mark counted here since the last take.
func (c *Counter) take() []outMark {
	var out []outMark
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		out = append(out, sh.out...)
		sh.out = sh.out[:0]
		sh.mu.Unlock()
	}
	return out
}

// giveBack returns marks a failed write could not store, to be written with the next ones.
func (c *Counter) giveBack(ms []outMark) {
	for len(ms) > 0 {
		sh := &c.shards[0]
		n := min(len(ms), 4096)
		sh.mu.Lock()
		sh.out = append(sh.out, ms[:n]...)
		sh.mu.Unlock()
		ms = ms[n:]
	}
}

// sweep prunes every shopper's marks and forgets shoppers left with none; it returns how many
// shoppers and marks remain.
func (c *Counter) sweep(now time.Time) (shoppers, total int) {
	t := unix(now)
	hz := c.ids.horizons()
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for h, m := range sh.shoppers {
			m.prune(t, hz)
			if len(m.list) == 0 {
				delete(sh.shoppers, h)
				continue
			}
			shoppers++
			total += len(m.list)
		}
		sh.mu.Unlock()
	}
	return shoppers, total
}

// prune drops opportunities older than their experiment's horizon and closures that ended.
func (m *marks) prune(t uint32, horizons []uint32) {
	kept := m.list[:0]
	for _, k := range m.list {
		if k.id&closedBit != 0 {
			if k.at > t {
				kept = append(kept, k)
			}
			continue
		}
		hz := uint32(maxHorizon)
		if int(k.id) < len(horizons) {
			hz = horizons[k.id]
		}
		if k.at > t || t-k.at < hz {
			kept = append(kept, k)
		}
	}
	clear(m.list[len(kept):])
	m.list = kept
	if cap(m.list) > 64 && len(m.list) < cap(m.list)/4 {
		m.list = append([]mark(nil), m.list...)
	}
}
