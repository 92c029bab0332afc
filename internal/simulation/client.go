package simulation

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// client speaks the server's public HTTP API, retrying what a real checkout would retry: a
// connection error, a 5xx or a 429. Events carry their own ids, so a retried batch is never
// stored twice, and an assignment is deterministic, so asking again gives the same answer.
type client struct {
	base        string
	adminKey    string
	checkoutKey string
	http        *http.Client
	requests    atomic.Int64
	retries     atomic.Int64
}

// apiError is a 4xx answer: a mistake of the simulator or the scenario, never retried.
type apiError struct {
	method, path string
	status       int
	body         string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.method, e.path, e.status, strings.TrimSpace(e.body))
}

const maxAttempts = 5

// do sends a request and decodes a 2xx JSON answer into out (when not nil).
func (c *client) do(ctx context.Context, method, path, key string, body []byte, out any) error {
	var last error
	backoff := 100 * time.Millisecond
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		if attempt > 1 {
			c.retries.Add(1)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff *= 2
		}
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
		if err != nil {
			return err
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		c.requests.Add(1)
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			last = err
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
			last = err
			continue
		case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
			last = &apiError{method, path, resp.StatusCode, string(b)}
			continue
		case resp.StatusCode >= 300:
			return &apiError{method, path, resp.StatusCode, string(b)}
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: unreadable answer: %v", method, path, err)
		}
		return nil
	}
	return fmt.Errorf("%s %s: giving up after %d attempts: %w", method, path, maxAttempts, last)
}

// experiment is what the simulator needs of GET /v1/experiments/{key}.
type experiment struct {
	Key            string   `json:"key"`
	Status         string   `json:"status"`
	Phase          int      `json:"phase"`
	TargetProducts []string `json:"target_products"`
	Variants       []struct {
		Key      string   `json:"key"`
		Strategy Strategy `json:"strategy"`
	} `json:"variants"`
}

func (c *client) experiment(ctx context.Context, key string) (*experiment, error) {
	var x experiment
	if err := c.do(ctx, http.MethodGet, "/v1/experiments/"+url.PathEscape(key), c.adminKey, nil, &x); err != nil {
		return nil, err
	}
	return &x, nil
}

// targets are the SKUs whose purchase counts as a cross-sell: the experiment's
// target_products, by default the union of its variants' products (SPEC §3).
func (x *experiment) targets() []string {
	if len(x.TargetProducts) > 0 {
		return x.TargetProducts
	}
	var out []string
	for _, v := range x.Variants {
		for _, p := range v.Strategy.Products {
			if !contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

type assignRequest struct {
	ShopperID   string         `json:"shopper_id"`
	Attributes  map[string]any `json:"attributes"`
	Experiments []string       `json:"experiments"`
	At          time.Time      `json:"at"`
}

type assignResponse struct {
	Assignments []Assignment `json:"assignments"`
}

// assign asks for one shopper's variant, back-dated to the arrival (admin key).
func (c *client) assign(ctx context.Context, experiment string, s *shopper) (Assignment, error) {
	body, err := json.Marshal(assignRequest{ShopperID: s.id, Attributes: s.attrs, Experiments: []string{experiment}, At: s.arrival})
	if err != nil {
		return Assignment{}, err
	}
	var r assignResponse
	if err := c.do(ctx, http.MethodPost, "/v1/assign", c.adminKey, body, &r); err != nil {
		return Assignment{}, err
	}
	for _, a := range r.Assignments {
		if a.Experiment == experiment {
			return a, nil
		}
	}
	return Assignment{}, fmt.Errorf("POST /v1/assign: no answer for experiment %s", experiment)
}

type eventsResponse struct {
	Accepted   int64 `json:"accepted"`
	Duplicates int64 `json:"duplicates"`
}

// events sends one batch (checkout key).
func (c *client) events(ctx context.Context, batch []Event) (eventsResponse, error) {
	body, err := json.Marshal(struct {
		Events []Event `json:"events"`
	}{batch})
	if err != nil {
		return eventsResponse{}, err
	}
	var r eventsResponse
	err = c.do(ctx, http.MethodPost, "/v1/events", c.checkoutKey, body, &r)
	return r, err
}

// lifetimeEarned is the points a shopper has ever earned (GET /v1/loyalty/accounts/{id}).
func (c *client) lifetimeEarned(ctx context.Context, shopperID string) (int64, error) {
	var acct struct {
		LifetimeEarned int64 `json:"lifetime_earned"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/loyalty/accounts/"+url.PathEscape(shopperID), c.adminKey, nil, &acct)
	return acct.LifetimeEarned, err
}

// errNoMetric means /metrics does not show the counter asked for.
var errNoMetric = errors.New("metric not exported")

// metric reads one unlabelled sample from the Prometheus text exposition of /metrics.
func (c *client) metric(ctx context.Context, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	c.requests.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errNoMetric
}

// ready is whether GET /readyz answers 200.
func (c *client) ready(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
