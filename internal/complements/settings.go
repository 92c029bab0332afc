package complements

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/database"
	"github.com/xsell/xsell/internal/validate"
)

// Settings are the thresholds and limits a build uses. They live in the database (one row), so
// that whichever server builds, and `analyze complements --evaluate`, use the same.
type Settings struct {
	// WindowDays is how many days of orders, ending at the build, the model learns from.
	WindowDays int `json:"window_days" db:"window_days"`
	// MinOrders is the least number of orders a pair must share: the support threshold, as a
	// count so that it means the same in a small shop and a large one.
	MinOrders int `json:"min_orders" db:"min_orders"`
	// MinConfidence is the least share of a product's orders that also hold the complement.
	MinConfidence float64 `json:"min_confidence" db:"min_confidence"`
	// MinLift is the least lift; a pair must always be bought together more often than by
	// chance (lift above 1), whatever this says.
	MinLift float64 `json:"min_lift" db:"min_lift"`
	// MinLLR is the least log-likelihood ratio G²: 3.84 and 10.83 are the χ²(1) critical values
	// at 5% and 0.1%.
	MinLLR float64 `json:"min_llr" db:"min_llr"`
	// MaxComplements is how many complements are kept per product, best first.
	MaxComplements int `json:"max_complements" db:"max_complements"`
	// MaxBasket leaves out orders holding more distinct products than this: their pairs grow
	// with the square of their size (a wholesale order of 1,000 lines makes half a million)
	// and say little about what goes with what.
	MaxBasket int `json:"max_basket" db:"max_basket"`
	// Excluded are SKUs never offered as complements and given none (gift wrap, shipping
	// insurance, bags): products in nearly every basket that go with nothing in particular.
	Excluded []string `json:"excluded" db:"-"`
}

// Limits of the settings; beyond them a value is a typo rather than a policy.
const (
	MaxWindowDays     = 3650
	MaxComplementsCap = 50   // complements kept per product
	MaxBasketCap      = 1000 // products of an order the model still reads
	MaxExcluded       = 1000
)

// DefaultSettings are those a new database starts with (the migration's defaults).
var DefaultSettings = Settings{
	WindowDays: 90, MinOrders: 3, MinConfidence: 0, MinLift: 1, MinLLR: 10.83,
	MaxComplements: 10, MaxBasket: 50, Excluded: []string{},
}

// Window is the span of orders a build reads.
func (s Settings) Window() time.Duration { return time.Duration(s.WindowDays) * 24 * time.Hour }

// Validate reports every setting out of range, each with its field name.
func (s Settings) Validate() error {
	var p apperr.Problems
	intRange := func(field string, v, lo, hi int) {
		if v < lo || v > hi {
			p.Add(field, "out_of_range", "must be a whole number from %d to %d, got %d", lo, hi, v)
		}
	}
	intRange("window_days", s.WindowDays, 1, MaxWindowDays)
	intRange("min_orders", s.MinOrders, 1, math.MaxInt32)
	if !(s.MinConfidence >= 0 && s.MinConfidence <= 1) {
		p.Add("min_confidence", "out_of_range", "must be in [0, 1], got %v", s.MinConfidence)
	}
	if !(s.MinLift >= 0) || math.IsInf(s.MinLift, 0) {
		p.Add("min_lift", "out_of_range", "must be a number ≥ 0, got %v", s.MinLift)
	}
	if !(s.MinLLR >= 0) || math.IsInf(s.MinLLR, 0) {
		p.Add("min_llr", "out_of_range", "must be a number ≥ 0, got %v", s.MinLLR)
	}
	intRange("max_complements", s.MaxComplements, 1, MaxComplementsCap)
	intRange("max_basket", s.MaxBasket, 2, MaxBasketCap)
	if len(s.Excluded) > MaxExcluded {
		p.Add("excluded", "too_many", "at most %d SKUs, got %d", MaxExcluded, len(s.Excluded))
		return p.Err()
	}
	seen := make(map[string]int, len(s.Excluded))
	for i, sku := range s.Excluded {
		field := fmt.Sprintf("excluded[%d]", i)
		if !validate.SKU(&p, field, sku) {
			continue
		}
		if j, dup := seen[sku]; dup {
			p.Add(field, "duplicate", "%q is also excluded[%d]", sku, j)
		} else {
			seen[sku] = i
		}
	}
	return p.Err()
}

// normalize sorts the excluded SKUs, so that two equal settings compare and print equal.
func (s Settings) normalize() Settings {
	s.Excluded = slices.Sorted(slices.Values(s.Excluded))
	if s.Excluded == nil {
		s.Excluded = []string{}
	}
	return s
}

// StoredSettings are the settings with their version and time of change.
type StoredSettings struct {
	Settings
	// Version counts the changes; a PUT may name the version it edits.
	Version   int       `json:"version" db:"version"`
	UpdatedAt time.Time `json:"updated_at" db:"updated_at"`
}

const settingsColumns = `window_days, min_orders, min_confidence, min_lift, min_llr, max_complements, max_basket, excluded, version, updated_at`

// settingsRow scans the settings row; excluded is a text[].
type settingsRow struct {
	StoredSettings
	ExcludedArray pq.StringArray `db:"excluded"`
}

func (r settingsRow) stored() StoredSettings {
	s := r.StoredSettings
	s.Excluded = []string(r.ExcludedArray)
	s.Settings = s.Settings.normalize()
	return s
}

// queryer is what reading settings needs: a pool or a transaction.
type queryer interface {
	GetContext(ctx context.Context, dest any, query string, args ...any) error
}

// LoadSettings reads the current settings.
func LoadSettings(ctx context.Context, q queryer) (StoredSettings, error) {
	var r settingsRow
	err := q.GetContext(ctx, &r, `SELECT `+settingsColumns+` FROM complement_settings`)
	if errors.Is(err, sql.ErrNoRows) {
		return StoredSettings{}, errors.New("complement_settings has no row: the migration makes one")
	}
	if err != nil {
		return StoredSettings{}, database.Wrap(err, "reading the complements settings")
	}
	return r.stored(), nil
}

// SaveSettings replaces the settings after validating them. With ifVersion > 0 it changes
// them only if they are still at that version (a conflict otherwise). The next build uses
// them; the snapshot being served keeps the settings it was built with.
func SaveSettings(ctx context.Context, q queryer, s Settings, ifVersion int, now time.Time) (StoredSettings, error) {
	if err := s.Validate(); err != nil {
		return StoredSettings{}, err
	}
	s = s.normalize()
	var r settingsRow
	err := q.GetContext(ctx, &r, `UPDATE complement_settings
		SET window_days = $1, min_orders = $2, min_confidence = $3, min_lift = $4, min_llr = $5,
		    max_complements = $6, max_basket = $7, excluded = $8, version = version + 1, updated_at = $9
		WHERE $10 = 0 OR version = $10
		RETURNING `+settingsColumns,
		s.WindowDays, s.MinOrders, s.MinConfidence, s.MinLift, s.MinLLR, s.MaxComplements, s.MaxBasket,
		pq.StringArray(s.Excluded), now, ifVersion)
	if errors.Is(err, sql.ErrNoRows) {
		return StoredSettings{}, apperr.New(apperr.VersionConflict, "the complements settings changed since version %d: read them again", ifVersion)
	}
	if err != nil {
		return StoredSettings{}, database.Wrap(err, "saving the complements settings")
	}
	return r.stored(), nil
}
