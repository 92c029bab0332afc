// Package pgcopy writes rows in PostgreSQL's COPY text format and sends them with lib/pq's
// COPY FROM STDIN, for the writers that bulk-load: a group built here and sent whole costs the
// server's process far less CPU than lib/pq's pq.CopyIn with an Exec per row through
// database/sql (docs/benchmarks.md, "COPY text").
package pgcopy

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strconv"
	"time"
)

// Rows builds rows in COPY's text format: tab-separated, \N for NULL, backslash escapes.
type Rows struct {
	// B is the text so far: whole rows, each ending in a newline, once End was called.
	B      []byte
	midRow bool
}

func (c *Rows) sep() {
	if c.midRow {
		c.B = append(c.B, '\t')
	}
	c.midRow = true
}

// Text appends s as a column.
func (c *Rows) Text(s string) *Rows {
	c.sep()
	c.B = AppendEscaped(c.B, s)
	return c
}

// Bytes appends v as a text column.
func (c *Rows) Bytes(v []byte) *Rows {
	c.sep()
	c.B = AppendEscaped(c.B, v)
	return c
}

// AppendEscaped appends s escaped for a column of COPY text.
func AppendEscaped[T string | []byte](dst []byte, s T) []byte {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		switch s[i] {
		case '\\', '\n', '\r', '\t':
			plain = false
		}
	}
	if plain { // nearly every id, key and SKU: copied whole rather than byte by byte
		return append(dst, s...)
	}
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; ch {
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, ch)
		}
	}
	return dst
}

// Raw appends a column that needs no escaping (a formatted time, a number).
func (c *Rows) Raw(v []byte) *Rows {
	c.sep()
	c.B = append(c.B, v...)
	return c
}

// Opt appends s, or NULL when it is empty.
func (c *Rows) Opt(s string) *Rows {
	if s == "" {
		c.sep()
		c.B = append(c.B, '\\', 'N')
		return c
	}
	return c.Text(s)
}

// Num appends *v, or NULL when v is nil.
func (c *Rows) Num(v *int64) *Rows {
	if v == nil {
		c.sep()
		c.B = append(c.B, '\\', 'N')
		return c
	}
	return c.Int(*v)
}

// Int appends v.
func (c *Rows) Int(v int64) *Rows {
	c.sep()
	c.B = strconv.AppendInt(c.B, v, 10)
	return c
}

// End ends the row.
func (c *Rows) End() {
	c.B = append(c.B, '\n')
	c.midRow = false
}

// AppendTimestamp appends t as RFC 3339 in UTC, a form COPY reads for timestamptz whatever
// the session's time zone. The standard library's fast path for this layout is as quick as the
// hand-written formatting it replaced (docs/benchmarks.md, "COPY text").
func AppendTimestamp(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, time.RFC3339Nano)
}

// copyData is lib/pq's COPY statement, which takes ready-made COPY text.
type copyData interface {
	CopyData(ctx context.Context, line string) (driver.Result, error)
}

// In runs one COPY ... FROM STDIN with data, whole rows of COPY text, on dc, the driver
// connection that sql.Conn.Raw hands over.
func In(ctx context.Context, dc any, query string, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	conn, ok := dc.(driver.Conn)
	if !ok {
		return fmt.Errorf("pgcopy: the driver connection is a %T, not a driver.Conn", dc)
	}
	stmt, err := conn.Prepare(query)
	if err != nil {
		return err
	}
	defer stmt.Close()
	cd, ok := stmt.(copyData)
	if !ok {
		return fmt.Errorf("pgcopy: the COPY statement is a %T without CopyData (not lib/pq?)", stmt)
	}
	// CopyData adds the final newline itself.
	if _, err := cd.CopyData(ctx, string(data[:len(data)-1])); err != nil {
		return err
	}
	_, err = stmt.Exec(nil) //nolint:staticcheck // lib/pq ends a COPY with Exec(nil)
	return err
}
