package httpapi_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/apptest"
)

var eventsNow = time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)

// newEventsServer serves the API over a fresh database with the clock at eventsNow.
func newEventsServer(t *testing.T) (*apptest.Server, *sqlx.DB) {
	t.Helper()
	srv := apptest.Start(t, apptest.Options{Now: eventsNow})
	return srv, srv.DB
}

func postEvents(t *testing.T, ts *apptest.Server, events ...string) answer {
	t.Helper()
	return do(t, "POST", ts.URL+"/v1/events", "c-secret-0123456789abcdef0123456789", "application/json", `{"events":[`+strings.Join(events, ",")+`]}`)
}

// problems lists an error answer's details as "index field code".
func problems(a answer) []string {
	e, _ := a.body["error"].(map[string]any)
	ds, _ := e["details"].([]any)
	var out []string
	for _, d := range ds {
		m, _ := d.(map[string]any)
		idx := "-"
		if i, ok := m["index"].(float64); ok {
			idx = fmt.Sprint(int(i))
		}
		out = append(out, fmt.Sprintf("%s %v %v", idx, m["field"], m["code"]))
	}
	return out
}

func storedEvents(t *testing.T, db *sqlx.DB) int {
	t.Helper()
	var n int
	if err := db.Get(&n, `SELECT count(*) FROM events`); err != nil {
		t.Fatal(err)
	}
	return n
}

const (
	tourView   = `{"id":"ev-1","type":"offer_viewed","shopper_id":"s-1","experiment":"pdp-bundle"}`
	tourAccept = `{"id":"ev-2","type":"offer_accepted","shopper_id":"s-1","experiment":"pdp-bundle"}`
	tourOrder  = `{"id":"ev-3","type":"order_completed","shopper_id":"s-1","experiment":"pdp-bundle","order_id":"o-1001",
		"amount":5490,"discount":500,"currency":"EUR","items":[{"sku":"cam-1","quantity":1,"unit_price":3990},{"sku":"sd-64","quantity":2,"unit_price":1000}]}`
)

func TestPostEventsAcceptsThenCountsDuplicates(t *testing.T) {
	ts, db := newEventsServer(t)
	a := postEvents(t, ts, tourView, tourAccept, tourOrder)
	if a.status != 200 || a.raw != `{"accepted":3,"duplicates":0}` {
		t.Fatalf("first post = %d %s, want 200 {accepted 3}", a.status, a.raw)
	}
	a = postEvents(t, ts, tourOrder, `{"id":"ev-4","type":"order_refunded","shopper_id":"s-1","order_id":"o-1001","amount":1000,"currency":"EUR"}`, tourOrder)
	if a.status != 200 || a.raw != `{"accepted":1,"duplicates":2}` {
		t.Fatalf("second post = %d %s, want 200 {accepted 1, duplicates 2}", a.status, a.raw)
	}
	if n := storedEvents(t, db); n != 4 {
		t.Fatalf("%d events stored, want 4", n)
	}
}

func TestPostEventsNeedsACheckoutKey(t *testing.T) {
	ts, db := newEventsServer(t)
	body := `{"events":[` + tourView + `]}`
	for _, tc := range []struct {
		key    string
		status int
	}{{"", 401}, {"n-secret-0123456789abcdef0123456789", 403}, {"a-secret-0123456789abcdef0123456789", 403}} {
		if a := do(t, "POST", ts.URL+"/v1/events", tc.key, "application/json", body); a.status != tc.status {
			t.Errorf("key %q: %d %s, want %d", tc.key, a.status, a.raw, tc.status)
		}
	}
	if n := storedEvents(t, db); n != 0 {
		t.Fatalf("%d events stored by refused requests", n)
	}
}

func TestPostEventsRefusesTheWholeBatchWithEveryProblem(t *testing.T) {
	ts, db := newEventsServer(t)
	a := postEvents(t, ts,
		tourView,
		`{"id":"r","type":"order_refunded","shopper_id":"s-1","amount":100,"currency":"EUR"}`,
		`{"id":"f","type":"offer_viewed","shopper_id":"s-1","occurred_at":"2026-11-25T14:06:00Z"}`,
		`{"id":"o","type":"order_completed","shopper_id":"s-1","order_id":"o","amount":"12.50","currency":"EUR","items":[{"sku":"a","quantity":0,"unit_price":1}]}`,
	)
	if a.status != 400 || errorCode(a) != "invalid_request" {
		t.Fatalf("status %d %s, want 400 invalid_request", a.status, a.raw)
	}
	want := "[1 order_id required 2 occurred_at in_the_future 3 amount wrong_type 3 items[0].quantity out_of_range]"
	if got := fmt.Sprint(problems(a)); got != want {
		t.Fatalf("details = %s\nwant      %s", got, want)
	}
	if n := storedEvents(t, db); n != 0 {
		t.Fatalf("%d events stored from a refused batch (the valid first one included?)", n)
	}
}

func TestPostEventsRefundWithoutOrderID(t *testing.T) {
	ts, _ := newEventsServer(t)
	a := postEvents(t, ts, `{"id":"r","type":"order_refunded","shopper_id":"s-1","amount":100,"currency":"EUR"}`)
	if a.status != 400 || fmt.Sprint(problems(a)) != "[0 order_id required]" {
		t.Fatalf("refund without order id = %d %s", a.status, a.raw)
	}
}

func TestPostEventsFutureTimestamps(t *testing.T) {
	ts, _ := newEventsServer(t)
	for _, tc := range []struct {
		at     string
		status int
	}{
		{"2026-11-25T14:04:59Z", 200},
		{"2026-11-25T14:05:00Z", 200},
		{"2026-11-25T14:05:00.001Z", 400},
		{"2026-11-25T15:30:00+01:00", 400},
		{"2027-01-01T00:00:00Z", 400},
	} {
		a := postEvents(t, ts, fmt.Sprintf(`{"id":%q,"type":"offer_viewed","shopper_id":"s","occurred_at":%q}`, tc.at, tc.at))
		if a.status != tc.status {
			t.Errorf("occurred_at %s: %d %s, want %d", tc.at, a.status, a.raw, tc.status)
		}
		if tc.status == 400 && fmt.Sprint(problems(a)) != "[0 occurred_at in_the_future]" {
			t.Errorf("occurred_at %s: details %v", tc.at, problems(a))
		}
	}
}

func TestPostEventsBodyErrors(t *testing.T) {
	ts, _ := newEventsServer(t)
	for _, tc := range []struct {
		name, contentType, body string
		status                  int
		code, detail            string
	}{
		{"not JSON", "application/json", `{"events": [`, 400, "malformed_json", ""},
		{"unknown top-level field", "application/json", `{"events":[` + tourView + `],"batch":1}`, 400, "invalid_request", "- batch unknown_field"},
		{"unknown fields at both levels", "application/json", `{"events":[{"id":"e","type":"offer_viewed","shopper_id":"s","shoper":"x"}],"batch":1}`, 400, "invalid_request", "- batch unknown_field 0 shoper unknown_field"},
		{"no events", "application/json", `{}`, 400, "invalid_request", "- events required"},
		{"empty events", "application/json", `{"events":[]}`, 400, "invalid_request", "- events out_of_range"},
		{"events not an array", "application/json", `{"events":{}}`, 400, "invalid_request", "- events wrong_type"},
		{"form body", "application/x-www-form-urlencoded", `events=1`, 415, "unsupported_media_type", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, "POST", ts.URL+"/v1/events", "c-secret-0123456789abcdef0123456789", tc.contentType, tc.body)
			if a.status != tc.status || errorCode(a) != tc.code {
				t.Fatalf("%d %s, want %d %s", a.status, a.raw, tc.status, tc.code)
			}
			if tc.detail != "" && fmt.Sprint(problems(a)) != "["+tc.detail+"]" {
				t.Fatalf("details %v, want [%s]", problems(a), tc.detail)
			}
		})
	}
}

func TestPostEventsConcurrentDuplicates(t *testing.T) {
	ts, db := newEventsServer(t)
	const clients, ids = 16, 25
	var wg sync.WaitGroup
	answers := make([]answer, clients)
	for c := range clients {
		wg.Go(func() {
			evs := make([]string, ids)
			for i := range ids {
				evs[i] = fmt.Sprintf(`{"id":"dup-%d","type":"offer_viewed","shopper_id":"client-%d"}`, (i+c)%ids, c)
			}
			answers[c] = postEvents(t, ts, evs...)
		})
	}
	wg.Wait()
	accepted, dups := 0, 0
	for _, a := range answers {
		if a.status != 200 {
			t.Fatalf("%d %s", a.status, a.raw)
		}
		accepted += int(a.body["accepted"].(float64))
		dups += int(a.body["duplicates"].(float64))
	}
	if accepted != ids || dups != clients*ids-ids {
		t.Fatalf("accepted %d, duplicates %d; want %d and %d", accepted, dups, ids, clients*ids-ids)
	}
	if n := storedEvents(t, db); n != ids {
		t.Fatalf("%d events stored, want %d", n, ids)
	}
}
