package simulation

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/xsell/xsell/client"
)

// api drives the server through the public Go client, as a shop would: every demo run
// exercises it. The client retries what a real checkout would retry, with the same event ids,
// so a retried batch is never stored twice, and an assignment is deterministic, so asking
// again gives the same answer.
type api struct {
	admin    *client.Client // assigns back-dated (only admins may) and reads the experiment
	checkout *client.Client // reports events
	base     string
	http     *http.Client // counts every request, retries included
	requests atomic.Int64
	retries  atomic.Int64
}

func newAPI(c Config) (*api, error) {
	a := &api{base: strings.TrimRight(c.BaseURL, "/")}
	h := *c.HTTP
	base := h.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	h.Transport = countingTransport{base: base, n: &a.requests}
	a.http = &h
	opts := []client.Option{
		client.WithHTTPClient(a.http),
		client.WithBatchSize(c.BatchSize),
		client.WithUserAgent("xsell-simulate"),
		client.WithRetryHook(func(client.RetryEvent) { a.retries.Add(1) }),
	}
	var err error
	if a.admin, err = client.New(c.BaseURL, c.AdminKey, opts...); err != nil {
		return nil, err
	}
	if a.checkout, err = client.New(c.BaseURL, c.CheckoutKey, opts...); err != nil {
		return nil, err
	}
	return a, nil
}

// countingTransport counts the requests it sends.
type countingTransport struct {
	base http.RoundTripper
	n    *atomic.Int64
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.base.RoundTrip(r)
}

// targets are the SKUs whose purchase counts as a cross-sell: the experiment's
// target_products, by default the union of its variants' products (SPEC §3).
func targets(x *client.Experiment) []string {
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

// assign asks for one shopper's variant, back-dated to the arrival (admin key), with the
// product the shopper came for as the context, as a product page asks; track false records
// no exposure.
func (a *api) assign(ctx context.Context, experiment string, s *shopper, track bool) (Assignment, error) {
	req := client.AssignRequest{ShopperID: s.id, Attributes: s.attrs, Experiments: []string{experiment}, At: &s.arrival,
		Context: &client.AssignContext{Products: []string{s.primary}}}
	if !track {
		req.Track = client.Bool(false)
	}
	r, err := a.admin.Assign(ctx, req)
	if err != nil {
		return Assignment{}, err
	}
	if as, ok := r.For(experiment); ok {
		return as, nil
	}
	return Assignment{}, fmt.Errorf("POST /v1/assign: no answer for experiment %s", experiment)
}

// lifetimeEarned is the points a shopper has ever earned.
func (a *api) lifetimeEarned(ctx context.Context, shopperID string) (int64, error) {
	acct, err := a.admin.GetAccount(ctx, shopperID)
	if err != nil {
		return 0, err
	}
	return acct.LifetimeEarned, nil
}

// errNoMetric means /metrics does not show the counter asked for.
var errNoMetric = errors.New("metric not exported")

// metric reads one unlabelled sample from the Prometheus text exposition of /metrics, which is
// for operators rather than part of the API the client speaks.
func (a *api) metric(ctx context.Context, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := a.http.Do(req)
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
