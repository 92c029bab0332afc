package database

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// Outbox is a background consumer that reads a table as an outbox: its cursor (the last seq
// handled) moves in the transaction that handles the rows, so each row is handled exactly
// once, even with several servers running it (they queue on the cursor row). When the database
// refuses a row, the batch is handled again one row at a time, each in a savepoint, and the
// refused ones go to quarantine (Quarantine.Guard): the fast path stays a few statements per
// batch, and only a batch with poison pays for the savepoints.
type Outbox[T any] struct {
	// Name is the consumer's name in quarantine and in errors.
	Name string
	// Cursor is the table holding the consumer's cursor, one row with a column seq. It is put
	// in SQL as it is: a constant of the caller, never input.
	Cursor     string
	Limit      int // rows per batch
	TxOptions  *sql.TxOptions
	Quarantine *Quarantine
	// Read reads up to limit rows after seq, in seq order.
	Read func(ctx context.Context, tx *sqlx.Tx, after int64, limit int) ([]T, error)
	// Prepare reads what the batch's rows need and returns the handler of one row.
	Prepare func(ctx context.Context, tx *sqlx.Tx, rows []T) (func(T) error, error)
	// Set, when not nil, handles a whole batch at once on the fast path, with a few
	// statements for the batch rather than a few per row; it must leave what handling the rows
	// one by one would. A batch the database refuses is handled again row by row (Prepare).
	Set func(ctx context.Context, tx *sqlx.Tx, rows []T) error
	Seq func(T) int64
	Key func(T) string
}

// Drain handles every row written since the last run, batch after batch, and returns how many
// it read.
func (o *Outbox[T]) Drain(ctx context.Context, db *sqlx.DB) (int, error) {
	total := 0
	for {
		n, err := o.batch(ctx, db, false)
		if Refused(err) {
			n, err = o.batch(ctx, db, true)
		}
		total += n
		if err != nil || n < o.Limit {
			return total, err
		}
	}
}

// batch handles the rows after the cursor in one transaction, each guarded when guarded.
func (o *Outbox[T]) batch(ctx context.Context, db *sqlx.DB, guarded bool) (int, error) {
	n := 0
	err := Transact(ctx, db, o.TxOptions, func(tx *Tx) error {
		n = 0
		var cursor int64
		if err := tx.GetContext(ctx, &cursor, `SELECT seq FROM `+o.Cursor+` FOR UPDATE`); err != nil {
			return fmt.Errorf("locking the cursor of %s: %w", o.Name, err)
		}
		rows, err := o.Read(ctx, tx.Tx, cursor, o.Limit)
		if err != nil || len(rows) == 0 {
			return err
		}
		if err := o.handle(ctx, tx, rows, guarded); err != nil {
			return err
		}
		n = len(rows)
		_, err = tx.ExecContext(ctx, `UPDATE `+o.Cursor+` SET seq = $1`, o.Seq(rows[len(rows)-1]))
		return err
	})
	return n, err
}

// handle handles a batch's rows: as a set on the fast path when the outbox has Set, else one
// by one, each guarded when guarded.
func (o *Outbox[T]) handle(ctx context.Context, tx *Tx, rows []T, guarded bool) error {
	if o.Set != nil && !guarded {
		return o.Set(ctx, tx.Tx, rows)
	}
	handle, err := o.Prepare(ctx, tx.Tx, rows)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := o.Quarantine.Guard(ctx, tx, guarded, o.Name, o.Key(r), r, func() error { return handle(r) }); err != nil {
			return err
		}
	}
	return nil
}
