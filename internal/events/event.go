// Package events ingests checkout's outcome events (offer views, acceptances, orders, refunds)
// durably and exactly once per event id, because analysis and loyalty both count from them.
package events

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/money"
	"github.com/xsell/xsell/internal/validate"
)

// The event types of SPEC §5.
const (
	OfferViewed    = "offer_viewed"
	OfferAccepted  = "offer_accepted"
	OrderCompleted = "order_completed"
	OrderRefunded  = "order_refunded"
)

// Limits of a batch and of an event's fields.
const (
	MaxBatch       = 1000                  // events per request
	MaxIDLength    = 128                   // characters of an event id, order id, experiment key or SKU
	MaxShopperLen  = validate.MaxShopperID // characters of a shopper id
	MaxItems       = 1000                  // lines of one order
	MaxFutureSkew  = 5 * time.Minute       // how far occurred_at may be ahead of the server's clock
	maxQuantity    = 1_000_000             // a bigger quantity is a client bug, not an order
	earliestString = "1970-01-01T00:00:00Z"
)

// earliest is the oldest occurred_at accepted: older ones are client bugs (zero times), and
// Postgres cannot store every date Go can parse (year 0).
var earliest, _ = time.Parse(time.RFC3339, earliestString)

var eventTypes = []string{OfferViewed, OfferAccepted, OrderCompleted, OrderRefunded}

// Event is one validated outcome event.
type Event struct {
	ID         string
	Type       string
	ShopperID  string
	OccurredAt time.Time
	Experiment string // "" when the event is about no experiment
	OrderID    string // "" for offer events that name no order
	Amount     *int64 // minor units; nil when absent
	Discount   *int64 // minor units; nil when absent
	Currency   string // ISO 4217, set whenever Amount or Discount is
	Items      []Item
}

// Item is one line of an order.
type Item struct {
	SKU       string
	Quantity  int64
	UnitPrice int64 // minor units, in the event's currency
}

// Input is an event as JSON carries it; pointers tell a missing field from a zero one.
type Input struct {
	ID         *string     `json:"id"`
	Type       *string     `json:"type"`
	ShopperID  *string     `json:"shopper_id"`
	OccurredAt *string     `json:"occurred_at"`
	Experiment *string     `json:"experiment"`
	OrderID    *string     `json:"order_id"`
	Amount     *int64      `json:"amount"`
	Discount   *int64      `json:"discount"`
	Currency   *string     `json:"currency"`
	Items      []InputItem `json:"items"` // nil when absent or null
}

// InputItem is an order line as JSON carries it.
type InputItem struct {
	SKU       *string `json:"sku"`
	Quantity  *int64  `json:"quantity"`
	UnitPrice *int64  `json:"unit_price"`
}

// Validate applies SPEC §5's rules to a batch already decoded into its types, reporting every
// problem with the event's index and the field's path. Events without occurred_at get now.
// A null event (a nil pointer) is reported as Parse reports it.
func Validate(in []*Input, now time.Time) ([]Event, error) {
	var p apperr.Problems
	if !batchSize(in == nil, len(in), &p) {
		return nil, p.Err()
	}
	out := make([]Event, len(in))
	for i, e := range in {
		if e == nil {
			p.AddAt(i, "", "wrong_type", "an event must be an object")
			continue
		}
		out[i] = validateEvent(*e, nil, i, now, &p)
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func batchSize(missing bool, n int, p *apperr.Problems) bool {
	switch {
	case missing:
		p.Add("events", "required", "is required: an array of 1 to %d events", MaxBatch)
	case n == 0:
		p.Add("events", "out_of_range", "must hold at least one event")
	case n > MaxBatch:
		p.Add("events", "out_of_range", "must hold at most %d events, not %d", MaxBatch, n)
	default:
		return true
	}
	return false
}

// Parse decodes and validates a batch of events as JSON values. It decodes each event field by
// field rather than into a struct, so that every problem of every event — wrong types and
// unknown fields included — is reported with the event's index and the field's path; it is
// the slow path, for batches that a typed decode refused. Events without occurred_at get now.
func Parse(raw []json.RawMessage, now time.Time) ([]Event, error) {
	var p apperr.Problems
	if !batchSize(raw == nil, len(raw), &p) {
		return nil, p.Err()
	}
	out := make([]Event, len(raw))
	for i, r := range raw {
		w, bad := decodeEvent(r, i, &p)
		if bad == nil {
			continue // not an object: already reported
		}
		out[i] = validateEvent(w, bad, i, now, &p)
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// decodeEvent reads one event's fields; bad names those that had the wrong type, so that
// validate does not report them a second time. A nil bad means the value is not an object.
func decodeEvent(raw json.RawMessage, i int, p *apperr.Problems) (Input, map[string]bool) {
	var w Input
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		p.AddAt(i, "", "wrong_type", "an event must be an object")
		return w, nil
	}
	bad := map[string]bool{}
	str := func(name string, dst **string) {
		if v, ok := obj[name]; ok {
			delete(obj, name)
			if err := json.Unmarshal(v, dst); err != nil {
				p.AddAt(i, name, "wrong_type", "must be a string")
				bad[name] = true
			}
		}
	}
	integer := func(name string, dst **int64) {
		if v, ok := obj[name]; ok {
			delete(obj, name)
			if err := json.Unmarshal(v, dst); err != nil {
				p.AddAt(i, name, "wrong_type", "must be an integer (minor units)")
				bad[name] = true
			}
		}
	}
	str("id", &w.ID)
	str("type", &w.Type)
	str("shopper_id", &w.ShopperID)
	str("occurred_at", &w.OccurredAt)
	str("experiment", &w.Experiment)
	str("order_id", &w.OrderID)
	integer("amount", &w.Amount)
	integer("discount", &w.Discount)
	str("currency", &w.Currency)
	if v, ok := obj["items"]; ok {
		delete(obj, "items")
		w.Items = decodeItems(v, i, p, bad)
	}
	unknown := make([]string, 0, len(obj))
	for k := range obj {
		unknown = append(unknown, k)
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		p.AddAt(i, k, "unknown_field", "unknown field")
	}
	return w, bad
}

func decodeItems(raw json.RawMessage, i int, p *apperr.Problems, bad map[string]bool) []InputItem {
	if string(raw) == "null" {
		return nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		p.AddAt(i, "items", "wrong_type", "must be an array of items")
		bad["items"] = true
		return nil
	}
	items := make([]InputItem, len(list))
	for j, r := range list {
		path := "items[" + strconv.Itoa(j) + "]"
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(r, &obj); err != nil || obj == nil {
			p.AddAt(i, path, "wrong_type", "an item must be an object")
			bad[path] = true
			continue
		}
		if v, ok := obj["sku"]; ok {
			delete(obj, "sku")
			if err := json.Unmarshal(v, &items[j].SKU); err != nil {
				p.AddAt(i, path+".sku", "wrong_type", "must be a string")
				bad[path+".sku"] = true
			}
		}
		for _, f := range []struct {
			name string
			dst  **int64
		}{{"quantity", &items[j].Quantity}, {"unit_price", &items[j].UnitPrice}} {
			if v, ok := obj[f.name]; ok {
				delete(obj, f.name)
				if err := json.Unmarshal(v, f.dst); err != nil {
					p.AddAt(i, path+"."+f.name, "wrong_type", "must be an integer")
					bad[path+"."+f.name] = true
				}
			}
		}
		unknown := make([]string, 0, len(obj))
		for k := range obj {
			unknown = append(unknown, k)
		}
		slices.Sort(unknown)
		for _, k := range unknown {
			p.AddAt(i, path+"."+k, "unknown_field", "unknown field")
		}
	}
	return items
}

// validateEvent applies SPEC §5's rules to one decoded event; bad names the fields that had the
// wrong type (nil after a typed decode), which are not checked again.
func validateEvent(w Input, bad map[string]bool, i int, now time.Time, p *apperr.Problems) Event {
	var e Event
	text := func(field string, v *string, max int, required bool) string {
		switch {
		case bad[field]:
		case v == nil || *v == "":
			if required {
				p.AddAt(i, field, "required", "is required")
			}
		case !validate.TextAt(p, i, field, *v):
			// Postgres text cannot hold NUL or invalid UTF-8; refusing them here keeps one bad
			// event from failing the group transaction it would share with other clients'.
		case utf8.RuneCountInString(*v) > max:
			p.AddAt(i, field, "too_long", "must be at most %d characters, not %d", max, utf8.RuneCountInString(*v))
		default:
			return *v
		}
		return ""
	}
	e.ID = text("id", w.ID, MaxIDLength, true)
	e.ShopperID = text("shopper_id", w.ShopperID, MaxShopperLen, true)
	e.Experiment = text("experiment", w.Experiment, MaxIDLength, false)

	isOrder := false
	switch {
	case bad["type"]:
	case w.Type == nil || *w.Type == "":
		p.AddAt(i, "type", "required", "is required: one of %s", strings.Join(eventTypes, ", "))
	case !slices.Contains(eventTypes, *w.Type):
		p.AddAt(i, "type", "not_allowed", "must be one of %s", strings.Join(eventTypes, ", "))
	default:
		e.Type = *w.Type
		isOrder = e.Type == OrderCompleted || e.Type == OrderRefunded
	}
	e.OrderID = text("order_id", w.OrderID, MaxIDLength, isOrder)

	e.OccurredAt = now
	if w.OccurredAt != nil && !bad["occurred_at"] {
		t, err := time.Parse(time.RFC3339Nano, *w.OccurredAt)
		switch {
		case err != nil:
			p.AddAt(i, "occurred_at", "invalid_format", "must be an RFC 3339 time such as 2026-11-25T14:03:00Z")
		case t.After(now.Add(MaxFutureSkew)):
			p.AddAt(i, "occurred_at", "in_the_future", "is more than %s ahead of the server's clock (%s)", MaxFutureSkew, now.UTC().Format(time.RFC3339))
		case t.Before(earliest):
			p.AddAt(i, "occurred_at", "out_of_range", "must not be before %s", earliestString)
		default:
			e.OccurredAt = t
		}
	}

	amount := func(field string, v *int64, required bool) *int64 {
		switch {
		case bad[field]:
		case v == nil:
			if required {
				p.AddAt(i, field, "required", "is required for %s events (integer minor units)", e.Type)
			}
		case *v < 0 || *v > money.MaxAmount:
			p.AddAt(i, field, "out_of_range", "must be from 0 to %d (integer minor units)", money.MaxAmount)
		default:
			return v
		}
		return nil
	}
	e.Amount = amount("amount", w.Amount, isOrder)
	e.Discount = amount("discount", w.Discount, false)
	if e.Amount != nil && e.Discount != nil && *e.Discount > *e.Amount {
		p.AddAt(i, "discount", "out_of_range", "must not exceed amount (%d)", *e.Amount)
		e.Discount = nil
	}

	switch {
	case bad["currency"]:
	case w.Currency == nil || *w.Currency == "":
		if w.Amount != nil || w.Discount != nil {
			p.AddAt(i, "currency", "required", "is required with amount or discount")
		}
	default:
		e.Currency = validCurrency(*w.Currency, i, p)
	}

	if w.Items != nil && !bad["items"] {
		switch {
		case e.Type != "" && e.Type != OrderCompleted:
			p.AddAt(i, "items", "not_allowed", "only %s events carry items", OrderCompleted)
		case len(w.Items) > MaxItems:
			p.AddAt(i, "items", "out_of_range", "must hold at most %d items, not %d", MaxItems, len(w.Items))
		default:
			e.Items = validateItems(w.Items, bad, i, p)
		}
	}
	return e
}

// validCurrency accepts an upper-case ISO 4217 code that names a currency (internal/money).
func validCurrency(c string, i int, p *apperr.Problems) string {
	switch _, err := money.Parse(c); {
	case errors.Is(err, money.ErrFormat):
		p.AddAt(i, "currency", "invalid_format", "%s", money.ErrFormat)
		return ""
	case err != nil:
		p.AddAt(i, "currency", "not_allowed", "%q %s", c, money.ErrUnknown)
		return ""
	}
	return c
}

func validateItems(items []InputItem, bad map[string]bool, i int, p *apperr.Problems) []Item {
	out := make([]Item, 0, len(items))
	var total int64
	for j, it := range items {
		path := "items[" + strconv.Itoa(j) + "]"
		if bad[path] {
			continue
		}
		var item Item
		switch {
		case bad[path+".sku"]:
		case it.SKU == nil:
			p.AddAt(i, path+".sku", "required", "is required")
		case validate.SKUAt(p, i, path+".sku", *it.SKU):
			item.SKU = *it.SKU
		}
		switch {
		case bad[path+".quantity"]:
		case it.Quantity == nil:
			p.AddAt(i, path+".quantity", "required", "is required")
		case *it.Quantity < 1 || *it.Quantity > maxQuantity:
			p.AddAt(i, path+".quantity", "out_of_range", "must be between 1 and %d", maxQuantity)
		default:
			item.Quantity = *it.Quantity
		}
		switch {
		case bad[path+".unit_price"]:
		case it.UnitPrice == nil:
			p.AddAt(i, path+".unit_price", "required", "is required (integer minor units)")
		case *it.UnitPrice < 0 || *it.UnitPrice > money.MaxAmount:
			p.AddAt(i, path+".unit_price", "out_of_range", "must be from 0 to %d (integer minor units)", money.MaxAmount)
		default:
			item.UnitPrice = *it.UnitPrice
		}
		// Both factors are bounded, so the product fits 64 bits; the line and the running
		// total must stay an amount, so that no sum over an order can overflow downstream.
		if line := item.Quantity * item.UnitPrice; line > money.MaxAmount {
			p.AddAt(i, path, "out_of_range", "quantity × unit_price must be at most %d (integer minor units)", money.MaxAmount)
		} else if total += line; total > money.MaxAmount {
			p.AddAt(i, "items", "out_of_range", "the lines must total at most %d (integer minor units)", money.MaxAmount)
			total = math.MinInt64 / 2 // reported once
		}
		out = append(out, item)
	}
	return out
}
