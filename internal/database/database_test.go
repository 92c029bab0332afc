package database_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/database"
	"github.com/xsell/xsell/internal/dbtest"
)

func open(t *testing.T, o database.Options) (*sqlx.DB, string) {
	t.Helper()
	url := dbtest.URL(t)
	db, err := database.Open(context.Background(), url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, url
}

func exec(t *testing.T, db sqlx.ExecerContext, query string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func TestTransactRetriesASerializationFailure(t *testing.T) {
	db, _ := open(t, database.Options{})
	ctx := context.Background()
	exec(t, db, `CREATE TABLE counter (n int NOT NULL); INSERT INTO counter VALUES (0)`)
	attempts, committed := 0, 0
	err := database.Transact(ctx, db, &sql.TxOptions{Isolation: sql.LevelRepeatableRead}, func(tx *database.Tx) error {
		attempts++
		tx.OnCommit(func() { committed++ })
		var n int
		if err := tx.GetContext(ctx, &n, `SELECT n FROM counter`); err != nil {
			return err
		}
		if attempts == 1 {
			// Another transaction changes the row this one has read: its update must fail
			// with 40001, and the whole transaction run again on fresh data.
			exec(t, db, `UPDATE counter SET n = n + 10`)
		}
		_, err := tx.ExecContext(ctx, `UPDATE counter SET n = $1`, n+1)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.Get(&n, `SELECT n FROM counter`); err != nil {
		t.Fatal(err)
	}
	if attempts != 2 || committed != 1 || n != 11 {
		t.Fatalf("attempts %d, commit hooks run %d, counter %d; want 2 attempts, 1 hook, 11", attempts, committed, n)
	}
}

func TestTransactRollsBackOnErrorAndReturnsIt(t *testing.T) {
	db, _ := open(t, database.Options{})
	ctx := context.Background()
	exec(t, db, `CREATE TABLE t (n int)`)
	want := apperr.New(apperr.Conflict, "no")
	hooked := false
	err := database.Transact(ctx, db, nil, func(tx *database.Tx) error {
		tx.OnCommit(func() { hooked = true })
		if _, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (1)`); err != nil {
			return err
		}
		return want
	})
	if !errors.Is(err, want) || hooked {
		t.Fatalf("error %v, hook run %v; want the function's error and no hook", err, hooked)
	}
	var n int
	if err := db.Get(&n, `SELECT count(*) FROM t`); err != nil || n != 0 {
		t.Fatalf("rows after a failed transaction: %d %v", n, err)
	}
}

func TestSavepointUndoesOnlyItsPart(t *testing.T) {
	db, _ := open(t, database.Options{})
	ctx := context.Background()
	exec(t, db, `CREATE TABLE t (n smallint)`)
	var refused error
	err := database.Transact(ctx, db, nil, func(tx *database.Tx) error {
		for _, n := range []int{1, 70000, 3} {
			err := tx.Savepoint(ctx, func() error {
				_, err := tx.ExecContext(ctx, `INSERT INTO t VALUES ($1)`, n)
				return err
			})
			if err != nil {
				refused = err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	if err := db.Select(&got, `SELECT n FROM t ORDER BY n`); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[1 3]" || !database.Refused(refused) || database.SQLState(refused) != "22003" {
		t.Fatalf("rows %v, refused %v; want [1 3] and a 22003 refusal", got, refused)
	}
}

// unavailable asserts that err, wrapped as a store wraps it, is a 503 with the context kept.
func unavailable(t *testing.T, what string, err error) {
	t.Helper()
	w := database.Wrap(err, "doing %s", what)
	if apperr.CodeOf(w) != apperr.Unavailable || !strings.Contains(w.Error(), "doing "+what) || database.Refused(err) {
		t.Errorf("%s: %v wrapped as %v, want unavailable naming what was done", what, err, w)
	}
}

func TestOutagesAreUnavailable(t *testing.T) {
	ctx := context.Background()

	t.Run("connection refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close() // nothing listens there any more
		_, err = database.Open(ctx, "postgres://postgres@"+addr+"/postgres?sslmode=disable&connect_timeout=5", database.Options{})
		if apperr.CodeOf(err) != apperr.Unavailable {
			t.Fatalf("open on a closed port: %v, want unavailable", err)
		}
	})

	t.Run("terminated by the administrator", func(t *testing.T) {
		db, _ := open(t, database.Options{})
		conn, err := db.Connx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var pid int
		if err := conn.GetContext(ctx, &pid, `SELECT pg_backend_pid()`); err != nil {
			t.Fatal(err)
		}
		exec(t, db, `SELECT pg_terminate_backend($1)`, pid)
		_, err = conn.ExecContext(ctx, `SELECT 1`)
		if err == nil {
			t.Fatal("a terminated session still answered")
		}
		unavailable(t, "a query on a terminated session", err)
	})

	t.Run("statement timeout on a frozen table", func(t *testing.T) {
		db, _ := open(t, database.Options{StatementTimeout: 200 * time.Millisecond})
		exec(t, db, `CREATE TABLE frozen (n int)`)
		holder, err := db.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Rollback() //nolint:errcheck // only releases the lock
		exec(t, holder, `LOCK TABLE frozen IN ACCESS EXCLUSIVE MODE`)
		_, err = db.ExecContext(ctx, `INSERT INTO frozen VALUES (1)`)
		if database.SQLState(err) != "57014" {
			t.Fatalf("insert into a locked table: %v, want 57014 from the statement timeout", err)
		}
		unavailable(t, "an insert into a locked table", err)
	})

	t.Run("pool exhausted", func(t *testing.T) {
		db, _ := open(t, database.Options{MaxConns: 1})
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		qctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, err = db.ExecContext(qctx, `SELECT 1`)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a query with no free connection: %v, want the deadline", err)
		}
		unavailable(t, "a query with no free connection", err)
	})
}

func TestWrapKeepsClientErrorsAndNamesTheWork(t *testing.T) {
	db, _ := open(t, database.Options{})
	_, err := db.Exec(`SELECT 9223372036854775807::bigint + 1`)
	w := database.Wrap(err, "adding %d", 1)
	if apperr.CodeOf(w) != apperr.Internal || !strings.HasPrefix(w.Error(), "adding 1: ") || !database.Refused(w) {
		t.Fatalf("an overflow wrapped as %v, want an internal error naming the work that stays refused", w)
	}
	nf := apperr.New(apperr.NotFound, "no such thing")
	if w := database.Wrap(nf, "reading"); w != error(nf) {
		t.Fatalf("a client error wrapped as %v, want it unchanged", w)
	}
	if database.Wrap(nil, "nothing") != nil {
		t.Fatal("Wrap(nil) is not nil")
	}
}

func TestQuarantineKeepsTheRowOnceAndCountsAfterCommit(t *testing.T) {
	db, _ := open(t, database.Options{})
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	q := database.NewQuarantine(reg, nil)
	_, cause := db.Exec(`SELECT $1::text`, "a\x00")
	if cause == nil {
		t.Fatal("Postgres accepted a NUL")
	}
	payload := map[string]any{"shopper_id": "evil\x00x", "bad": "r\xff"}
	put := func(before float64) {
		t.Helper()
		err := database.Transact(ctx, db, nil, func(tx *database.Tx) error {
			if err := q.Put(ctx, tx, "test_consumer", "evil\x00x", payload, cause); err != nil {
				return err
			}
			if got := quarantined(t, reg, "test_consumer"); got != before {
				t.Errorf("counted %v before the commit, want %v", got, before)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	put(0)
	put(1) // met again: kept once, counted once
	var rows []struct {
		Key      string `db:"key"`
		Payload  string `db:"payload"`
		Error    string `db:"error"`
		SQLState string `db:"sqlstate"`
	}
	if err := db.Select(&rows, `SELECT key, payload, error, sqlstate FROM quarantine WHERE consumer = 'test_consumer'`); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("%d quarantine rows, want 1", len(rows))
	}
	r := rows[0]
	if r.Key != `evil\x00x` || r.Payload != `{"bad":"r\ufffd","shopper_id":"evil\u0000x"}` || r.SQLState != "22021" || r.Error == "" {
		t.Fatalf("quarantined %+v", r)
	}
	if got := quarantined(t, reg, "test_consumer"); got != 1 {
		t.Fatalf("xsell_quarantined_total = %v, want 1", got)
	}
}

// quarantined reads xsell_quarantined_total{consumer} from reg.
func quarantined(t *testing.T, reg *prometheus.Registry, consumer string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "xsell_quarantined_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "consumer" && l.GetValue() == consumer {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
