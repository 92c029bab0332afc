package exposures

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/xsell/xsell/internal/pgcopy"
)

// copyStaged stages requests, one row each.
const copyStaged = `COPY exposure_log (shopper_id, at, attributes, experiments, phases, variants) FROM STDIN`

// batch is requests on their way into exposure_log: encoded once as COPY text, then written,
// retried while the database is unreachable, and split when the database refuses a row.
type batch struct {
	reqs []Request // requests of the lines, in order
	text []byte    // COPY text of every line
	ends []int     // line i is text[ends[i-1]:ends[i]]
	next int       // lines before next are staged or quarantined
	// refusals are requests the recorder will not send as they are, waiting to be quarantined.
	refusals  []Request
	refusedAs []quarantined
	scratch   []byte
}

func (b *batch) len() int { return len(b.reqs) + len(b.refusals) }

func (b *batch) reset() {
	clear(b.reqs) // let the attribute maps go
	clear(b.refusals)
	b.reqs, b.text, b.ends, b.next = b.reqs[:0], b.text[:0], b.ends[:0], 0
	b.refusals, b.refusedAs = b.refusals[:0], b.refusedAs[:0]
}

func (b *batch) start(i int) int {
	if i == 0 {
		return 0
	}
	return b.ends[i-1]
}

// add encodes req as one row of COPY text, or sets it aside when a column cannot hold its
// shopper id: changing the id would credit another shopper, so such a request is refused.
// Attributes are kept with what Postgres cannot store replaced (see attributesJSON).
func (b *batch) add(req Request) {
	if why := unstorable(req.ShopperID); why != "" {
		b.refusals = append(b.refusals, req)
		b.refusedAs = append(b.refusedAs, quarantined{stage: "stage", item: describe(req),
			payload: payloadOf(req), err: "shopper_id " + why})
		return
	}
	rows := pgcopy.Rows{B: b.text}
	rows.Text(req.ShopperID).Raw(pgcopy.AppendTimestamp(b.scratch[:0], req.At))
	b.scratch = attributesJSON(b.scratch[:0], req.Attributes)
	rows.Bytes(b.scratch)
	b.scratch = appendArray(b.scratch[:0], req.Exposures, func(dst []byte, e *Exposure) []byte { return appendElement(dst, e.Experiment) })
	rows.Bytes(b.scratch)
	b.scratch = appendArray(b.scratch[:0], req.Exposures, func(dst []byte, e *Exposure) []byte { return strconv.AppendInt(dst, int64(e.Phase), 10) })
	rows.Raw(b.scratch)
	b.scratch = appendArray(b.scratch[:0], req.Exposures, func(dst []byte, e *Exposure) []byte { return appendElement(dst, e.Variant) })
	rows.Bytes(b.scratch)
	rows.End()
	b.text = rows.B
	b.reqs = append(b.reqs, req)
	b.ends = append(b.ends, len(b.text))
}

// appendArray appends a Postgres array literal of one element per exposure.
func appendArray(dst []byte, es []Exposure, elem func([]byte, *Exposure) []byte) []byte {
	dst = append(dst, '{')
	for i := range es {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = elem(dst, &es[i])
	}
	return append(dst, '}')
}

// appendElement appends s as a quoted element of an array literal: quoted, so that a key
// spelled "null" is not read as NULL.
func appendElement(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

// nulEscape is how encoding/json writes a NUL, which jsonb refuses (SQLSTATE 22P05).
var nulEscape = []byte(`\u0000`)

// attributesJSON appends the attributes as JSON that jsonb accepts. encoding/json already
// replaces invalid UTF-8 with U+FFFD; a NUL in a key or value is replaced the same way here.
// The edge refuses both in a request; this is the writer's own defence, so that no request
// can make a row the database refuses.
func attributesJSON(dst []byte, attrs map[string]any) []byte {
	if len(attrs) == 0 {
		return append(dst, "{}"...)
	}
	b, err := json.Marshal(attrs)
	if err != nil {
		// Attributes come from decoded JSON, so this does not happen; should it, the exposure
		// is worth more than its attributes.
		return append(dst, "{}"...)
	}
	if bytes.Contains(b, nulEscape) { // or a literal backslash before u0000: harmless extra work
		if b, err = json.Marshal(withoutNUL(attrs)); err != nil {
			return append(dst, "{}"...)
		}
	}
	return append(dst, b...)
}

// withoutNUL is v with NUL replaced by U+FFFD in every string, keys included.
func withoutNUL(v any) any {
	fix := func(s string) string { return strings.ReplaceAll(s, "\x00", "\uFFFD") }
	switch v := v.(type) {
	case string:
		return fix(v)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[fix(k)] = withoutNUL(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = withoutNUL(x)
		}
		return out
	}
	return v
}

// describe names a request for a quarantine row, in printable ASCII whatever its bytes.
func describe(req Request) string {
	keys := make([]string, len(req.Exposures))
	for i, e := range req.Exposures {
		keys[i] = fmt.Sprintf("%s/%d/%s", e.Experiment, e.Phase, e.Variant)
	}
	return fmt.Sprintf("exposures of shopper %s: %s", strconv.QuoteToASCII(req.ShopperID), strconv.QuoteToASCII(strings.Join(keys, " ")))
}

// payloadOf is the request as JSON, for the quarantine.
func payloadOf(req Request) []byte {
	b, err := json.Marshal(struct {
		ShopperID  string         `json:"shopper_id"`
		At         string         `json:"at"`
		Attributes map[string]any `json:"attributes"`
		Exposures  []Exposure     `json:"exposures"`
	}{req.ShopperID, req.At.UTC().Format(time.RFC3339Nano), req.Attributes, req.Exposures})
	if err != nil {
		return []byte(strconv.QuoteToASCII(fmt.Sprintf("%+v", req)))
	}
	return b
}

// write stages what is left of the batch. When the database refuses the COPY's data, it
// halves the range until the refused rows are alone and quarantines each with its error,
// so that one bad row never holds up the others. Any other error is returned, with the
// batch's progress kept for the retry.
func (r *Recorder) write(ctx context.Context, b *batch) error {
	if len(b.refusedAs) > 0 {
		if err := quarantine(ctx, r.db, b.refusedAs); err != nil {
			return fmt.Errorf("quarantining %d exposure rows: %w", len(b.refusedAs), err)
		}
		for i, req := range b.refusals {
			r.queued.Add(-int64(len(req.Exposures)))
			r.setAside(req, "stage", b.refusedAs[i].err)
		}
		b.refusals, b.refusedAs = b.refusals[:0], b.refusedAs[:0]
	}
	if err := r.writeRange(ctx, b, b.next, len(b.reqs)); err != nil {
		return err
	}
	r.nudgeMerger()
	return nil
}

func (r *Recorder) writeRange(ctx context.Context, b *batch, lo, hi int) error {
	if lo >= hi {
		return nil
	}
	err := pgcopy.Exec(ctx, r.db.DB, copyStaged, b.text[b.start(lo):b.ends[hi-1]])
	if err == nil {
		n := 0
		for _, req := range b.reqs[lo:hi] {
			n += len(req.Exposures)
		}
		r.metrics.staged.Add(float64(n))
		r.queued.Add(-int64(n))
		b.next = hi
		return nil
	}
	state, bad := refused(err)
	if !bad {
		return err
	}
	if hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if err := r.writeRange(ctx, b, lo, mid); err != nil {
			return err
		}
		return r.writeRange(ctx, b, mid, hi)
	}
	req := b.reqs[lo]
	q := quarantined{stage: "stage", item: describe(req), payload: payloadOf(req), err: err.Error(), sqlstate: state}
	if err := quarantine(ctx, r.db, []quarantined{q}); err != nil {
		return fmt.Errorf("quarantining an exposure row: %w", err)
	}
	r.queued.Add(-int64(len(req.Exposures)))
	r.setAside(req, "stage", err.Error())
	b.next = hi
	return nil
}

// setAside counts a quarantined request's exposures as lost and says so in the log, once per
// second at most.
func (r *Recorder) setAside(req Request, stage, why string) {
	r.metrics.quarantined.WithLabelValues(stage).Inc()
	r.losses.add(req, reasonQuarantined)
	// The first in each second with its details; the per-second loss line counts them all.
	r.quarantineLog.Do(func() {
		r.log.Error("exposure row quarantined", "stage", stage, "item", describe(req), "error", why,
			"see", "exposure_quarantine")
	})
}

func (r *Recorder) nudgeMerger() {
	select {
	case r.merged <- struct{}{}:
	default:
	}
}
