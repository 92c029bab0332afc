package exposures

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/xsell/xsell/internal/database"
	"github.com/xsell/xsell/internal/pgcopy"
)

// copyStaged stages requests, one row each.
const copyStaged = `COPY exposure_log (shopper_id, at, attributes, experiments, phases, variants,
	offer_experiments, offer_phases, offer_skus) FROM STDIN`

// item is one request's exposures on their way to exposure_log: encoded as its row of COPY
// text on the request path, so that the one writer goroutine, which competes for the CPU with
// every request being served, only concatenates rows and sends them.
type item struct {
	shopper string
	at      time.Time
	line    []byte // the row as COPY text, newline included; nil when refused
	// kept is the request's exposures and offers (appendLists), for what reads them only
	// when a row is lost or quarantined (lists): bytes after the row's, in its allocation,
	// rather than slices of strings, so that a queued item holds one block the collector
	// does not scan, and recording allocates once, not twice (docs/benchmarks.md, "New
	// carts").
	kept []byte
	// exposures is how many exposures the item holds, for the count of those queued.
	exposures int
	// refused says why a column cannot hold the shopper id; attrs is then kept for the
	// quarantine, since changing the id would credit another shopper.
	refused string
	attrs   map[string]any
}

// encode makes the item of req's shopper, time and attributes with these exposures and offers
// (those of req that Record queues; req's own lists are not read: passed apart from req, whose
// strings and map go into the item, they may stay on the caller's stack). Attributes are kept with
// what Postgres cannot store replaced (see attributesJSON), or as the caller's AttributesJSON;
// a shopper id it cannot store makes the item refused.
func encode(req Request, exposures []Exposure, offers []Offer) item {
	it := item{shopper: req.ShopperID, at: req.At, exposures: len(exposures)}
	if why := unstorable(req.ShopperID); why != "" {
		it.refused, it.attrs = "shopper_id "+why, req.Attributes
		it.kept = appendLists(nil, exposures, offers)
		return it
	}
	// A row of offers alone (a returning shopper's new cart) merges no exposure, the one
	// reader of its attributes: they are not encoded.
	var attrs []byte
	switch {
	case len(exposures) == 0:
		attrs = []byte("{}")
	case req.AttributesJSON == "":
		attrs = attributesJSON(req.Attributes)
	}
	size := 64 + len(req.ShopperID) + len(attrs) + len(req.AttributesJSON) + 24*len(exposures) + 32*len(offers)
	rows := pgcopy.Rows{B: make([]byte, 0, size+listsSize(exposures, offers))}
	var at [40]byte
	rows.Text(req.ShopperID).Raw(pgcopy.AppendTimestamp(at[:0], req.At))
	if attrs == nil {
		rows.Text(req.AttributesJSON) // escaped: white space between its tokens may be a tab or a newline
	} else {
		rows.Bytes(attrs)
	}
	var arr [256]byte
	var asks uint8
	stringColumn(&rows, appendArray(arr[:0], exposures, func(dst []byte, e *Exposure) []byte { return appendElement(dst, e.Experiment, &asks) }), &asks)
	rows.Raw(appendArray(arr[:0], exposures, func(dst []byte, e *Exposure) []byte { return strconv.AppendInt(dst, int64(e.Phase), 10) }))
	stringColumn(&rows, appendArray(arr[:0], exposures, func(dst []byte, e *Exposure) []byte { return appendElement(dst, e.Variant, &asks) }), &asks)
	appendOffers(&rows, offers, arr[:0])
	rows.End()
	n := len(rows.B)
	it.line = rows.B[:n:n]
	it.kept = appendLists(rows.B[n:n], exposures, offers)
	return it
}

// appendLists appends exposures and offers as lists reads them back: a count, then each
// one's strings (length-prefixed) and phase, as varints.
func appendLists(dst []byte, exposures []Exposure, offers []Offer) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(exposures)))
	for i := range exposures {
		e := &exposures[i]
		dst = appendListString(dst, e.Experiment)
		dst = binary.AppendVarint(dst, int64(e.Phase))
		dst = appendListString(dst, e.Variant)
	}
	dst = binary.AppendUvarint(dst, uint64(len(offers)))
	for i := range offers {
		o := &offers[i]
		dst = appendListString(dst, o.Experiment)
		dst = binary.AppendVarint(dst, int64(o.Phase))
		dst = appendListString(dst, o.Variant)
		dst = appendListString(dst, o.SKU)
	}
	return dst
}

// listsSize is the number of bytes appendLists takes for exposures and offers.
func listsSize(exposures []Exposure, offers []Offer) int {
	n := uvarintSize(uint64(len(exposures))) + uvarintSize(uint64(len(offers)))
	for i := range exposures {
		e := &exposures[i]
		n += stringSize(e.Experiment) + varintSize(int64(e.Phase)) + stringSize(e.Variant)
	}
	for i := range offers {
		o := &offers[i]
		n += stringSize(o.Experiment) + varintSize(int64(o.Phase)) + stringSize(o.Variant) + stringSize(o.SKU)
	}
	return n
}

func stringSize(s string) int  { return uvarintSize(uint64(len(s))) + len(s) }
func uvarintSize(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }
func varintSize(x int64) int   { return uvarintSize(uint64(x<<1) ^ uint64(x>>63)) }

func appendListString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

// lists returns the item's exposures and offers (nil for none), as the request gave them.
func (it *item) lists() (exposures []Exposure, offers []Offer) {
	b := it.kept
	count := func() int {
		n, k := binary.Uvarint(b)
		b = b[k:]
		return int(n)
	}
	str := func() string {
		n := count()
		s := string(b[:n])
		b = b[n:]
		return s
	}
	phase := func() int {
		v, k := binary.Varint(b)
		b = b[k:]
		return int(v)
	}
	if n := count(); n > 0 {
		exposures = make([]Exposure, n)
		for i := range exposures {
			exposures[i] = Exposure{Experiment: str(), Phase: phase(), Variant: str()}
		}
	}
	if n := count(); n > 0 {
		offers = make([]Offer, n)
		for i := range offers {
			offers[i] = Offer{Experiment: str(), Phase: phase(), Variant: str(), SKU: str()}
		}
	}
	return exposures, offers
}

// batch is items being staged: their rows written in one COPY, retried while the database is
// unreachable, and split when the database refuses a row.
type batch struct {
	items []item // items with a row, in order
	text  []byte // their rows
	ends  []int  // row i is text[ends[i-1]:ends[i]]
	next  int    // rows before next are staged or quarantined
	// refused are items the recorder will not send, waiting to be quarantined.
	refused []item
}

func (b *batch) len() int { return len(b.items) + len(b.refused) }

func (b *batch) add(it item) {
	if it.line == nil {
		b.refused = append(b.refused, it)
		return
	}
	b.text = append(b.text, it.line...)
	b.items = append(b.items, it)
	b.ends = append(b.ends, len(b.text))
}

func (b *batch) reset() {
	clear(b.items) // let the rows go
	clear(b.refused)
	b.items, b.text, b.ends, b.next, b.refused = b.items[:0], b.text[:0], b.ends[:0], 0, b.refused[:0]
}

func (b *batch) start(i int) int {
	if i == 0 {
		return 0
	}
	return b.ends[i-1]
}

// appendArray appends a Postgres array literal of one element per exposure or offer.
func appendArray[T any](dst []byte, es []T, elem func([]byte, *T) []byte) []byte {
	dst = append(dst, '{')
	for i := range es {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = elem(dst, &es[i])
	}
	return append(dst, '}')
}

// appendOffers appends the offers' three columns: NULL for a request that offered nothing new,
// nearly every request, so that its row stays as short as before offers were recorded. arr is
// memory for an array literal.
func appendOffers(rows *pgcopy.Rows, offers []Offer, arr []byte) {
	if len(offers) == 0 {
		rows.Opt("").Opt("").Opt("")
		return
	}
	var asks uint8
	stringColumn(rows, appendArray(arr, offers, func(dst []byte, o *Offer) []byte { return appendElement(dst, o.Experiment, &asks) }), &asks)
	rows.Raw(appendArray(arr[:0], offers, func(dst []byte, o *Offer) []byte { return strconv.AppendInt(dst, int64(o.Phase), 10) }))
	stringColumn(rows, appendArray(arr[:0], offers, func(dst []byte, o *Offer) []byte { return appendElement(dst, o.SKU, &asks) }), &asks)
}

// stringColumn appends an array literal of appendElement's elements to rows, escaped for COPY
// only when one of them asked for it (asks, which it resets): each string is scanned once, for
// what it asks of the array literal and of COPY text both, and an array of usual keys and SKUs
// is written as it was built, where escaping it for COPY scanned every byte again
// (docs/benchmarks.md, "New carts").
func stringColumn(rows *pgcopy.Rows, array []byte, asks *uint8) {
	if *asks&escapeCopy == 0 {
		rows.Raw(array)
	} else {
		rows.Bytes(array)
	}
	*asks = 0
}

// What a byte of an array element asks for: a backslash before it in the array literal, and
// the literal escaped as COPY text (the backslash the array adds, or a tab, newline or
// carriage return).
const (
	escapeElement uint8 = 1 << iota
	escapeCopy
)

var escapes = [256]uint8{
	'"': escapeElement | escapeCopy, '\\': escapeElement | escapeCopy,
	'\t': escapeCopy, '\n': escapeCopy, '\r': escapeCopy,
}

// appendElement appends s as a quoted element of an array literal: quoted, so that a key
// spelled "null" is not read as NULL. It adds to asks what the string's bytes ask for
// (escapes).
func appendElement(dst []byte, s string, asks *uint8) []byte {
	var a uint8
	for i := 0; i < len(s); i++ {
		a |= escapes[s[i]]
	}
	*asks |= a
	dst = append(dst, '"')
	if a&escapeElement == 0 { // every key the API accepts: copied whole rather than byte by byte
		dst = append(dst, s...)
		return append(dst, '"')
	}
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

// attributesJSON is the attributes as JSON that jsonb accepts. The encoder (goccy/go-json,
// which the API's decoder uses too: the same output as encoding/json with a fifth of its
// allocations, on the request path of every new shopper) replaces invalid UTF-8 with U+FFFD;
// a NUL in a key or value is replaced the same way here.
// The edge refuses both in a request; this is the writer's own defence, so that no request
// can make a row the database refuses.
func attributesJSON(attrs map[string]any) []byte {
	empty := []byte("{}")
	if len(attrs) == 0 {
		return empty
	}
	b, err := gojson.Marshal(attrs)
	if err != nil {
		// Attributes come from decoded JSON, so this does not happen; should it, the exposure
		// is worth more than its attributes.
		return empty
	}
	if bytes.Contains(b, nulEscape) { // or a literal backslash before u0000: harmless extra work
		if b, err = gojson.Marshal(withoutNUL(attrs)); err != nil {
			return empty
		}
	}
	return b
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

// describe names an item for a quarantine row, in printable ASCII whatever its bytes.
func (it *item) describe() string {
	exposures, offers := it.lists()
	keys := make([]string, 0, len(exposures)+len(offers))
	for _, e := range exposures {
		keys = append(keys, fmt.Sprintf("%s/%d/%s", e.Experiment, e.Phase, e.Variant))
	}
	for _, o := range offers {
		keys = append(keys, fmt.Sprintf("%s/%d offered %s", o.Experiment, o.Phase, o.SKU))
	}
	return fmt.Sprintf("exposures of shopper %s: %s", strconv.QuoteToASCII(it.shopper), strconv.QuoteToASCII(strings.Join(keys, " ")))
}

// payload is the item as the quarantine keeps it: the request when it was refused before
// being encoded, else its row of COPY text.
func (it *item) payload() any {
	exposures, offers := it.lists()
	return struct {
		ShopperID  string         `json:"shopper_id"`
		At         time.Time      `json:"at"`
		Exposures  []Exposure     `json:"exposures"`
		Offers     []Offer        `json:"offers,omitempty"`
		Attributes map[string]any `json:"attributes,omitempty"`
		CopyRow    string         `json:"copy_row,omitempty"`
	}{it.shopper, it.at.UTC(), exposures, offers, it.attrs, string(it.line)}
}

// write stages what is left of the batch. When the database refuses the COPY's data, it
// halves the range until the refused rows are alone and quarantines each with its error,
// so that one bad row never holds up the others. Any other error is returned, with the
// batch's progress kept for the retry.
func (r *Recorder) write(ctx context.Context, b *batch) error {
	for len(b.refused) > 0 {
		it := &b.refused[0]
		if err := r.quarantine.Put(ctx, r.db, StagingConsumer, it.describe(), it.payload(), errors.New(it.refused)); err != nil {
			return err
		}
		r.setAside(it, true)
		b.refused = b.refused[1:]
	}
	if err := r.writeRange(ctx, b, b.next, len(b.items)); err != nil {
		return err
	}
	r.nudgeMerger()
	return nil
}

func (r *Recorder) writeRange(ctx context.Context, b *batch, lo, hi int) error {
	if lo >= hi {
		return nil
	}
	err := database.Transact(ctx, r.db, nil, func(tx *database.Tx) error {
		return tx.Raw(func(dc any) error { return pgcopy.In(ctx, dc, copyStaged, b.text[b.start(lo):b.ends[hi-1]]) })
	})
	if err == nil {
		n := 0
		for i := range b.items[lo:hi] {
			n += b.items[lo+i].exposures
		}
		r.metrics.staged.Add(float64(n))
		r.queued.Add(-int64(n))
		r.lastStaged.Store(time.Now().UnixNano())
		b.next = hi
		return nil
	}
	if !database.Refused(err) {
		return database.Wrap(err, "staging %d exposure rows", hi-lo)
	}
	if hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if err := r.writeRange(ctx, b, lo, mid); err != nil {
			return err
		}
		return r.writeRange(ctx, b, mid, hi)
	}
	it := &b.items[lo]
	if err := r.quarantine.Put(ctx, r.db, StagingConsumer, it.describe(), it.payload(), err); err != nil {
		return err
	}
	r.setAside(it, true)
	b.next = hi
	return nil
}

// setAside counts a quarantined item's exposures as lost (the quarantine counts and logs the
// row itself); queued says whether they were still counted as queued.
func (r *Recorder) setAside(it *item, queued bool) {
	if queued {
		r.queued.Add(-int64(it.exposures))
	}
	exposures, offers := it.lists()
	r.losses.add(it.at, exposures, offers, reasonQuarantined)
}

func (r *Recorder) nudgeMerger() {
	select {
	case r.merged <- struct{}{}:
	default:
	}
}
