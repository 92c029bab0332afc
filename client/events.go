package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// MaxBatch is the most events one POST /v1/events takes.
const MaxBatch = 1000

// The event types.
const (
	EventOfferViewed    = "offer_viewed"
	EventOfferAccepted  = "offer_accepted"
	EventOrderCompleted = "order_completed"
	EventOrderRefunded  = "order_refunded"
)

// Event is one thing a shopper did. Money is in integer minor units of Currency.
type Event struct {
	// ID is yours to choose, at most 128 characters; an id the server has seen is a duplicate
	// and changes nothing. SendEvents fills in an empty one.
	ID        string `json:"id"`
	Type      string `json:"type"`
	ShopperID string `json:"shopper_id"`
	// OccurredAt is when it happened; the zero time means now (at most 5 minutes ahead).
	OccurredAt time.Time `json:"occurred_at,omitzero"`
	Experiment string    `json:"experiment,omitempty"` // the experiment whose offer the event is about
	OrderID    string    `json:"order_id,omitempty"`   // required for orders and refunds
	Amount     *int64    `json:"amount,omitempty"`     // the order's total, or what a refund returns
	Discount   *int64    `json:"discount,omitempty"`   // what the offer took off the order
	Currency   string    `json:"currency,omitempty"`   // ISO 4217, with Amount or Discount
	Items      []Item    `json:"items,omitempty"`      // an order's lines
}

// Item is one line of an order.
type Item struct {
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unit_price"` // minor units
}

// EventsResult counts what the server did with the events sent.
type EventsResult struct {
	Accepted   int `json:"accepted"`   // stored now
	Duplicates int `json:"duplicates"` // stored before (a retry, or a batch sent twice)
	// Sent is how many events, from the start of the slice, are committed. After an error
	// the rest were not stored (their batches were refused or never answered) and may be
	// sent again as they are.
	Sent int `json:"-"`
}

// SendEvents reports events, MaxBatch (or WithBatchSize) to a request, one request after the
// other so that the server stores them in order. An event without an ID gets one, written
// into the slice, before the first request: every retry sends the same ids, so an answer
// lost on the way back never stores an event twice. A batch is committed when its request
// answers 200; one invalid event refuses its whole batch, and the error's Details index the
// problems by position in events, not in the batch.
func (c *Client) SendEvents(ctx context.Context, events []Event) (EventsResult, error) {
	for i := range events {
		if events[i].ID == "" {
			events[i].ID = "ev-" + rand.Text()
		}
	}
	var res EventsResult
	for start := 0; start < len(events); start += c.batch {
		end := min(start+c.batch, len(events))
		var r EventsResult
		_, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/events", retry: retrySafe, out: &r,
			body: struct {
				Events []Event `json:"events"`
			}{events[start:end]}})
		if err != nil {
			shiftIndexes(err, start)
			return res, fmt.Errorf("events[%d:%d]: %w", start, end, err)
		}
		res.Accepted += r.Accepted
		res.Duplicates += r.Duplicates
		res.Sent = end
	}
	return res, nil
}

// shiftIndexes makes the batch positions of an error's details positions in the whole slice.
func shiftIndexes(err error, offset int) {
	var e *Error
	if offset == 0 || !errors.As(err, &e) {
		return
	}
	for i := range e.Details {
		if e.Details[i].Index != nil {
			n := *e.Details[i].Index + offset
			e.Details[i].Index = &n
		}
	}
}
