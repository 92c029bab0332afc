package pgcopy

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/database"
	"github.com/xsell/xsell/internal/dbtest"
)

// copyBenchRows is the shape of the events writer's rows: ids, a type, a shopper, a time, an
// optional amount and currency.
const copyBenchRows = 800

type benchRow struct {
	id, typ, shopper, currency string
	at                         time.Time
	amount                     *int64
}

func benchRows() []benchRow {
	rows := make([]benchRow, copyBenchRows)
	at := time.Date(2026, 11, 30, 18, 0, 0, 0, time.UTC)
	for i := range rows {
		rows[i] = benchRow{id: fmt.Sprint("ev-", i), typ: "offer_viewed", shopper: fmt.Sprint("s-", i%97), at: at.Add(time.Duration(i) * time.Millisecond)}
		if i%8 == 0 {
			n := int64(2904 + i)
			rows[i].typ, rows[i].amount, rows[i].currency = "order_completed", &n, "EUR"
		}
	}
	return rows
}

const benchTable = `CREATE TABLE copy_bench (id text, type text, shopper_id text, occurred_at timestamptz, amount bigint, currency text)`

// BenchmarkCopyRows: one group of 800 rows built here as COPY text and sent in one CopyData.
func BenchmarkCopyRows(b *testing.B) {
	db, rows := dbtest.New(b), benchRows()
	ctx := context.Background()
	db.MustExec(benchTable)
	var r Rows
	var ts []byte
	for b.Loop() {
		r.B = r.B[:0]
		for _, x := range rows {
			ts = AppendTimestamp(ts[:0], x.at)
			r.Text(x.id).Text(x.typ).Text(x.shopper).Raw(ts).Num(x.amount).Opt(x.currency).End()
		}
		err := database.Transact(ctx, db, nil, func(tx *database.Tx) error {
			return tx.Raw(func(dc any) error { return In(ctx, dc, `COPY copy_bench FROM STDIN`, r.B) })
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*copyBenchRows), "ns/row")
}

// BenchmarkCopyLibrary: the same group through lib/pq's pq.CopyIn, one Exec per row.
func BenchmarkCopyLibrary(b *testing.B) {
	db, rows := dbtest.New(b), benchRows()
	ctx := context.Background()
	db.MustExec(benchTable)
	for b.Loop() {
		err := database.Transact(ctx, db, nil, func(tx *database.Tx) error { return copyIn(tx, rows) })
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*copyBenchRows), "ns/row")
}

// copyIn sends rows with pq.CopyIn, as lib/pq documents it.
func copyIn(tx *database.Tx, rows []benchRow) error {
	stmt, err := tx.Prepare(pq.CopyIn("copy_bench", "id", "type", "shopper_id", "occurred_at", "amount", "currency"))
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, x := range rows {
		var cur any
		if x.currency != "" {
			cur = x.currency
		}
		var amount any
		if x.amount != nil {
			amount = *x.amount
		}
		if _, err := stmt.Exec(x.id, x.typ, x.shopper, x.at, amount, cur); err != nil {
			return err
		}
	}
	_, err = stmt.Exec()
	return err
}
