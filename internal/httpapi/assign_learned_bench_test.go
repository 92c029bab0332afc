package httpapi_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/complements"
	"github.com/xsell/xsell/internal/complements/complementstest"
	"github.com/xsell/xsell/internal/httpapi"
)

// learnedBenchAPI is the assign benchmark's server (benchExperiments) where the first learned
// experiments are learned bundles, over a complements model of 10,000 products with 10
// complements each.
func learnedBenchAPI(b testing.TB, learned int) http.Handler {
	b.Helper()
	model := complements.NewCache(nil, "", time.Hour, nil)
	model.Set(complementstest.Model(10000))
	return serverOver(b, httpapi.Config{}, httpapi.Deps{Complements: model, ComplementsBuilds: complements.NewRefresher(nil, 0, nil)},
		benchExperiments(learned)).Handler()
}

// assignBody is shopper i's request, with a 3-product context of benchModel's products,
// different for each cart n (no context when n < 0): carts below 10,000 as they always were,
// and no two carts alike up to 100,000,000 (cart n and n+10,000 differ in two products:
// without the n/10,000 terms they were the same, and a "new" cart came back every 10,000
// requests). Built with appends into one allocation
// whatever the context: the bodies are made before a batch's clock starts, but their garbage
// is collected while requests are timed, so every config's must weigh the same (with
// fmt.Sprintf, a context's body made four times the garbage of one without).
func assignBody(i, n int) []byte {
	b := make([]byte, 0, 192)
	b = append(b, `{"shopper_id":"shopper-`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `","attributes":{"country":"IT","device":"mobile","visits":5}`...)
	if n >= 0 {
		b = append(b, `,"context":{"products":[`...)
		q := n / 10000
		for k, sku := range [3]int{n % 10000, (n*7 + 4242 + q) % 10000, (n*13 + 9001 + 31*q) % 10000} {
			if k > 0 {
				b = append(b, ',')
			}
			b = append(b, `"sku-`...)
			b = strconv.AppendInt(b, int64(sku), 10)
			b = append(b, '"')
		}
		b = append(b, "]}"...)
	}
	return append(b, '}')
}

// benchConfig is one side of an alternating benchmark: a server and its request bodies.
type benchConfig struct {
	name    string
	handler http.Handler
	body    func(i int) []byte // the i-th request of this side
}

// benchAlternating sends the configs' requests in turns, batches of 100 each, and charges each
// batch the CPU time the process used meanwhile (user + system, garbage collection included):
// on the shared machine the wall-clock time of a request swings by half with other people's
// load, the CPU time much less. It reports each config's CPU time per request, and each
// other's ratio to the first. Run it with -cpu 1, so that the collector works in turns with
// the requests.
func benchAlternating(b *testing.B, configs ...benchConfig) {
	const batch = 100
	spent := make([]time.Duration, len(configs))
	count := make([]int, len(configs))
	reqs := make([]*http.Request, batch)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := (i / batch) % len(configs)
		n := count[k]
		if i%batch == 0 {
			// A batch's requests are made before its clock starts.
			for j := range reqs {
				reqs[j] = httptest.NewRequest("POST", "/v1/assign", bytes.NewReader(configs[k].body(n+j)))
				reqs[j].Header.Set("Content-Type", "application/json")
				reqs[j].Header.Set("Authorization", "Bearer "+checkoutKey)
			}
			spent[k] -= cpuTime()
		}
		w := httptest.NewRecorder()
		configs[k].handler.ServeHTTP(w, reqs[i%batch])
		if w.Code != 200 {
			b.Fatalf("%s: status %d: %s", configs[k].name, w.Code, w.Body)
		}
		count[k]++
		i++
		if i%batch == 0 {
			spent[k] += cpuTime()
		}
	}
	if i%batch != 0 {
		spent[(i/batch)%len(configs)] += cpuTime()
	}
	per := make([]float64, len(configs))
	for k, c := range configs {
		per[k] = float64(spent[k].Nanoseconds()) / float64(max(count[k], 1))
		b.ReportMetric(per[k], c.name+"-cpu-ns/req")
		if k > 0 {
			b.ReportMetric(per[k]/per[0], c.name+"/"+configs[0].name)
		}
	}
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAssignLearned is POST /v1/assign of 1,000 returning shoppers against 20
// experiments with fixed products (fixed), alternating with the same shoppers against the
// same experiments of which 5 are learned bundles, with a 3-product context (learned), and
// with the bare Gin handler (bare): the cost of learned strategies as the assign benchmark
// sees it, and both against the yardstick, in one run.
func BenchmarkAssignLearned(b *testing.B) {
	benchAlternating(b,
		benchConfig{"fixed", learnedBenchAPI(b, 0), func(i int) []byte { return assignBody(i%1000, -1) }},
		benchConfig{"learned", learnedBenchAPI(b, 5), func(i int) []byte { return assignBody(i%1000, 0) }},
		benchConfig{"bare", bareHandler(), func(i int) []byte { return assignBody(i%1000, -1) }})
}

// BenchmarkAssignLearnedCarts is BenchmarkAssignLearned with a 3-product cart of each
// shopper's own: 1,000 contexts that the model's remembered choices mostly serve.
func BenchmarkAssignLearnedCarts(b *testing.B) {
	benchAlternating(b,
		benchConfig{"fixed", learnedBenchAPI(b, 0), func(i int) []byte { return assignBody(i%1000, -1) }},
		benchConfig{"learned", learnedBenchAPI(b, 5), func(i int) []byte { return assignBody(i%1000, i%1000) }},
		benchConfig{"bare", bareHandler(), func(i int) []byte { return assignBody(i%1000, -1) }})
}

// BenchmarkAssignLearnedNewCarts is BenchmarkAssignLearned with a cart never seen before on
// every learned request, so that none of the model's remembered choices serves.
func BenchmarkAssignLearnedNewCarts(b *testing.B) {
	benchAlternating(b,
		benchConfig{"fixed", learnedBenchAPI(b, 0), func(i int) []byte { return assignBody(i%1000, -1) }},
		benchConfig{"learned", learnedBenchAPI(b, 5), func(i int) []byte { return assignBody(i%1000, 1000+i) }},
		benchConfig{"bare", bareHandler(), func(i int) []byte { return assignBody(i%1000, -1) }})
}

// TestLearnedBenchAnswersOffer keeps the benchmark honest: its learned requests do get
// products chosen for their context.
func TestLearnedBenchAnswersOffer(t *testing.T) {
	h := learnedBenchAPI(t, 5)
	body := assignBody(0, 0)
	req := httptest.NewRequest("POST", "/v1/assign", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+checkoutKey)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 200 || !bytes.Contains(w.Body.Bytes(), []byte(`"source":"complements"`)) || bytes.Contains(w.Body.Bytes(), []byte("no_complements")) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}
