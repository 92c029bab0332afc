// Package openapitest checks HTTP traffic of tests against the OpenAPI document (package api),
// so that the document and the server cannot drift apart unnoticed: plug Transport (or Client)
// into a test's http.Client and every request and answer on a documented route is validated.
package openapitest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/xsell/xsell/api"
)

var (
	loadOnce sync.Once
	loaded   *openapi3.T
	router   routers.Router
	loadErr  error
)

// Document is the OpenAPI document, loaded and validated (examples included) once per test
// process; an invalid document fails the test.
func Document(t testing.TB) *openapi3.T {
	t.Helper()
	loadOnce.Do(func() { loaded, router, loadErr = load(api.OpenAPI()) })
	if loadErr != nil {
		t.Fatalf("the OpenAPI document: %v", loadErr)
	}
	return loaded
}

func load(raw []byte) (*openapi3.T, routers.Router, error) {
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		return nil, nil, err
	}
	ctx := context.Background()
	if err := doc.Validate(ctx, openapi3.EnableExamplesValidation()); err != nil {
		return nil, nil, fmt.Errorf("invalid: %w", err)
	}
	// The router matches the document's servers by host; tests run on ports of their own.
	bare := *doc
	bare.Servers = nil
	r, err := gorillamux.NewRouter(&bare)
	if err != nil {
		return nil, nil, err
	}
	return doc, r, nil
}

// Operations lists the document's operations as "METHOD /path/{param}", sorted.
func Operations(t testing.TB) []string {
	t.Helper()
	var ops []string
	for path, item := range Document(t).Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	sort.Strings(ops)
	return ops
}

// options: the request's key is the server's business (it answers 401 or 403, which the
// document lists), and every problem is reported, not only the first.
var options = &openapi3filter.Options{
	AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
	IncludeResponseStatus: true,
	MultiError:            true,
}

// Client is an http.Client whose every exchange is checked against the document.
func Client(t testing.TB) *http.Client {
	return &http.Client{Transport: Transport(t, nil)}
}

// Transport wraps base (http.DefaultTransport when nil) so that every request on a route of
// the document, and its answer, are checked against it; a mismatch fails t. An answer must be
// documented for its operation, status and all. A request the document refuses must be
// refused by the server too (4xx): the server accepting it means one of them is wrong. A
// request the document accepts may still be refused — for a rule a schema cannot say, such as
// weights that must sum to 1. Requests on paths the document lacks (routes a test adds, a
// deliberate 404) pass unchecked; the route test keeps the real routes and the document equal.
func Transport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	Document(t)
	if base == nil {
		base = http.DefaultTransport
	}
	return &validator{t: t, base: base}
}

type validator struct {
	t    testing.TB
	base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (v *validator) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := readAll(req.Body)
	if err != nil {
		return nil, err
	}
	if req.Body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		return v.base.RoundTrip(req)
	}
	in := &openapi3filter.RequestValidationInput{
		Request: cloneWithBody(req, body), PathParams: params, Route: route, Options: options,
	}
	reqErr := openapi3filter.ValidateRequest(req.Context(), in)
	resp, err := v.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	answer, err := readAll(resp.Body)
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: options,
	}
	out.SetBodyBytes(answer)
	what := fmt.Sprintf("%s %s (operation %s)", req.Method, req.URL.RequestURI(), route.Operation.OperationID)
	if err := openapi3filter.ValidateResponse(req.Context(), out); err != nil {
		v.t.Errorf("OpenAPI: the answer to %s is not as documented: %v\nrequest: %s\nanswer: %d %s",
			what, err, clip(body), resp.StatusCode, clip(answer))
	}
	if reqErr != nil && resp.StatusCode < 400 {
		v.t.Errorf("OpenAPI: the document refuses the request %s, the server answered %d: %v\nrequest: %s",
			what, resp.StatusCode, reqErr, clip(body))
	}
	return resp, nil
}

func readAll(r io.ReadCloser) ([]byte, error) {
	if r == nil {
		return nil, nil
	}
	defer r.Close()
	return io.ReadAll(r)
}

// cloneWithBody is req with a body of its own, for the validator to read.
func cloneWithBody(req *http.Request, body []byte) *http.Request {
	c := req.Clone(req.Context())
	c.Body = io.NopCloser(bytes.NewReader(body))
	c.ContentLength = int64(len(body))
	return c
}

// clip shortens a body for a failure message.
func clip(b []byte) string {
	const max = 2000
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		return s[:max] + fmt.Sprintf("… (%d bytes)", len(b))
	}
	return s
}
