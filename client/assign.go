package client

import (
	"context"
	"net/http"
	"time"
)

// AssignRequest asks which strategy a shopper gets (POST /v1/assign).
type AssignRequest struct {
	ShopperID string `json:"shopper_id"`
	// Attributes are what targeting reads (country, device, …).
	Attributes map[string]any `json:"attributes,omitempty"`
	// Experiments names the experiments to answer for; none means every running one.
	Experiments []string `json:"experiments,omitempty"`
	// Track false answers without recording exposures: to prefetch before the offer can be
	// seen. Ask again with Track nil (or true) when the offer is about to be shown, so that
	// only shoppers who could see it enter the analysis. Nil means true.
	Track *bool `json:"track,omitempty"`
	// Context is what the shopper is looking at, for strategies that choose their products
	// from it (learned complements).
	Context *AssignContext `json:"context,omitempty"`
	// At back-dates the exposure, for simulated or back-filled traffic: admin key only, at
	// most 90 days ago. Checkout never sends it.
	At *time.Time `json:"at,omitempty"`
}

// AssignContext is the page or cart an assignment is asked for.
type AssignContext struct {
	Products []string `json:"products"` // SKUs on the page or in the cart, at most 100
}

// AssignResponse is the answer of POST /v1/assign: one Assignment per experiment.
type AssignResponse struct {
	ShopperID   string       `json:"shopper_id"`
	Assignments []Assignment `json:"assignments"`
}

// For is the answer for one experiment, if there is one.
func (r *AssignResponse) For(experiment string) (Assignment, bool) {
	for _, a := range r.Assignments {
		if a.Experiment == experiment {
			return a, true
		}
	}
	return Assignment{}, false
}

// The reasons of an assignment: why the shopper is or is not in the experiment.
const (
	ReasonAssigned          = "assigned"
	ReasonForced            = "forced"
	ReasonNotTargeted       = "not_targeted"
	ReasonNotInCoverage     = "not_in_coverage"
	ReasonNotInLayer        = "not_in_layer"
	ReasonNotRunning        = "not_running"
	ReasonUnknownExperiment = "unknown_experiment"
)

// The values of Assignment.Offer: whether to show the variant's offer.
const (
	OfferShow            = "show"             // show the strategy (also when Offer is empty)
	OfferCapped          = "capped"           // the shopper saw enough offers: show the control's experience
	OfferBudgetExhausted = "budget_exhausted" // the budget is spent: show the control's experience
	OfferHoldout         = "holdout"          // the shopper is in the global holdout: no offer
	OfferNoComplements   = "no_complements"   // nothing to offer for this context
)

// Assignment is one experiment's answer for one shopper.
type Assignment struct {
	Experiment   string  `json:"experiment"`
	Phase        int     `json:"phase,omitempty"`
	InExperiment bool    `json:"in_experiment"`
	Variant      *string `json:"variant"` // nil when not in the experiment
	Reason       string  `json:"reason"`
	// Offer says whether to show the strategy; a shopper told not to stays in their variant
	// for the analysis.
	Offer    string   `json:"offer,omitempty"`
	Strategy Strategy `json:"strategy"`
}

// ShowsOffer says whether checkout should show the assignment's strategy: the shopper is in
// the experiment and the server did not say to hold the offer back.
func (a Assignment) ShowsOffer() bool {
	return a.InExperiment && (a.Offer == "" || a.Offer == OfferShow)
}

// Assign asks which strategy a shopper gets. It is retried on failures: the same request
// gets the same answer and records one exposure however often it is sent.
func (c *Client) Assign(ctx context.Context, req AssignRequest) (*AssignResponse, error) {
	var out AssignResponse
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/assign", body: req, retry: retrySafe, out: &out})
	if err != nil {
		return nil, err
	}
	return &out, nil
}
