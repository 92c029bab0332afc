package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The values of Strategy.Source.
const (
	SourceFixed       = "fixed"       // the strategy's own Products
	SourceComplements = "complements" // chosen for each shopper's context from the complements model
)

// Complement is a product bought together with another, as the complements model learned it.
type Complement struct {
	SKU        string  `json:"sku"`
	Score      float64 `json:"score"`      // Dunning's G² of the pair: ranks a product's complements
	Lift       float64 `json:"lift"`       // how many times more often together than by chance
	Confidence float64 `json:"confidence"` // share of the product's orders that hold this SKU
	Support    float64 `json:"support"`    // share of all orders that hold both
	Orders     int64   `json:"orders"`     // orders that hold both
}

// Complements is what GET /v1/complements/{sku} says.
type Complements struct {
	SKU         string       `json:"sku"`
	Complements []Complement `json:"complements"` // best first; empty for a product the model does not know
	// Model is the snapshot that answered; nil before the first build.
	Model *ComplementsModel `json:"model"`
}

// ComplementsModel identifies a snapshot of the complements model.
type ComplementsModel struct {
	Version int64     `json:"version"`
	BuiltAt time.Time `json:"built_at"`
	Orders  int64     `json:"orders"`
}

// ComplementsOptions narrows GetComplements: at most Limit complements (0: the server's
// maximum), of at least MinLift.
type ComplementsOptions struct {
	Limit   int
	MinLift float64
}

// GetComplements reads a product's complements, for product pages that only want the list
// (checkout or analyst key). It is answered from the server's memory.
func (c *Client) GetComplements(ctx context.Context, sku string, o ComplementsOptions) (*Complements, error) {
	q := url.Values{}
	if o.Limit != 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.MinLift != 0 {
		q.Set("min_lift", strconv.FormatFloat(o.MinLift, 'g', -1, 64))
	}
	var out Complements
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/complements/" + url.PathEscape(sku),
		query: q, retry: retrySafe, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// ComplementsModelState is what GET /v1/models/complements says: the snapshot this server
// serves and whether it is building another.
type ComplementsModelState struct {
	// Serving is the snapshot the server answers from; nil before the first build.
	Serving *ComplementsSnapshot `json:"serving"`
	// Coverage is the share of the serving snapshot's catalog with at least one complement.
	Coverage float64 `json:"coverage"`
	Building bool    `json:"building"`
}

// ComplementsSnapshot is one build of the complements model.
type ComplementsSnapshot struct {
	Version  int64     `json:"version"`
	BuiltAt  time.Time `json:"built_at"`
	Orders   int64     `json:"orders"`   // orders learned from
	Catalog  int       `json:"catalog"`  // products bought in the window
	Products int       `json:"products"` // of them, those with at least one complement
	Pairs    int64     `json:"pairs"`
}

// GetComplementsModel reads the state of the complements model (admin or analyst key).
func (c *Client) GetComplementsModel(ctx context.Context) (*ComplementsModelState, error) {
	var out ComplementsModelState
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/models/complements", retry: retrySafe, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// BuildComplements asks the server for a new snapshot now (admin key); it answers at once,
// with the state before the build. Poll GetComplementsModel until Serving.Version grows.
func (c *Client) BuildComplements(ctx context.Context) (*ComplementsModelState, error) {
	var out ComplementsModelState
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/models/complements/builds", retry: retrySafe, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}
