package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/app"
	"github.com/xsell/xsell/internal/apptest"
)

// wantUnavailable asserts a 503 unavailable in the error shape with a Retry-After.
func wantUnavailable(t *testing.T, what string, a answer) {
	t.Helper()
	if a.status != 503 || errorCode(a) != "unavailable" {
		t.Errorf("%s = %d %s, want 503 unavailable", what, a.status, a.raw)
		return
	}
	if s, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("%s: Retry-After %q, want a number of seconds", what, a.header.Get("Retry-After"))
	}
}

// dbRoutes are requests of every kind that needs the database.
var dbRoutes = []struct{ method, path, key, body string }{
	{"POST", "/v1/events", checkoutKey, `{"events":[{"id":"e-down","type":"offer_viewed","shopper_id":"s-1"}]}`},
	{"GET", "/v1/loyalty/program", adminKey, ""},
	{"GET", "/v1/loyalty/accounts/s-1", checkoutKey, ""},
	{"GET", "/v1/loyalty/accounts/s-1/transactions", checkoutKey, ""},
	{"POST", "/v1/loyalty/accounts/s-1/earn", checkoutKey, `{"points": 5, "idempotency_key": "down-1", "reason": "r"}`},
	{"POST", "/v1/loyalty/accounts/s-1/redeem", checkoutKey, `{"points": 1, "idempotency_key": "down-2"}`},
	{"POST", "/v1/loyalty/transactions/1/reverse", adminKey, `{"idempotency_key": "down-3"}`},
	{"GET", "/v1/experiments", analystKey, ""},
	{"GET", "/v1/experiments/pdp", analystKey, ""},
	{"POST", "/v1/experiments", adminKey, experimentJSON("other")},
}

func experimentJSON(key string) string {
	b, err := json.Marshal(validExperiment(key))
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestDatabaseDownAnswers503 cuts the way to the database, as a stopped database would: every
// route that needs it answers 503 unavailable with Retry-After, assignment still answers from
// its cache, and once the database is back everything works again.
func TestDatabaseDownAnswers503(t *testing.T) {
	srv := apptest.Start(t, apptest.Options{Proxy: true})
	createExperiment(t, srv.URL, validExperiment("pdp"))
	if a := do(t, "POST", srv.URL+"/v1/experiments/pdp/start", adminKey, "", ""); a.status != 200 {
		t.Fatalf("start = %d %s", a.status, a.raw)
	}
	if err := srv.App.Assignments.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.Proxy.Stop()
	for _, r := range dbRoutes {
		wantUnavailable(t, r.method+" "+r.path, doWith(t, r.method, srv.URL+r.path, r.key, r.body, nil))
	}
	a := do(t, "POST", srv.URL+"/v1/assign", checkoutKey, "application/json", `{"shopper_id": "s-1"}`)
	if a.status != 200 || len(a.body["assignments"].([]any)) != 1 {
		t.Fatalf("assign with the database down = %d %s, want 200 from the cache", a.status, a.raw)
	}
	srv.Proxy.Start()
	if a := do(t, "POST", srv.URL+"/v1/loyalty/accounts/s-1/earn", checkoutKey, "application/json",
		`{"points": 5, "idempotency_key": "back", "reason": "r"}`); a.status != 201 {
		t.Fatalf("earn once the database is back = %d %s", a.status, a.raw)
	}
}

// freeze locks tables as a stuck migration or a frozen database would: every statement on
// them waits until the test ends.
func freeze(t *testing.T, srv *apptest.Server, tables string) {
	t.Helper()
	tx, err := srv.DB.Beginx()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	if _, err := tx.Exec(`SET LOCAL statement_timeout = 0; LOCK TABLE ` + tables + ` IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
}

// TestFrozenDatabaseAnswers503 locks the tables that ingestion and the ledger write: the
// statement timeout, or else the request deadline, turns the wait into a 503 with
// Retry-After.
func TestFrozenDatabaseAnswers503(t *testing.T) {
	for _, c := range []struct {
		name               string
		statement, request time.Duration
	}{
		{"statement timeout", 200 * time.Millisecond, time.Minute},
		{"request deadline", time.Minute, 300 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := apptest.Start(t, apptest.Options{Configure: func(cfg *app.Config) {
				cfg.StatementTimeout, cfg.RequestTimeout = c.statement, c.request
			}})
			freeze(t, srv, "event_ids, events, loyalty_accounts")
			for _, r := range dbRoutes[:1] {
				wantUnavailable(t, r.method+" "+r.path, doWith(t, r.method, srv.URL+r.path, r.key, r.body, nil))
			}
			wantUnavailable(t, "earn", doWith(t, "POST", srv.URL+"/v1/loyalty/accounts/s-1/earn", checkoutKey,
				`{"points": 5, "idempotency_key": "frozen", "reason": "r"}`, nil))
		})
	}
}

// TestOneIdempotencyKeyTwentyTimesAtOnceOverHTTP: each of twenty identical requests gets the
// first answer, replayed, or 409 request_in_progress with Retry-After; never a 5xx.
func TestOneIdempotencyKeyTwentyTimesAtOnceOverHTTP(t *testing.T) {
	srv := apptest.Start(t, apptest.Options{})
	first := do(t, "POST", srv.URL+"/v1/loyalty/accounts/s-1/earn", checkoutKey, "application/json",
		`{"points": 1000, "idempotency_key": "seed", "reason": "r"}`)
	if first.status != 201 {
		t.Fatalf("earn = %d %s", first.status, first.raw)
	}
	reverse := fmt.Sprintf("/v1/loyalty/transactions/%d/reverse", int(num(first, "transaction", "id")))
	for _, r := range []struct{ path, key, body string }{
		{"/v1/loyalty/accounts/s-1/earn", checkoutKey, `{"points": 5, "idempotency_key": "k-earn", "reason": "r"}`},
		{"/v1/loyalty/accounts/s-1/redeem", checkoutKey, `{"points": 700, "idempotency_key": "k-redeem"}`},
		{reverse, adminKey, `{"points": 200, "idempotency_key": "k-reverse"}`},
	} {
		start := make(chan struct{})
		answers := make([]answer, 20)
		var wg sync.WaitGroup
		for i := range answers {
			wg.Go(func() {
				<-start
				answers[i] = doWith(t, "POST", srv.URL+r.path, r.key, r.body, nil)
			})
		}
		close(start)
		wg.Wait()
		var created, replayed, inProgress int
		for _, a := range answers {
			switch {
			case a.status == 201 && a.header.Get("Idempotent-Replayed") == "true":
				replayed++
			case a.status == 201:
				created++
			case a.status == 409 && errorCode(a) == "request_in_progress" && a.header.Get("Retry-After") != "":
				inProgress++
			default:
				t.Errorf("%s: %d %s", r.path, a.status, a.raw)
			}
		}
		if created != 1 || replayed+inProgress != 19 {
			t.Fatalf("%s twenty times: %d created, %d replayed, %d in progress", r.path, created, replayed, inProgress)
		}
	}
	if a := do(t, "GET", srv.URL+"/v1/loyalty/accounts/s-1", checkoutKey, "", ""); num(a, "balance") != 105 {
		t.Fatalf("balance %s, want 105 (1000 + 5 − 700 − 200, each once)", a.raw)
	}
}
