package complements

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/database"
)

// NotifyChannel is the Postgres channel on which a committed build announces its version.
const NotifyChannel = "xsell_complements"

// buildLockKey is the transaction-level advisory lock a build holds, so that one server of the
// fleet builds at a time: the first 8 bytes of sha256("xsell.complements.build"), sign bit
// cleared.
const buildLockKey int64 = 0x4ccbedb12d89ce57

// KeepSnapshots is how many snapshots stay in the database: the newest, which servers serve,
// and the ones before it, for comparison and for a server still loading one.
const KeepSnapshots = 3

// ErrBusy means that another server is building a snapshot right now.
var ErrBusy = errors.New("another server is building the complements model")

// Snapshot describes one build of the model.
type Snapshot struct {
	// Version numbers the builds; a larger version is a newer build.
	Version     int64     `json:"version" db:"version"`
	BuiltAt     time.Time `json:"built_at" db:"built_at"`
	WindowStart time.Time `json:"window_start" db:"window_start"`
	WindowEnd   time.Time `json:"window_end" db:"window_end"`
	Settings    Settings  `json:"settings" db:"-"`
	// Orders is how many orders the model learned from; SkippedOrders held more than
	// MaxBasket products and were left out.
	Orders        int64 `json:"orders" db:"orders"`
	SkippedOrders int64 `json:"skipped_orders" db:"skipped_orders"`
	// Catalog is how many products were bought in the window; Products how many of them have
	// at least one complement.
	Catalog  int   `json:"catalog" db:"catalog"`
	Products int   `json:"products" db:"products"`
	Pairs    int64 `json:"pairs" db:"pairs"`
	// BuildMillis is how long the build took in the database.
	BuildMillis int `json:"build_ms" db:"build_ms"`

	SettingsJSON []byte `json:"-" db:"settings"`
}

// Coverage is the share of the catalog with at least one complement (0 for an empty catalog).
func (s *Snapshot) Coverage() float64 {
	if s.Catalog == 0 {
		return 0
	}
	return float64(s.Products) / float64(s.Catalog)
}

const snapshotColumns = `version, built_at, window_start, window_end, settings, orders, skipped_orders, catalog, products, pairs, build_ms`

// Builder builds snapshots of the model in Postgres.
type Builder struct {
	db    *sqlx.DB
	clock func() time.Time
	// Timeout bounds a build's statements, instead of the pool's request-sized timeout.
	Timeout time.Duration
}

// NewBuilder returns a builder over db; clock is the time a build's window ends at
// (time.Now when nil).
func NewBuilder(db *sqlx.DB, clock func() time.Time) *Builder {
	if clock == nil {
		clock = time.Now
	}
	return &Builder{db: db, clock: clock, Timeout: 30 * time.Minute}
}

// Build builds a snapshot from the orders of the settings' window ending now, stores it, keeps
// the newest KeepSnapshots and announces the new version on NotifyChannel at commit. With
// olderThan > 0 it builds only when the newest snapshot is at least that old, and returns nil
// otherwise. It returns ErrBusy when another server holds the build lock.
func (b *Builder) Build(ctx context.Context, olderThan time.Duration) (*Snapshot, error) {
	tx, err := b.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, database.Wrap(err, "building complements")
	}
	defer tx.Rollback()
	var locked bool
	if err := tx.GetContext(ctx, &locked, `SELECT pg_try_advisory_xact_lock($1)`, buildLockKey); err != nil {
		return nil, database.Wrap(err, "building complements: taking the build lock")
	}
	if !locked {
		return nil, ErrBusy
	}
	now := b.clock().UTC()
	if olderThan > 0 {
		var last time.Time
		err := tx.GetContext(ctx, &last, `SELECT built_at FROM complement_snapshots ORDER BY version DESC LIMIT 1`)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, database.Wrap(err, "building complements: reading the last build")
		case now.Sub(last) < olderThan:
			return nil, nil
		}
	}
	// The pool's statement timeout is sized for requests; a build of a large shop reads
	// every order line of the window.
	if _, err := tx.ExecContext(ctx, `SELECT set_config('statement_timeout', $1, true)`, strconv.FormatInt(b.Timeout.Milliseconds(), 10)); err != nil {
		return nil, database.Wrap(err, "building complements")
	}
	settings, err := LoadSettings(ctx, tx)
	if err != nil {
		return nil, err
	}
	snap, err := build(ctx, tx, settings.Settings, now.Add(-settings.Window()), now)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM complement_snapshots WHERE version <= $1`, snap.Version-KeepSnapshots); err != nil {
		return nil, database.Wrap(err, "building complements: deleting old snapshots")
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, strconv.FormatInt(snap.Version, 10)); err != nil {
		return nil, database.Wrap(err, "building complements")
	}
	if err := tx.Commit(); err != nil {
		return nil, database.Wrap(err, "building complements: committing")
	}
	return snap, nil
}

// buildSQL counts, measures and ranks in one statement, inserting each product's best
// complements under version $10, and returns the snapshot's totals.
var buildSQL = `WITH
baskets AS MATERIALIZED (` + fill(basketsSQL, map[string]string{"from": "$1", "until": "$2", "excluded": "$5"}) + `),` +
	fill(countsCTE, map[string]string{"baskets": "baskets", "max_basket": "$3", "min_orders": "$4"}) + `,
measured AS (` + fill(measuredSQL, map[string]string{"pairs": "pairs"}) + `),` +
	fill(rankedCTE, map[string]string{"measured": "measured", "min_orders": "$4", "min_confidence": "$6", "min_lift": "$7", "min_llr": "$8"}) + `,
ins AS (
    INSERT INTO complements (version, sku, rank, complement, orders, sku_orders, complement_orders, support, confidence, lift, llr)
    SELECT $10, sku, rank, complement, orders, sku_orders, complement_orders, support, confidence, lift, llr
    FROM ranked WHERE rank <= $9
    RETURNING sku
)
SELECT t.n, t.skipped, (SELECT count(*) FROM items) AS catalog,
       (SELECT count(DISTINCT sku) FROM ins) AS products, (SELECT count(*) FROM ins) AS pairs
FROM totals t`

// build writes one snapshot of the orders in [from, until) within tx.
func build(ctx context.Context, tx *sqlx.Tx, s Settings, from, until time.Time) (*Snapshot, error) {
	started := time.Now()
	settingsJSON, err := json.Marshal(s)
	if err != nil {
		return nil, database.Wrap(err, "building complements")
	}
	snap := &Snapshot{BuiltAt: until, WindowStart: from, WindowEnd: until, Settings: s, SettingsJSON: settingsJSON}
	err = tx.GetContext(ctx, &snap.Version, `INSERT INTO complement_snapshots
		(built_at, window_start, window_end, settings, orders, skipped_orders, catalog, products, pairs, build_ms)
		VALUES ($1, $2, $3, $4, 0, 0, 0, 0, 0, 0) RETURNING version`, until, from, until, settingsJSON)
	if err != nil {
		return nil, database.Wrap(err, "building complements")
	}
	row := tx.QueryRowxContext(ctx, buildSQL, from, until, s.MaxBasket, s.MinOrders, pq.StringArray(s.Excluded),
		s.MinConfidence, s.MinLift, s.MinLLR, s.MaxComplements, snap.Version)
	if err := row.Scan(&snap.Orders, &snap.SkippedOrders, &snap.Catalog, &snap.Products, &snap.Pairs); err != nil {
		return nil, database.Wrap(err, "building complements: counting order lines")
	}
	snap.BuildMillis = int(time.Since(started).Milliseconds())
	_, err = tx.ExecContext(ctx, `UPDATE complement_snapshots
		SET orders = $2, skipped_orders = $3, catalog = $4, products = $5, pairs = $6, build_ms = $7
		WHERE version = $1`, snap.Version, snap.Orders, snap.SkippedOrders, snap.Catalog, snap.Products, snap.Pairs, snap.BuildMillis)
	if err != nil {
		return nil, database.Wrap(err, "building complements")
	}
	return snap, nil
}

// Latest returns the newest snapshot's description, or nil when none was built yet.
func Latest(ctx context.Context, q queryer) (*Snapshot, error) {
	var s Snapshot
	err := q.GetContext(ctx, &s, `SELECT `+snapshotColumns+` FROM complement_snapshots ORDER BY version DESC LIMIT 1`)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, database.Wrap(err, "reading the newest complements snapshot")
	}
	if err := json.Unmarshal(s.SettingsJSON, &s.Settings); err != nil {
		return nil, fmt.Errorf("complements snapshot %d: its settings: %w", s.Version, err)
	}
	return &s, nil
}
