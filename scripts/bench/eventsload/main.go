// Command eventsload is the load generator of scripts/bench/events.sh: it posts batches of
// events from concurrent clients to POST /v1/events and writes the very same rows as CSV files,
// so that the script can load them with psql \copy and compare the two rates on equal rows.
//
// A Go program rather than wrk: it needs unique event ids per request and the CSV of exactly
// what it sent, both awkward in wrk's Lua, and it needs nothing installed beyond Go.
//
//	eventsload -url http://127.0.0.1:8080 -key SECRET -clients 16 -batch 100 -batches 100 -csv DIR
package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"
)

// event is one generated row, in the JSON shape of the API.
type event struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	ShopperID  string `json:"shopper_id"`
	OccurredAt string `json:"occurred_at"`
	Experiment string `json:"experiment,omitempty"`
	OrderID    string `json:"order_id,omitempty"`
	Amount     *int64 `json:"amount,omitempty"`
	Discount   *int64 `json:"discount,omitempty"`
	Currency   string `json:"currency,omitempty"`
	Items      []item `json:"items,omitempty"`
}

type item struct {
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
}

func main() {
	url := flag.String("url", "http://127.0.0.1:8080", "server base URL")
	key := flag.String("key", "dev-checkout", "checkout API key")
	clients := flag.Int("clients", 16, "concurrent clients")
	batch := flag.Int("batch", 100, "events per request")
	batches := flag.Int("batches", 100, "requests per client")
	dir := flag.String("csv", "", "directory for events.csv, event_ids.csv and order_items.csv")
	prefix := flag.String("prefix", "bench", "prefix of event and order ids: a new one per load keeps every order new")
	flag.Parse()
	if err := run(*url, *key, *prefix, *clients, *batch, *batches, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "eventsload:", err)
		os.Exit(1)
	}
}

// generate makes n events: mostly views and acceptances, some orders with two lines, a few
// refunds, spread over the last hour.
func generate(prefix string, client, n int, start time.Time) []event {
	out := make([]event, n)
	for i := range out {
		shopper := fmt.Sprintf("s-%d", (client*7919+i*31)%50000)
		e := event{
			ID:         fmt.Sprintf("%s-c%02d-%07d", prefix, client, i),
			ShopperID:  shopper,
			OccurredAt: start.Add(-time.Duration(i%3600) * time.Second).Format(time.RFC3339),
			Experiment: "pdp-bundle",
		}
		switch r := i % 100; {
		case r < 60:
			e.Type = "offer_viewed"
		case r < 85:
			e.Type = "offer_accepted"
		case r < 97:
			amount, discount := int64(2400), int64(150)
			e.Type, e.OrderID, e.Amount, e.Discount, e.Currency = "order_completed", "o-"+e.ID, &amount, &discount, "EUR"
			e.Items = []item{{"sku-shampoo", 1, 900}, {"sku-conditioner", 1, 1500}}
		default:
			amount := int64(1500)
			e.Type, e.OrderID, e.Amount, e.Currency = "order_refunded", "o-"+e.ID, &amount, "EUR"
		}
		out[i] = e
	}
	return out
}

func run(url, key, prefix string, clients, batch, batches int, dir string) error {
	start := time.Now().UTC()
	all := make([][]event, clients)
	bodies := make([][][]byte, clients)
	for c := range clients {
		all[c] = generate(prefix, c, batch*batches, start)
		for b := range batches {
			body, err := json.Marshal(map[string]any{"events": all[c][b*batch : (b+1)*batch]})
			if err != nil {
				return err
			}
			bodies[c] = append(bodies[c], body)
		}
	}
	if dir != "" {
		if err := writeCSV(dir, all); err != nil {
			return err
		}
	}

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: time.Minute}
	latencies := make([][]time.Duration, clients)
	accepted := make([]int, clients)
	var g errgroup.Group
	t0 := time.Now()
	for c := range clients {
		g.Go(func() error {
			for _, body := range bodies[c] {
				req, _ := http.NewRequest("POST", url+"/v1/events", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				t := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					return err
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				latencies[c] = append(latencies[c], time.Since(t))
				var a struct{ Accepted int }
				if resp.StatusCode != 200 || json.Unmarshal(raw, &a) != nil {
					return fmt.Errorf("status %d: %s", resp.StatusCode, raw)
				}
				accepted[c] += a.Accepted
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	elapsed := time.Since(t0)
	total := 0
	var lat []time.Duration
	for c := range clients {
		total += accepted[c]
		lat = append(lat, latencies[c]...)
	}
	if want := clients * batch * batches; total != want {
		return fmt.Errorf("%d events accepted, want %d", total, want)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))].Round(100 * time.Microsecond) }
	fmt.Printf("http: %d events in %d requests of %d from %d clients: %.2fs, %.0f events/s; request latency p50 %s p99 %s max %s\n",
		total, len(lat), batch, clients, elapsed.Seconds(), float64(total)/elapsed.Seconds(), pct(0.5), pct(0.99), lat[len(lat)-1].Round(100*time.Microsecond))
	// When the load ran, for the script's lag figures (scripts/bench/events.sh).
	fmt.Printf("window: %.3f %.3f\n", float64(t0.UnixMicro())/1e6, float64(t0.Add(elapsed).UnixMicro())/1e6)
	return nil
}

// writeCSV writes the rows as the three tables hold them, for psql \copy.
func writeCSV(dir string, all [][]event) error {
	files := map[string]*csv.Writer{}
	var closers []*os.File
	for _, name := range []string{"event_ids", "events", "order_items"} {
		f, err := os.Create(filepath.Join(dir, name+".csv"))
		if err != nil {
			return err
		}
		closers = append(closers, f)
		files[name] = csv.NewWriter(f)
	}
	opt := func(s string) string { return s } // empty is NULL in CSV \copy
	num := func(v *int64) string {
		if v == nil {
			return ""
		}
		return strconv.FormatInt(*v, 10)
	}
	for _, evs := range all {
		for _, e := range evs {
			_ = files["event_ids"].Write([]string{e.ID, e.OccurredAt})
			_ = files["events"].Write([]string{e.ID, e.Type, e.ShopperID, e.OccurredAt, opt(e.Experiment), opt(e.OrderID), num(e.Amount), num(e.Discount), opt(e.Currency)})
			for j, it := range e.Items {
				_ = files["order_items"].Write([]string{e.ID, strconv.Itoa(j), e.OccurredAt, e.OrderID, e.ShopperID, it.SKU, strconv.FormatInt(it.Quantity, 10), strconv.FormatInt(it.UnitPrice, 10)})
			}
		}
	}
	for i, w := range files {
		w.Flush()
		if err := w.Error(); err != nil {
			return fmt.Errorf("%s.csv: %w", i, err)
		}
	}
	for _, f := range closers {
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}
