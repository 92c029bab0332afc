package events_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/servertest"
)

const crashKey = "XSELL_API_KEYS=checkout:crash-secret-0123456789abcdef0123456789"

type batchAnswer struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

// post sends one batch; ok is false when the server gave no 200 (it may be dead).
func post(client *http.Client, url string, ids []string) (batchAnswer, bool) {
	evs := make([]string, len(ids))
	for i, id := range ids {
		evs[i] = fmt.Sprintf(`{"id":%q,"type":"order_completed","shopper_id":"s-%d","order_id":"o-%s","amount":1000,"currency":"EUR","items":[{"sku":"sku-1","quantity":1,"unit_price":1000}]}`, id, i%7, id)
	}
	req, _ := http.NewRequest("POST", url+"/v1/events", strings.NewReader(`{"events":[`+strings.Join(evs, ",")+`]}`))
	req.Header.Set("Authorization", "Bearer crash-secret-0123456789abcdef0123456789")
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return batchAnswer{}, false
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	var a batchAnswer
	if resp.StatusCode != 200 || json.Unmarshal(b.Bytes(), &a) != nil {
		return batchAnswer{}, false
	}
	return a, true
}

// TestAcknowledgedEventsSurviveSIGKILL posts from 8 clients until at least 1500 events are
// acknowledged, kills the server at once (SIGKILL) while batches are in flight, restarts it and
// finds every acknowledged event stored — and every batch stored whole or not at all.
func TestAcknowledgedEventsSurviveSIGKILL(t *testing.T) {
	url := dbtest.URL(t)
	p := servertest.Start(t, url, crashKey)
	client := &http.Client{Timeout: 30 * time.Second}

	const clients, batchSize = 8, 50
	var (
		mu       sync.Mutex
		acked    [][]string // batches answered 200
		sent     [][]string // every batch sent
		nAcked   atomic.Int64
		wg       sync.WaitGroup
		enough   = make(chan struct{})
		killOnce sync.Once
	)
	for c := range clients {
		wg.Go(func() {
			for n := 0; ; n++ {
				ids := make([]string, batchSize)
				for i := range ids {
					ids[i] = fmt.Sprintf("c%d-b%d-e%d", c, n, i)
				}
				mu.Lock()
				sent = append(sent, ids)
				mu.Unlock()
				a, ok := post(client, p.URL, ids)
				if !ok {
					return // the server is gone
				}
				if a.Accepted != batchSize {
					t.Errorf("batch %v: %+v, want %d accepted", ids[0], a, batchSize)
				}
				mu.Lock()
				acked = append(acked, ids)
				mu.Unlock()
				if nAcked.Add(batchSize) >= 1500 {
					killOnce.Do(func() { close(enough) })
				}
			}
		})
	}
	select {
	case <-enough:
	case <-time.After(60 * time.Second):
		t.Fatal("1500 events not acknowledged within 60 s")
	}
	p.Kill() // SIGKILL, with the other clients' batches in flight
	wg.Wait()

	p = servertest.StartAt(t, p.Addr, url, crashKey)
	db := sqlx.MustOpen("postgres", url)
	defer db.Close()
	storedOf := func(ids []string) int {
		var n int
		if err := db.Get(&n, `SELECT count(*) FROM events e JOIN event_ids i USING (id) WHERE e.id = ANY($1)`, ids); err != nil {
			t.Fatal(err)
		}
		return n
	}
	mu.Lock()
	defer mu.Unlock()
	for _, ids := range acked {
		if n := storedOf(ids); n != len(ids) {
			t.Fatalf("acknowledged batch %s: %d of %d events stored after the crash", ids[0], n, len(ids))
		}
	}
	for _, ids := range sent {
		if n := storedOf(ids); n != 0 && n != len(ids) {
			t.Fatalf("batch %s half stored: %d of %d", ids[0], n, len(ids))
		}
	}
	var items int
	if err := db.Get(&items, `SELECT count(*) FROM order_items`); err != nil {
		t.Fatal(err)
	}
	var events int
	if err := db.Get(&events, `SELECT count(*) FROM events`); err != nil {
		t.Fatal(err)
	}
	if items != events {
		t.Fatalf("%d order lines for %d orders", items, events)
	}
	// The restarted server knows them too: posting an acknowledged batch again changes nothing.
	if a, ok := post(client, p.URL, acked[0]); !ok || a.Accepted != 0 || a.Duplicates != batchSize {
		t.Fatalf("re-posting an acknowledged batch after the restart: %+v %v", a, ok)
	}
	t.Logf("%d batches acknowledged, %d sent", len(acked), len(sent))
}
