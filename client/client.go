// Package client is the Go client of xsell's HTTP API, for checkouts and admin tools: assign
// shoppers, report events, earn and redeem points, manage experiments. It retries what is safe
// to retry — with the same event ids and idempotency keys, so that nothing is stored twice —
// backing off exponentially and honouring Retry-After; its errors carry the API's error code.
//
// A Client holds one API key; a program that acts as checkout and as admin makes two. It is
// safe for concurrent use. The API is described in /openapi.json on every server and, for
// checkout teams, in docs/integrating.md.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls one xsell server with one API key.
type Client struct {
	base      *url.URL
	key       string
	http      *http.Client
	retry     Retry
	batch     int
	userAgent string
	onRetry   func(RetryEvent)
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends requests through h instead of a client with a 30-second timeout: for a
// proxy, TLS settings, a transport of your own or another timeout.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithRetry replaces the default retry policy (DefaultRetry()).
func WithRetry(r Retry) Option { return func(c *Client) { c.retry = r } }

// WithBatchSize sets how many events SendEvents puts in one request: 1 to MaxBatch (the
// default).
func WithBatchSize(n int) Option { return func(c *Client) { c.batch = n } }

// WithUserAgent sets the User-Agent header, so that the server's logs can tell callers apart.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithRetryHook calls f before every retry, for logs and metrics.
func WithRetryHook(f func(RetryEvent)) Option { return func(c *Client) { c.onRetry = f } }

// New returns a client of the server at baseURL (such as http://127.0.0.1:8080) that sends
// apiKey as its Bearer token. The key may be empty for the routes that need none.
func New(baseURL, apiKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("xsell client: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("xsell client: base URL %q: want http(s)://host[:port]", baseURL)
	}
	c := &Client{base: u, key: apiKey, retry: DefaultRetry(), batch: MaxBatch, userAgent: "xsell-go-client/1"}
	for _, o := range opts {
		o(c)
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	if c.batch < 1 || c.batch > MaxBatch {
		return nil, fmt.Errorf("xsell client: batch size %d: want 1 to %d", c.batch, MaxBatch)
	}
	if err := c.retry.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// request is one API call: what to send, what may be retried, where the answer goes.
type request struct {
	method string
	path   string // escaped
	query  url.Values
	body   any // JSON-encoded once, sent again as is on a retry
	header http.Header
	retry  retryMode
	out    any // decoded from a 2xx answer, when not nil
}

// answer is what a call learnt besides its decoded body.
type answer struct {
	status int
	header http.Header
}

// do sends r, retrying as r.retry allows, and decodes a 2xx answer into r.out.
func (c *Client) do(ctx context.Context, r request) (answer, error) {
	var body []byte
	if r.body != nil {
		var err error
		if body, err = json.Marshal(r.body); err != nil {
			return answer{}, fmt.Errorf("%s %s: encoding the request: %w", r.method, r.path, err)
		}
	}
	var last error
	for attempt := 1; ; attempt++ {
		a, raw, err := c.send(ctx, r, body)
		if err == nil {
			if r.out != nil && len(raw) > 0 {
				if err := json.Unmarshal(raw, r.out); err != nil {
					return a, fmt.Errorf("%s %s: reading the answer: %w", r.method, r.path, err)
				}
			}
			return a, nil
		}
		wait, again := c.retry.next(attempt, r.retry, err)
		if !again {
			if attempt > 1 {
				return a, fmt.Errorf("%s %s: after %d attempts: %w", r.method, r.path, attempt, err)
			}
			return a, err
		}
		if ctx.Err() != nil {
			return a, fmt.Errorf("%s %s: %w (before that: %v)", r.method, r.path, ctx.Err(), err)
		}
		last = err
		if c.onRetry != nil {
			c.onRetry(RetryEvent{Method: r.method, Path: r.path, Attempt: attempt, Err: last, Wait: wait})
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return a, fmt.Errorf("%s %s: %w (waiting to retry after: %v)", r.method, r.path, ctx.Err(), last)
		case <-t.C:
		}
	}
}

// send makes one attempt. A connection that fails before the whole answer is read is a
// *TransportError; an answer outside 2xx is an *Error.
func (c *Client) send(ctx context.Context, r request, body []byte) (answer, []byte, error) {
	u := c.base.String() + r.path // r.path has its parameters escaped
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, rd)
	if err != nil {
		return answer{}, nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{}, nil, &TransportError{Method: r.method, Path: r.path, Err: err}
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return a, nil, &TransportError{Method: r.method, Path: r.path, Err: fmt.Errorf("reading the answer: %w", err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return a, raw, parseError(r.method, r.path, resp, raw)
	}
	return a, raw, nil
}

// TransportError is a request that got no complete answer: the connection failed, was
// refused or dropped, or timed out. The server may or may not have acted on it.
type TransportError struct {
	Method, Path string
	Err          error
}

// Error implements error.
func (e *TransportError) Error() string { return fmt.Sprintf("%s %s: %v", e.Method, e.Path, e.Err) }

// Unwrap returns the underlying network error.
func (e *TransportError) Unwrap() error { return e.Err }

// isTransport says whether err is a failed connection rather than an answer.
func isTransport(err error) bool {
	var te *TransportError
	return errors.As(err, &te)
}

// Bool returns a pointer to b, for optional fields such as AssignRequest.Track.
func Bool(b bool) *bool { return &b }

// Int64 returns a pointer to n, for optional amounts such as Event.Amount.
func Int64(n int64) *int64 { return &n }

// Int returns a pointer to n, for optional fields such as Strategy.MaxProducts.
func Int(n int) *int { return &n }

// Float64 returns a pointer to x, for optional parameters such as Strategy.DiscountPercent.
func Float64(x float64) *float64 { return &x }
