package httpapi_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/exposures"
	"github.com/xsell/xsell/internal/httpapi"
	"github.com/xsell/xsell/internal/offers"
)

// benchAPI is a Server whose cache holds 20 running experiments with targeting, and whose
// recorder is not running (its queue absorbs, then drops and counts). It is the HTTP layer
// alone, without internal/app's wiring, because assignment needs no database.
func benchAPI(b *testing.B) http.Handler { return benchAPIWith(b, nil) }

// benchAPIWith is benchAPI with every experiment capped at cap (none when nil) and the offer
// pipeline's counter in place, as internal/app wires it.
func benchAPIWith(b *testing.B, cap *experiments.FrequencyCap) http.Handler {
	b.Helper()
	list := benchExperiments(0)
	for _, e := range list {
		e.FrequencyCap = cap
	}
	// The request deadline internal/app gives every server by default.
	return serverOver(b, httpapi.Config{RequestTimeout: 10 * time.Second}, httpapi.Deps{}, list).Handler()
}

// cachedAPI is the HTTP layer over deps with a cache of 20 running experiments with targeting
// and, unless deps has one, a recorder that is not running (its queue absorbs, then drops and
// counts): assignment needs no database.
func cachedAPI(tb testing.TB, cfg httpapi.Config, deps httpapi.Deps) *httpapi.Server {
	return serverOver(tb, cfg, deps, benchExperiments(0))
}

// benchExperiments are 20 running experiments with targeting, a control and a suggestion of a
// fixed product each, except the first learned ones, whose treatment is a learned bundle.
func benchExperiments(learned int) []*experiments.Experiment {
	var list []*experiments.Experiment
	for i := range 20 {
		cov := 0.9
		treatment := experiments.Strategy{Type: experiments.StrategySuggestion, Products: []string{"sku-2"}, Timing: experiments.TimingCart}
		if i < learned {
			pct := 10.0
			treatment = experiments.Strategy{Type: experiments.StrategyBundle, Source: experiments.SourceComplements,
				DiscountPercent: &pct, Timing: experiments.TimingCart}
		}
		e := &experiments.Experiment{Status: experiments.StatusRunning, Phase: 1, Definition: experiments.Definition{
			Key: fmt.Sprintf("bench-%02d", i), Name: "b", Coverage: &cov,
			Targeting: []byte(`{"country": {"$in": ["IT", "FR", "DE"]}, "device": "mobile", "visits": {"$gt": 2}}`),
			Variants: []experiments.Variant{
				{Key: "control", Name: "C", Weight: 0.5, Strategy: experiments.Strategy{Type: experiments.StrategyNone}},
				{Key: "bundle", Name: "B", Weight: 0.5, Strategy: treatment},
			}}}
		e.Normalize()
		list = append(list, e)
	}
	return list
}

// serverOver is the HTTP layer over deps with a cache of list, the offer pipeline's counter in
// place as internal/app wires it, and, unless deps has one, a recorder that is not running.
func serverOver(tb testing.TB, cfg httpapi.Config, deps httpapi.Deps, list []*experiments.Experiment) *httpapi.Server {
	tb.Helper()
	httpapi.ConfigureLibraries() // as internal/app does
	keys, _ := httpapi.ParseAPIKeys("checkout:" + checkoutKey)
	snap, err := experiments.NewSnapshotWith(list, time.Now(), experiments.SnapshotOptions{Limiter: offers.NewCounter(1 << 30)})
	if err != nil {
		tb.Fatal(err)
	}
	cache := experiments.NewCache(nil, "", time.Hour, nil)
	cache.Set(snap)
	deps.Assignments = cache
	if deps.Exposures == nil {
		deps.Exposures = exposures.New(nil, exposures.Config{QueueSize: 1 << 20}, nil, nil)
	}
	cfg.APIKeys = keys
	s, err := httpapi.New(cfg, deps)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func benchRequests(b *testing.B, h http.Handler, pool int) {
	bodies := make([][]byte, pool)
	for i := range bodies {
		bodies[i] = []byte(fmt.Sprintf(`{"shopper_id":"shopper-%d","attributes":{"country":"IT","device":"mobile","visits":5}}`, i))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req := httptest.NewRequest("POST", "/v1/assign", bytes.NewReader(bodies[i%pool]))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+checkoutKey)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
		i++
	}
}

// BenchmarkAssignHandler is POST /v1/assign in process, returning shoppers: the whole
// middleware chain, decoding, 20 experiments and the encoded answer.
func BenchmarkAssignHandler(b *testing.B) { benchRequests(b, benchAPI(b), 1000) }

// weekly3 is the cap of the capped benchmarks: 3 offers a week.
var weekly3 = &experiments.FrequencyCap{Offers: 3, Per: experiments.PeriodWeek}

// BenchmarkAssignHandlerCapped is BenchmarkAssignHandler with all 20 experiments capped:
// returning shoppers, each over the caps after their third request, as most of a busy
// shop's requests are.
func BenchmarkAssignHandlerCapped(b *testing.B) { benchRequests(b, benchAPIWith(b, weekly3), 1000) }

// BenchmarkAssignHandlerNew is BenchmarkAssignHandler with a new shopper on each request.
func BenchmarkAssignHandlerNew(b *testing.B) { benchRequests(b, benchAPI(b), 1<<18) }

// BenchmarkAssignHandlerNewCapped is BenchmarkAssignHandlerNew with all 20 experiments
// capped: every answer is counted, the counter's worst case.
func BenchmarkAssignHandlerNewCapped(b *testing.B) { benchRequests(b, benchAPIWith(b, weekly3), 1<<18) }

// BenchmarkAssignHandlerLogInfo is BenchmarkAssignHandler with the access log at info, as the
// server runs by default: successful assignments sampled 1 in 100 (the default); the
// difference from BenchmarkAssignHandler is what the log costs.
func BenchmarkAssignHandlerLogInfo(b *testing.B) {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	benchRequests(b, cachedAPI(b, httpapi.Config{AssignLogSample: 100}, httpapi.Deps{Log: log}).Handler(), 1000)
}

// BenchmarkAssignHandlerLogEveryLine is the access log at info with a line per assignment,
// as before sampling.
func BenchmarkAssignHandlerLogEveryLine(b *testing.B) {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	benchRequests(b, cachedAPI(b, httpapi.Config{AssignLogSample: 1}, httpapi.Deps{Log: log}).Handler(), 1000)
}

// BenchmarkBareHandler is the yardstick: Gin with no middleware and a fixed body.
func BenchmarkBareHandler(b *testing.B) { benchRequests(b, bareHandler(), 1000) }

// bareHandler is Gin with no middleware answering a fixed body of the size of a 20-assignment
// answer.
func bareHandler() http.Handler {
	body := bytes.Repeat([]byte("x"), 3000)
	e := gin.New()
	e.POST("/v1/assign", func(c *gin.Context) { c.Data(200, "application/json", body) })
	return e
}
