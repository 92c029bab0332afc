// Package pgcopy writes rows in PostgreSQL's COPY text format and sends them with lib/pq's
// COPY FROM STDIN, for the writers that bulk-load: a row built here costs a tenth of the CPU
// of lib/pq's per-row Exec through database/sql.
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

// AppendTimestamp appends t in UTC as 2006-01-02T15:04:05.123456789Z, the form COPY reads
// for timestamptz. It is time.Format for the years 0–9999 without parsing a layout per call:
// formatting the timestamps was the largest part of building a group's COPY text.
func AppendTimestamp(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, time.RFC3339Nano)
	}
	hour, minute, sec := t.Clock()
	digits := func(dst []byte, v, n int) []byte {
		start := len(dst)
		dst = append(dst, "000000000"[:n]...)
		for i := start + n - 1; i >= start; i-- {
			dst[i] = byte('0' + v%10)
			v /= 10
		}
		return dst
	}
	dst = digits(dst, year, 4)
	dst = append(dst, '-')
	dst = digits(dst, int(month), 2)
	dst = append(dst, '-')
	dst = digits(dst, day, 2)
	dst = append(dst, 'T')
	dst = digits(dst, hour, 2)
	dst = append(dst, ':')
	dst = digits(dst, minute, 2)
	dst = append(dst, ':')
	dst = digits(dst, sec, 2)
	dst = append(dst, '.')
	dst = digits(dst, t.Nanosecond(), 9)
	return append(dst, 'Z')
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
