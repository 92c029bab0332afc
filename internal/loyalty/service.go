package loyalty

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/database"
)

// Service is the loyalty program: settings, accounts, the ledger and the jobs.
type Service struct {
	db         *sqlx.DB
	clock      func() time.Time
	quarantine *database.Quarantine
	budgets    BonusBudgets
	// eventByEvent credits every batch the way a batch with poison is (tests compare the two).
	eventByEvent bool
}

// Options are what a Service needs besides its database; zero values take the defaults.
type Options struct {
	// Clock is the time source (time.Now); tests pass one they move by hand.
	Clock func() time.Time
	// Quarantine takes the order events and accounts that crediting and expiry cannot write
	// (one of its own, counted nowhere, when nil).
	Quarantine *database.Quarantine
	// Budgets charges offers' bonus points to their budgets (none when nil).
	Budgets BonusBudgets
}

// New returns a Service on db.
func New(db *sqlx.DB, o Options) *Service {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Quarantine == nil {
		o.Quarantine = database.NewQuarantine(nil, nil)
	}
	return &Service{db: db, clock: o.Clock, quarantine: o.Quarantine, budgets: o.Budgets}
}

// now is the clock's time as Postgres stores it (UTC, microseconds), so that a time read back
// equals the one written and boundaries compare exactly.
func (s *Service) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }

// queryer is what both *sqlx.DB and *sqlx.Tx offer.
type queryer interface {
	sqlx.ExtContext
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}

// readCommitted is the isolation of every loyalty transaction: the account lock, not the
// isolation level, makes writers of one account serial (see the package comment).
var readCommitted = &sql.TxOptions{Isolation: sql.LevelReadCommitted}

// inAccountTx runs fn in a transaction that holds the lock of the shopper's account row, made
// on first use. Every write of an account's lots, entries or idempotency keys goes through
// here, which is what makes them serial per account (see the package comment).
func (s *Service) inAccountTx(ctx context.Context, shopperID string, fn func(tx *sqlx.Tx, now time.Time) error) error {
	return database.Transact(ctx, s.db, readCommitted, func(tx *database.Tx) error {
		if err := lockAccount(ctx, tx.Tx, shopperID, s.now()); err != nil {
			return err
		}
		// The clock is read after the lock is held, so that times of one account's writes
		// never go backwards in commit order.
		return fn(tx.Tx, s.now())
	})
}

// lockAccount makes the shopper's account row if it is missing and locks it until tx ends.
func lockAccount(ctx context.Context, tx *sqlx.Tx, shopperID string, now time.Time) error {
	_, err := lockAccountKey(ctx, tx, shopperID, "", now)
	return err
}

// storedAnswer is the first answer given to an idempotency key.
type storedAnswer struct {
	Hash   []byte `db:"request_hash"`
	Status int    `db:"status"`
	Body   []byte `db:"body"`
}

// lockAccountKey is lockAccount that also reads, in the same statement, the answer stored
// for an idempotency key (nil when the key is new). The common case, an existing account,
// costs one statement.
func lockAccountKey(ctx context.Context, tx *sqlx.Tx, shopperID, key string, now time.Time) (*storedAnswer, error) {
	for range 2 {
		var rows []struct {
			ShopperID string `db:"shopper_id"`
			Hash      []byte `db:"request_hash"`
			Status    *int   `db:"status"`
			Body      []byte `db:"body"`
		}
		if err := tx.SelectContext(ctx, &rows, `SELECT a.shopper_id, i.request_hash, i.status, i.body
			FROM loyalty_accounts a LEFT JOIN loyalty_idempotency i ON i.shopper_id = a.shopper_id AND i.key = $2
			WHERE a.shopper_id = $1 FOR UPDATE OF a`, shopperID, key); err != nil {
			return nil, fmt.Errorf("locking the account of %q: %w", shopperID, err)
		}
		if len(rows) == 1 {
			if rows[0].Status == nil {
				return nil, nil
			}
			return &storedAnswer{Hash: rows[0].Hash, Status: *rows[0].Status, Body: rows[0].Body}, nil
		}
		// Two first uses at once: one inserts, the other does nothing; both then lock it.
		if _, err := tx.ExecContext(ctx, `INSERT INTO loyalty_accounts (shopper_id, created_at)
			VALUES ($1, $2) ON CONFLICT DO NOTHING`, shopperID, now); err != nil {
			return nil, fmt.Errorf("making the account of %q: %w", shopperID, err)
		}
	}
	return nil, fmt.Errorf("the account of %q vanished while being locked", shopperID)
}
