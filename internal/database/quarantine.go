package database

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
)

// Quarantine takes the rows that the database refuses out of a background consumer's way: each
// goes to the quarantine table with its error, is counted in /metrics by consumer and is
// logged once, and the consumer goes on with the rest of its batch.
type Quarantine struct {
	total *prometheus.CounterVec
	log   *slog.Logger
}

// NewQuarantine returns a Quarantine whose counter is registered on reg (nil: none) and which
// logs to log (nil: nowhere).
func NewQuarantine(reg prometheus.Registerer, log *slog.Logger) *Quarantine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	q := &Quarantine{log: log, total: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xsell_quarantined_total",
		Help: "Rows a background consumer could not write because the database refused them, moved to the quarantine table.",
	}, []string{"consumer"})}
	if reg != nil {
		reg.MustRegister(q.total)
	}
	return q
}

// Put quarantines the row key of consumer, refused with cause; payload is the row, stored as
// JSON. ex is the consumer's transaction, so that the quarantine commits with its cursor (then
// the count and the log wait for the commit), or the pool. A key already quarantined for the
// consumer is left as it is, and neither counted nor logged again.
func (q *Quarantine) Put(ctx context.Context, ex sqlx.ExecerContext, consumer, key string, payload any, cause error) error {
	body, err := json.Marshal(payload)
	if err != nil {
		body, _ = json.Marshal(fmt.Sprintf("%+v", payload))
	}
	res, err := ex.ExecContext(ctx, `INSERT INTO quarantine (consumer, key, payload, error, sqlstate)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (consumer, key) DO NOTHING`,
		consumer, storable(key), string(body), storable(cause.Error()), SQLState(cause))
	if err != nil {
		return Wrap(err, "quarantining %s row %q", consumer, key)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	note := func() {
		q.total.WithLabelValues(consumer).Inc()
		q.log.Error("quarantined a row the database refused; the consumer goes on without it",
			"consumer", consumer, "key", key, "sqlstate", SQLState(cause), "error", cause.Error())
	}
	if tx, ok := ex.(*Tx); ok {
		tx.OnCommit(note)
	} else {
		note()
	}
	return nil
}

// Guard runs fn, one row of a background consumer's batch in tx. Unguarded, fn runs as it is
// (the fast path of a batch without poison). Guarded, fn runs in a savepoint, and a row the
// database refuses goes to quarantine under consumer and key, with payload, instead of failing
// the batch: no single row stops a background consumer.
func (q *Quarantine) Guard(ctx context.Context, tx *Tx, guarded bool, consumer, key string, payload any, fn func() error) error {
	if !guarded {
		return fn()
	}
	err := tx.Savepoint(ctx, fn)
	if Refused(err) {
		err = q.Put(ctx, tx, consumer, key, payload, err)
	}
	return err
}

// storable makes text that Postgres accepts: valid UTF-8 without NUL, the very things a
// refused row may hold.
func storable(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", `\x00`)
}
