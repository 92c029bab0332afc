package loyalty

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/database"
)

// Program is the loyalty program's settings. The defaults, set by the migration, are
// DefaultProgram's: 1 point per major currency unit, a point worth 1 minor unit, expiry after
// 365 days and no pending period.
type Program struct {
	// EarnRate is the points per major currency unit of an order's amount after discount.
	EarnRate int `json:"earn_rate" db:"earn_rate"`
	// PointValue is what one point costs the business, in minor units (for offer_cost).
	PointValue int `json:"point_value" db:"point_value"`
	// ExpiryDays is how long a lot stays spendable once available; 0 means never.
	ExpiryDays int `json:"expiry_days" db:"expiry_days"`
	// PendingDays is how long order points wait (the return window) before they are spendable.
	PendingDays int `json:"pending_days" db:"pending_days"`
	// UpdatedAt is when the settings last changed.
	UpdatedAt time.Time `json:"updated_at" db:"updated_at"`
}

// Limits of the program settings; beyond them a value is a typo rather than a policy.
const (
	MaxEarnRate    = 10_000    // points per major unit
	MaxPointValue  = 1_000_000 // minor units per point
	MaxExpiryDays  = 3650      // ten years
	MaxPendingDays = 365
)

// DefaultProgram is the program a new database starts with.
var DefaultProgram = Program{EarnRate: 1, PointValue: 1, ExpiryDays: 365, PendingDays: 0}

// Validate reports every setting out of range, each with its field name.
func (p Program) Validate() error {
	var probs apperr.Problems
	check := func(field string, v, max int) {
		if v < 0 || v > max {
			probs.Add(field, "out_of_range", "must be between 0 and %d", max)
		}
	}
	check("earn_rate", p.EarnRate, MaxEarnRate)
	check("point_value", p.PointValue, MaxPointValue)
	check("expiry_days", p.ExpiryDays, MaxExpiryDays)
	check("pending_days", p.PendingDays, MaxPendingDays)
	if probs.Len() == 0 && p.ExpiryDays != 0 && p.ExpiryDays <= p.PendingDays {
		// Points would expire before or when they became spendable.
		probs.Add("expiry_days", "out_of_range", "must be 0 (never) or more than pending_days (%d)", p.PendingDays)
	}
	return probs.Err()
}

// expiry is how long a lot stays spendable, or 0 for never.
func (p Program) expiry() time.Duration { return time.Duration(p.ExpiryDays) * 24 * time.Hour }

// pending is the wait before order points become spendable.
func (p Program) pending() time.Duration { return time.Duration(p.PendingDays) * 24 * time.Hour }

const programColumns = `earn_rate, point_value, expiry_days, pending_days, updated_at`

// Program returns the current settings.
func (s *Service) Program(ctx context.Context) (Program, error) {
	p, err := loadProgram(ctx, s.db)
	return p, database.Wrap(err, "reading the loyalty program")
}

func loadProgram(ctx context.Context, q queryer) (Program, error) {
	var p Program
	err := q.GetContext(ctx, &p, `SELECT `+programColumns+` FROM loyalty_program`)
	if errors.Is(err, sql.ErrNoRows) {
		return Program{}, fmt.Errorf("loyalty_program has no row: the migration makes one")
	}
	return p, err
}

// SetProgram replaces the settings after validating them. Lots already earned keep the expiry
// and pending period they were made with.
func (s *Service) SetProgram(ctx context.Context, p Program) (Program, error) {
	if err := p.Validate(); err != nil {
		return Program{}, err
	}
	var out Program
	err := s.db.GetContext(ctx, &out, `UPDATE loyalty_program
		SET earn_rate = $1, point_value = $2, expiry_days = $3, pending_days = $4, updated_at = $5
		RETURNING `+programColumns, p.EarnRate, p.PointValue, p.ExpiryDays, p.PendingDays, s.now())
	return out, database.Wrap(err, "changing the loyalty program")
}
