package exposures

import (
	"context"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// refused reports whether err is the database refusing a statement's data — a data exception
// (SQLSTATE class 22), an integrity constraint (23) or a program limit (54) — rather than
// being unreachable or broken as a whole, and returns the SQLSTATE. Only such an error is
// pinned on rows: anything else is retried, with the rows kept.
func refused(err error) (string, bool) {
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) {
		return "", false
	}
	switch pqErr.Code.Class() {
	case "22", "23", "54":
		return string(pqErr.Code), true
	}
	return "", false
}

// quarantined is an item set aside instead of written.
type quarantined struct {
	stage    string // "stage" (into exposure_log) or "merge" (into exposures)
	item     string // which item, in words
	payload  []byte // the item as JSON
	err      string
	sqlstate string // empty when the recorder refused it before sending
}

// quarantine keeps items in exposure_quarantine. It is the one place that writes there: when
// the platform's generic quarantine table and helper land in internal/database, this function
// calls them instead, and nothing else changes.
func quarantine(ctx context.Context, db sqlx.ExecerContext, items []quarantined) error {
	if len(items) == 0 {
		return nil
	}
	stages, names, errs, states := make([]string, len(items)), make([]string, len(items)), make([]string, len(items)), make([]string, len(items))
	payloads := make([][]byte, len(items))
	for i, q := range items {
		stages[i], names[i], errs[i], states[i] = q.stage, storable(q.item), storable(q.err), storable(q.sqlstate)
		payloads[i] = q.payload
	}
	_, err := db.ExecContext(ctx, `INSERT INTO exposure_quarantine (stage, item, payload, error, sqlstate)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::text[])`,
		pq.Array(stages), pq.Array(names), pq.ByteaArray(payloads), pq.Array(errs), pq.Array(states))
	return err
}

// unstorable says why a text column cannot hold s as it is, or "" when it can.
func unstorable(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "holds a NUL byte"
	}
	return ""
}
