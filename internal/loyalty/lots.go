package loyalty

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/database"
)

// Lot is one earn's points as they stand: how many are left and when they expire.
type Lot struct {
	ID          int64      `json:"id" db:"id"`
	EntryID     int64      `json:"transaction_id" db:"entry_id"`
	Points      int64      `json:"points" db:"points"`
	Remaining   int64      `json:"remaining" db:"remaining"`
	EarnedAt    time.Time  `json:"earned_at" db:"earned_at"`
	AvailableAt time.Time  `json:"available_at" db:"available_at"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty" db:"expires_at"`
}

// MaxLots is the most lots Lots returns.
const MaxLots = 500

// Lots returns a shopper's lots that still hold points, those that expire first first (as
// redemptions spend them), at most MaxLots.
func (s *Service) Lots(ctx context.Context, shopperID string) ([]Lot, error) {
	if err := CheckShopperID(shopperID); err != nil {
		return nil, err
	}
	out := []Lot{}
	if err := s.db.SelectContext(ctx, &out, `SELECT id, entry_id, points, remaining, earned_at, available_at, expires_at
		FROM loyalty_lots WHERE shopper_id = $1 AND remaining > 0
		ORDER BY expires_at NULLS LAST, id LIMIT $2`, shopperID, MaxLots); err != nil {
		return nil, database.Wrap(err, "reading the lots of %q", shopperID)
	}
	for i := range out {
		l := &out[i]
		l.EarnedAt, l.AvailableAt = l.EarnedAt.UTC(), l.AvailableAt.UTC()
		if l.ExpiresAt != nil {
			t := l.ExpiresAt.UTC()
			l.ExpiresAt = &t
		}
	}
	return out, nil
}

// Transaction returns one ledger entry.
func (s *Service) Transaction(ctx context.Context, id int64) (Transaction, error) {
	var t Transaction
	err := s.db.GetContext(ctx, &t, `SELECT `+transactionColumns+`
		FROM loyalty_entries e LEFT JOIN loyalty_lots l ON l.entry_id = e.id WHERE e.id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Transaction{}, apperr.New(apperr.NotFound, "no transaction %d", id)
	}
	if err != nil {
		return Transaction{}, database.Wrap(err, "reading transaction %d", id)
	}
	t.normalise()
	return t, nil
}
