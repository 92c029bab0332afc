package offers

import "time"

// DropPending forgets the marks waiting to be written, for measuring the counter alone.
func (c *Counter) DropPending() {
	c.pending.Add(-int64(marksIn(c.take())))
}

// Sweep is the feed's periodic sweep: it prunes, forgets and compacts, and returns how many
// shoppers and marks remain.
func (c *Counter) Sweep(now time.Time) (shoppers, marks int) { return c.sweep(now) }
