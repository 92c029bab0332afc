package offers

import (
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/database"
)

// NewSpenderOneByOne is NewSpender charging every event one by one, the path a batch takes
// without chargeSet, to compare the two.
func NewSpenderOneByOne(db *sqlx.DB, budgets *Budgets, q *database.Quarantine, every time.Duration, log *slog.Logger) *Spender {
	s := NewSpender(db, budgets, q, every, log)
	s.oneByOne = true
	return s
}

// DropPending forgets the marks waiting to be written, for measuring the counter alone.
func (c *Counter) DropPending() {
	c.pending.Add(-int64(marksIn(c.take())))
}

// Sweep is the feed's periodic sweep: it prunes, forgets and compacts, and returns how many
// shoppers and marks remain.
func (c *Counter) Sweep(now time.Time) (shoppers, marks int) { return c.sweep(now) }
