package exposures

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/dbtest"
)

// benchRequest is a new shopper's request as scripts/bench/assign.sh makes them: 16 of the 20
// experiments put the shopper in a variant.
func benchRequest(i int) Request {
	exps := make([]Exposure, 16)
	for j := range exps {
		exps[j] = Exposure{Experiment: fmt.Sprintf("bench-%02d", j+1), Phase: 1, Variant: []string{"control", "bundle", "points"}[(i+j)%3]}
	}
	id := fmt.Sprintf("new-%d", i)
	return Request{ShopperID: id, At: time.Now(), Exposures: exps,
		Attributes:     map[string]any{"country": "IT", "device": "mobile", "visits": 5.0, "shopper_id": id},
		AttributesJSON: `{"country":"IT","device":"mobile","visits":5,"shopper_id":"` + id + `"}`}
}

// BenchmarkRecordNewShopper is the request path's share for a new shopper: de-duplication,
// the row's encoding and the queue, with the attributes as the request's JSON, as the assign
// handler records them.
func BenchmarkRecordNewShopper(b *testing.B) { benchRecord(b, true) }

// BenchmarkRecordNewShopperEncoded is BenchmarkRecordNewShopper with the attributes map
// encoded by the library (goccy/go-json), as for a body the fast decoder leaves to the
// general one: the difference is what storing the body's own JSON saves.
func BenchmarkRecordNewShopperEncoded(b *testing.B) { benchRecord(b, false) }

// BenchmarkRecordNewCart is the request path's share for a returning shopper's new cart, as
// the assign handler records it: no new exposure, the offers of 2 learned experiments (3
// products each) under a digest not seen before, one row of offers alone queued.
func BenchmarkRecordNewCart(b *testing.B) {
	r := New(nil, Config{QueueSize: 1 << 13}, nil, nil)
	reqs := make([]Request, 1<<12)
	for i := range reqs {
		id := fmt.Sprintf("shopper-%d", i%1000)
		var offers []Offer
		for j := range 6 {
			offers = append(offers, Offer{Experiment: fmt.Sprintf("bench-%02d", j/3), Phase: 1, Variant: "bundle", SKU: fmt.Sprintf("sku-%d", (i*7+j*13)%10000)})
		}
		reqs[i] = Request{ShopperID: id, Attributes: map[string]any{"country": "IT"}, Offers: offers}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%len(reqs) == 0 && i > 0 {
			clear(r.offered)
			for len(r.queue) > 0 {
				<-r.queue
			}
		}
		r.Record(reqs[i%len(reqs)])
		i++
	}
}

func benchRecord(b *testing.B, asJSON bool) {
	// A queue a little larger than a pass over the requests, emptied after each pass: a
	// larger one would make the collector scan millions of queued rows.
	r := New(nil, Config{QueueSize: 1 << 13}, nil, nil)
	reqs := make([]Request, 1<<12)
	for i := range reqs {
		reqs[i] = benchRequest(i)
		if !asJSON {
			reqs[i].AttributesJSON = ""
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%len(reqs) == 0 && i > 0 {
			// Fresh shoppers again: forget the ones recorded and empty the queue.
			clear(r.seen)
			for len(r.queue) > 0 {
				<-r.queue
			}
		}
		r.Record(reqs[i%len(reqs)])
		i++
	}
}

// BenchmarkStageAndMerge writes b.N new shoppers' requests (16 exposures each) into
// exposure_log in groups of BatchSize, then merges them into exposures, and reports each
// step's rate: rows/s staged and exposures/s merged.
func BenchmarkStageAndMerge(b *testing.B) {
	db := dbtest.New(b)
	r := New(db, Config{QueueSize: max(b.N, 1)}, nil, nil)
	ctx := context.Background()
	items := make([]item, b.N)
	for i := range items {
		req := benchRequest(i)
		items[i] = encode(req, req.Exposures, nil)
	}
	b.ResetTimer()
	start := time.Now()
	var bt batch
	for i := 0; i < len(items); {
		for ; i < len(items) && bt.len() < r.cfg.BatchSize; i++ {
			bt.add(items[i])
		}
		if err := r.write(ctx, &bt); err != nil {
			b.Fatal(err)
		}
		bt.reset()
	}
	staged := time.Since(start)
	start = time.Now()
	for {
		n, err := r.mergeNext(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	merged := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/staged.Seconds(), "staged-rows/s")
	b.ReportMetric(float64(16*b.N)/merged.Seconds(), "merged-exposures/s")
}
