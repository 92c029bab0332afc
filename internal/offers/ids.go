package offers

import (
	"sync"
	"sync/atomic"
	"time"
)

// idTable numbers experiment keys for the counter: a mark holds a number, not a key. Numbers
// are never reused in the life of the process; each has a horizon, how long its
// opportunities are kept (the longest window that counts them).
type idTable struct {
	mu   sync.RWMutex
	byID []string
	ids  map[string]uint32
	// hz is the horizons by number, in seconds, replaced whole when one changes so that
	// readers need no lock.
	hz atomic.Pointer[[]uint32]
}

func (t *idTable) init() {
	t.ids = map[string]uint32{}
	t.hz.Store(&[]uint32{})
}

// id numbers key, keeping its marks for horizon from now on.
func (t *idTable) id(key string, horizon time.Duration) uint32 {
	h := uint32(min(max(horizon, 0), maxHorizon*time.Second) / time.Second)
	t.mu.Lock()
	defer t.mu.Unlock()
	n, ok := t.ids[key]
	if !ok {
		n = uint32(len(t.byID))
		t.ids[key] = n
		t.byID = append(t.byID, key)
	}
	old := *t.hz.Load()
	if int(n) < len(old) && old[n] == h {
		return n
	}
	hz := make([]uint32, len(t.byID))
	copy(hz, old)
	hz[n] = h
	t.hz.Store(&hz)
	return n
}

// lookup is the number of a key seen before.
func (t *idTable) lookup(key string) (uint32, bool) {
	t.mu.RLock()
	n, ok := t.ids[key]
	t.mu.RUnlock()
	return n, ok
}

// key is the key of a number.
func (t *idTable) key(n uint32) string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.byID[n]
}

// horizons are the horizons by number, in seconds.
func (t *idTable) horizons() []uint32 { return *t.hz.Load() }
