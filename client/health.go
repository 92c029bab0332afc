package client

import (
	"context"
	"encoding/json"
	"net/http"
)

// Readiness is what GET /readyz says.
type Readiness struct {
	Status     string `json:"status"` // ready, degraded (assignment only, from its cache) or unavailable
	Database   string `json:"database"`
	Migrations string `json:"migrations"`
	Assignment string `json:"assignment,omitempty"`
	Exposures  string `json:"exposures,omitempty"` // "shedding: …" while exposures are being dropped
}

// Ready asks once whether the server can do its work: nil when it answers ready. A server that
// answers not ready gives its Readiness with a *Error of status 503; it is not retried, since
// a caller waiting for a server polls.
func (c *Client) Ready(ctx context.Context) (*Readiness, error) {
	var r Readiness
	_, raw, err := c.send(ctx, request{method: http.MethodGet, path: "/readyz"}, nil)
	if len(raw) > 0 {
		if json.Unmarshal(raw, &r) != nil && err == nil {
			return nil, &Error{Status: http.StatusOK, Message: "unreadable /readyz answer", method: http.MethodGet, path: "/readyz"}
		}
	}
	if err != nil {
		return &r, err
	}
	return &r, nil
}
