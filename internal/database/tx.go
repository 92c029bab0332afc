package database

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jmoiron/sqlx"
)

// attempts is how often Transact runs a transaction that keeps failing on serialization or
// deadlock before it gives up: each failure means another transaction committed, so a few
// tries get through any contention short of a storm.
const attempts = 5

// Tx is a transaction run by Transact: sqlx's, plus its connection (for lib/pq's COPY) and
// the work to do once it has committed.
type Tx struct {
	*sqlx.Tx
	conn     *sqlx.Conn
	onCommit []func()
	saves    int
}

// Raw runs fn with the driver connection the transaction runs on, for what database/sql does
// not offer (lib/pq's COPY with ready-made text).
func (tx *Tx) Raw(fn func(driverConn any) error) error { return tx.conn.Raw(fn) }

// OnCommit runs fn after the transaction has committed, and never if it does not: for what
// must happen once per committed change (counting, logging), whatever the retries.
func (tx *Tx) OnCommit(fn func()) { tx.onCommit = append(tx.onCommit, fn) }

// Savepoint runs fn inside a savepoint: when fn fails, what it did is rolled back and the
// transaction goes on; its error is returned.
func (tx *Tx) Savepoint(ctx context.Context, fn func() error) error {
	tx.saves++
	name := fmt.Sprintf("sp%d", tx.saves)
	if _, err := tx.ExecContext(ctx, "SAVEPOINT "+name); err != nil {
		return fmt.Errorf("making a savepoint: %w", err)
	}
	if err := fn(); err != nil {
		if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+name); rerr != nil {
			return fmt.Errorf("rolling back to a savepoint after %v: %w", err, rerr)
		}
		return err
	}
	if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT "+name); err != nil {
		return fmt.Errorf("releasing a savepoint: %w", err)
	}
	return nil
}

// Transact runs fn in a transaction and commits it when fn returns nil. A serialization
// failure or deadlock (SQLSTATE 40001, 40P01) runs fn again in a new transaction, a few times;
// fn must therefore do nothing outside the transaction that it cannot repeat. opts nil is
// READ COMMITTED. The error is fn's, or the database's; callers Wrap it with what they did.
func Transact(ctx context.Context, db *sqlx.DB, opts *sql.TxOptions, fn func(tx *Tx) error) error {
	var err error
	for attempt := range attempts {
		if attempt > 0 {
			// Randomised and growing, so that the parties of a conflict do not meet again.
			pause := time.Duration(rand.Int64N(int64(time.Millisecond)<<attempt)) + time.Millisecond
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w (retrying after %v)", ctx.Err(), err)
			case <-time.After(pause):
			}
		}
		var tx *Tx
		if tx, err = once(ctx, db, opts, fn); err == nil {
			for _, f := range tx.onCommit {
				f()
			}
			return nil
		}
		if !retryable(err) {
			return err
		}
	}
	return err
}

// once runs fn once in a transaction of its own connection.
func once(ctx context.Context, db *sqlx.DB, opts *sql.TxOptions, fn func(tx *Tx) error) (_ *Tx, err error) {
	conn, err := db.Connx(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stx, err := conn.BeginTxx(ctx, opts)
	if err != nil {
		return nil, err
	}
	tx := &Tx{Tx: stx, conn: conn}
	if err := fn(tx); err != nil {
		if rerr := stx.Rollback(); rerr != nil {
			// A session left mid-COPY or in an unknown state must not go back to the pool;
			// dropping it rolls back whatever it held.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		return nil, err
	}
	if err := stx.Commit(); err != nil {
		return nil, fmt.Errorf("committing: %w", err)
	}
	return tx, nil
}
