package httpapi_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/apptest"
	"github.com/xsell/xsell/internal/loyalty"
)

var loyaltyNow = time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)

type loyaltyAPI struct {
	ts    *apptest.Server
	svc   *loyalty.Service
	db    *sqlx.DB
	clock *apptest.Clock
}

// newLoyaltyServer serves the API over a fresh database with the clock at loyaltyNow, which
// the test may move.
func newLoyaltyServer(t *testing.T) loyaltyAPI {
	t.Helper()
	srv := apptest.Start(t, apptest.Options{Now: loyaltyNow})
	return loyaltyAPI{ts: srv, svc: srv.App.Loyalty, db: srv.DB, clock: srv.Clock}
}

func (a loyaltyAPI) do(t *testing.T, method, path, key, body string) answer {
	t.Helper()
	ct := ""
	if body != "" {
		ct = "application/json"
	}
	return do(t, method, a.ts.URL+path, key, ct, body)
}

func num(a answer, path ...string) float64 {
	var v any = a.body
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	f, _ := v.(float64)
	return f
}

func TestLoyaltyEarnRedeemAndBalance(t *testing.T) {
	api := newLoyaltyServer(t)
	if a := api.do(t, "GET", "/v1/loyalty/program", "n-secret-0123456789abcdef0123456789", ""); a.status != 200 || num(a, "expiry_days") != 365 || num(a, "earn_rate") != 1 {
		t.Fatalf("GET program = %d %s", a.status, a.raw)
	}
	if a := api.do(t, "PUT", "/v1/loyalty/program", "a-secret-0123456789abcdef0123456789", `{"earn_rate": 2, "point_value": 1, "expiry_days": 90, "pending_days": 0}`); a.status != 200 || num(a, "earn_rate") != 2 {
		t.Fatalf("PUT program = %d %s", a.status, a.raw)
	}
	earn := api.do(t, "POST", "/v1/loyalty/accounts/s-1/earn", "c-secret-0123456789abcdef0123456789", `{"points": 500, "idempotency_key": "welcome-s-1", "reason": "welcome"}`)
	if earn.status != 201 || num(earn, "balance") != 500 || num(earn, "transaction", "points") != 500 {
		t.Fatalf("earn = %d %s", earn.status, earn.raw)
	}
	if tr, _ := earn.body["transaction"].(map[string]any); tr["expires_at"] != "2027-02-23T14:00:00Z" || tr["type"] != "earn" {
		t.Fatalf("earn transaction = %v, want type earn expiring 90 days on", tr)
	}
	red := api.do(t, "POST", "/v1/loyalty/accounts/s-1/redeem", "c-secret-0123456789abcdef0123456789", `{"points": 120, "idempotency_key": "o-9-redeem", "order_id": "o-9"}`)
	if red.status != 201 || num(red, "balance") != 380 || num(red, "transaction", "points") != -120 {
		t.Fatalf("redeem = %d %s", red.status, red.raw)
	}
	acc := api.do(t, "GET", "/v1/loyalty/accounts/s-1", "n-secret-0123456789abcdef0123456789", "")
	if acc.status != 200 || num(acc, "balance") != 380 || num(acc, "lifetime_earned") != 500 ||
		num(acc, "lifetime_redeemed") != 120 || num(acc, "pending") != 0 || num(acc, "next_expiry", "points") != 380 {
		t.Fatalf("account = %d %s", acc.status, acc.raw)
	}
	page := api.do(t, "GET", "/v1/loyalty/accounts/s-1/transactions?limit=1", "a-secret-0123456789abcdef0123456789", "")
	txs, _ := page.body["transactions"].([]any)
	if page.status != 200 || len(txs) != 1 || page.body["next_cursor"] == nil {
		t.Fatalf("first page = %d %s", page.status, page.raw)
	}
	if first, _ := txs[0].(map[string]any); first["type"] != "redeem" || first["order_id"] != "o-9" {
		t.Fatalf("newest transaction = %v, want the redemption", first)
	}
	next := api.do(t, "GET", fmt.Sprintf("/v1/loyalty/accounts/s-1/transactions?limit=1&cursor=%v", page.body["next_cursor"]), "a-secret-0123456789abcdef0123456789", "")
	if txs, _ := next.body["transactions"].([]any); next.status != 200 || len(txs) != 1 || next.body["next_cursor"] != nil {
		t.Fatalf("second page = %d %s", next.status, next.raw)
	}
	if a := api.do(t, "GET", "/v1/loyalty/accounts/s-1/transactions?limit=x", "a-secret-0123456789abcdef0123456789", ""); a.status != 400 || fmt.Sprint(problems(a)) != "[- limit wrong_type]" {
		t.Fatalf("limit=x = %d %s", a.status, a.raw)
	}
	// A shopper never seen has an empty account, not a 404: checkout asks before the first order.
	if a := api.do(t, "GET", "/v1/loyalty/accounts/nobody", "c-secret-0123456789abcdef0123456789", ""); a.status != 200 || num(a, "balance") != 0 || a.body["next_expiry"] != nil {
		t.Fatalf("unknown shopper = %d %s", a.status, a.raw)
	}
}

func TestLoyaltyRoles(t *testing.T) {
	api := newLoyaltyServer(t)
	cases := []struct {
		method, path, key string
		status            int
	}{
		{"POST", "/v1/loyalty/accounts/s-1/earn", "", 401},
		{"POST", "/v1/loyalty/accounts/s-1/earn", "n-secret-0123456789abcdef0123456789", 403},
		{"POST", "/v1/loyalty/accounts/s-1/redeem", "n-secret-0123456789abcdef0123456789", 403},
		{"POST", "/v1/loyalty/transactions/1/reverse", "n-secret-0123456789abcdef0123456789", 403},
		{"PUT", "/v1/loyalty/program", "c-secret-0123456789abcdef0123456789", 403},
		{"GET", "/v1/loyalty/program", "c-secret-0123456789abcdef0123456789", 403},
		{"GET", "/v1/loyalty/accounts/s-1", "", 401},
		{"GET", "/v1/loyalty/accounts/s-1", "n-secret-0123456789abcdef0123456789", 200},
		{"GET", "/v1/loyalty/accounts/s-1/transactions", "c-secret-0123456789abcdef0123456789", 200},
		{"POST", "/v1/loyalty/accounts/s-1/earn", "a-secret-0123456789abcdef0123456789", 201},
	}
	for _, c := range cases {
		a := api.do(t, c.method, c.path, c.key, `{"points": 1, "idempotency_key": "k", "reason": "r"}`)
		if c.method == "GET" {
			a = api.do(t, c.method, c.path, c.key, "")
		}
		if a.status != c.status {
			t.Errorf("%s %s with %q = %d %s, want %d", c.method, c.path, c.key, a.status, a.raw, c.status)
		}
	}
}

func TestLoyaltyIdempotencyOverHTTP(t *testing.T) {
	api := newLoyaltyServer(t)
	body := `{"points": 100, "idempotency_key": "k1", "reason": "goodwill"}`
	first := api.do(t, "POST", "/v1/loyalty/accounts/s-1/earn", "c-secret-0123456789abcdef0123456789", body)
	api.clock.Advance(time.Hour)
	// Same request, keys in another order and other spacing: the same answer, byte for byte.
	again := api.do(t, "POST", "/v1/loyalty/accounts/s-1/earn", "c-secret-0123456789abcdef0123456789", `{ "reason":"goodwill","idempotency_key":"k1","points":100 }`)
	if first.status != 201 || again.status != 201 || again.raw != first.raw || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("first %d %s, replay %d %s", first.status, first.raw, again.status, again.raw)
	}
	if a := api.do(t, "POST", "/v1/loyalty/accounts/s-1/earn", "c-secret-0123456789abcdef0123456789", `{"points": 101, "idempotency_key": "k1", "reason": "goodwill"}`); a.status != 409 || errorCode(a) != "idempotency_conflict" {
		t.Fatalf("other body, same key = %d %s", a.status, a.raw)
	}
	if a := api.do(t, "POST", "/v1/loyalty/accounts/s-1/redeem", "c-secret-0123456789abcdef0123456789", `{"points": 101, "idempotency_key": "r1"}`); a.status != 409 || errorCode(a) != "insufficient_points" {
		t.Fatalf("redeem beyond the balance = %d %s", a.status, a.raw)
	}
	if a := api.do(t, "GET", "/v1/loyalty/accounts/s-1", "c-secret-0123456789abcdef0123456789", ""); num(a, "balance") != 100 {
		t.Fatalf("balance = %s, want 100", a.raw)
	}

	id := int(num(first, "transaction", "id"))
	path := fmt.Sprintf("/v1/loyalty/transactions/%d/reverse", id)
	rev := api.do(t, "POST", path, "a-secret-0123456789abcdef0123456789", `{"idempotency_key": "undo-1", "points": 40}`)
	if rev.status != 201 || num(rev, "transaction", "points") != -40 || num(rev, "balance") != 60 || num(rev, "transaction", "reverses") != float64(id) {
		t.Fatalf("reverse = %d %s", rev.status, rev.raw)
	}
	if a := api.do(t, "POST", path, "a-secret-0123456789abcdef0123456789", `{"idempotency_key": "undo-2", "points": 61}`); a.status != 409 || errorCode(a) != "conflict" {
		t.Fatalf("reversing more than is left = %d %s", a.status, a.raw)
	}
	if a := api.do(t, "POST", "/v1/loyalty/transactions/999999/reverse", "a-secret-0123456789abcdef0123456789", `{"idempotency_key": "x"}`); a.status != 404 {
		t.Fatalf("unknown transaction = %d %s", a.status, a.raw)
	}
}

func TestLoyaltyValidation(t *testing.T) {
	api := newLoyaltyServer(t)
	cases := []struct {
		method, path, body string
		want               string
	}{
		{"POST", "/v1/loyalty/accounts/s-1/earn", `{"points": 0}`, "[- points out_of_range - idempotency_key required - reason required]"},
		{"POST", "/v1/loyalty/accounts/s-1/earn", `{"points": 1, "idempotency_key": "k", "reason": "r", "bonus": 3}`, "[- bonus unknown_field]"},
		{"POST", "/v1/loyalty/accounts/s-1/redeem", `{"points": "ten", "idempotency_key": "k"}`, "[- points wrong_type]"},
		{"POST", "/v1/loyalty/transactions/1/reverse", `{"points": -5, "idempotency_key": "k"}`, "[- points out_of_range]"},
		{"PUT", "/v1/loyalty/program", `{"earn_rate": -1, "point_value": 1, "expiry_days": 10, "pending_days": 30}`, "[- earn_rate out_of_range]"},
		{"PUT", "/v1/loyalty/program", `{"earn_rate": 1, "point_value": 1, "expiry_days": 10, "pending_days": 30}`, "[- expiry_days out_of_range]"},
		{"PUT", "/v1/loyalty/program", `{"earn_rate": 1, "point_value": 1, "expiry_days": 10}`, "[- pending_days required]"},
	}
	for _, c := range cases {
		a := api.do(t, c.method, c.path, "a-secret-0123456789abcdef0123456789", c.body)
		if a.status != 400 || fmt.Sprint(problems(a)) != c.want {
			t.Errorf("%s %s %s = %d %v, want 400 %s", c.method, c.path, c.body, a.status, problems(a), c.want)
		}
	}
	if n := api.count(t, `SELECT count(*) FROM loyalty_entries`); n != 0 {
		t.Fatalf("invalid requests wrote %d entries", n)
	}
}

func (a loyaltyAPI) count(t *testing.T, q string) int64 {
	t.Helper()
	var n int64
	if err := a.db.Get(&n, q); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestFiftyConcurrentRedeemsOverHTTP(t *testing.T) {
	api := newLoyaltyServer(t)
	if a := api.do(t, "POST", "/v1/loyalty/accounts/s-1/earn", "c-secret-0123456789abcdef0123456789", `{"points": 1000, "idempotency_key": "grant", "reason": "test"}`); a.status != 201 {
		t.Fatalf("earn = %d %s", a.status, a.raw)
	}
	statuses := make([]string, 50)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := api.do(t, "POST", "/v1/loyalty/accounts/s-1/redeem", "c-secret-0123456789abcdef0123456789", fmt.Sprintf(`{"points": 100, "idempotency_key": "r-%d"}`, i))
			statuses[i] = fmt.Sprint(a.status, " ", errorCode(a))
		}()
	}
	wg.Wait()
	counts := map[string]int{}
	for _, s := range statuses {
		counts[s]++
	}
	if counts["201 "] != 10 || counts["409 insufficient_points"] != 40 {
		t.Fatalf("answers = %v, want 10 × 201 and 40 × 409 insufficient_points", counts)
	}
	if a := api.do(t, "GET", "/v1/loyalty/accounts/s-1", "c-secret-0123456789abcdef0123456789", ""); num(a, "balance") != 0 {
		t.Fatalf("balance = %s, want 0", a.raw)
	}
}

// TestOrderEventsEarnPoints goes through POST /v1/events, so that crediting reads what the
// events service really writes.
func TestOrderEventsEarnPoints(t *testing.T) {
	api := newLoyaltyServer(t)
	if _, err := api.db.Exec(`INSERT INTO experiments (key, name, status, phase, seed, hash_attribute, coverage, variants)
		VALUES ('pts', 'Points for conditioner', 'running', 1, 'pts', 'shopper_id', 1, $1)`, `[
		{"key": "control", "name": "Control", "weight": 0.5, "strategy": {"type": "none"}},
		{"key": "bonus", "name": "Bonus", "weight": 0.5, "strategy": {"type": "loyalty_points", "products": ["sku-cond"], "bonus_points": 30, "timing": "cart"}}]`); err != nil {
		t.Fatal(err)
	}
	if _, err := api.db.Exec(`INSERT INTO exposures (experiment_key, phase, shopper_id, variant, first_seen)
		VALUES ('pts', 1, 's-1', 'bonus', $1)`, loyaltyNow); err != nil {
		t.Fatal(err)
	}
	a := postEvents(t, api.ts,
		`{"id": "e1", "type": "order_completed", "shopper_id": "s-1", "order_id": "o-1", "amount": 4599, "discount": 100, "currency": "EUR",
		  "items": [{"sku": "sku-shampoo", "quantity": 1, "unit_price": 2599}, {"sku": "sku-cond", "quantity": 1, "unit_price": 2000}]}`,
		`{"id": "e2", "type": "order_refunded", "shopper_id": "s-1", "order_id": "o-1", "amount": 4499, "currency": "EUR"}`)
	if a.status != 200 {
		t.Fatalf("events = %d %s", a.status, a.raw)
	}
	n, err := api.svc.CreditOrders(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("CreditOrders = %d, %v; want 2 events", n, err)
	}
	// 44.99 EUR paid: 44 points + 30 bonus, all taken back by the full refund.
	acc := api.do(t, "GET", "/v1/loyalty/accounts/s-1", "c-secret-0123456789abcdef0123456789", "")
	if num(acc, "balance") != 0 || num(acc, "lifetime_earned") != 0 {
		t.Fatalf("account = %s, want everything refunded", acc.raw)
	}
	page := api.do(t, "GET", "/v1/loyalty/accounts/s-1/transactions", "c-secret-0123456789abcdef0123456789", "")
	var got []string
	txs, _ := page.body["transactions"].([]any)
	for _, x := range txs {
		m, _ := x.(map[string]any)
		got = append(got, fmt.Sprint(m["type"], " ", m["points"], " ", m["experiment"], " ", m["variant"]))
	}
	want := "[reverse -30 pts bonus reverse -44 <nil> <nil> earn 30 pts bonus earn 44 <nil> <nil>]"
	if fmt.Sprint(got) != want {
		t.Fatalf("ledger = %v, want %s", got, want)
	}
}

// TestShopperIDWithSlashIsReachable: events accept any shopper id, "/" included, and crediting
// opens their account; the account URLs reach it as one percent-encoded segment.
func TestShopperIDWithSlashIsReachable(t *testing.T) {
	api := newLoyaltyServer(t)
	if a := postEvents(t, api.ts, `{"id": "e1", "type": "order_completed", "shopper_id": "tenant/42", "order_id": "o-1",
		"amount": 2500, "currency": "EUR"}`); a.status != 200 {
		t.Fatalf("events = %d %s", a.status, a.raw)
	}
	if _, err := api.svc.CreditOrders(context.Background()); err != nil {
		t.Fatal(err)
	}
	acc := api.do(t, "GET", "/v1/loyalty/accounts/tenant%2F42", checkoutKey, "")
	if acc.status != 200 || acc.body["shopper_id"] != "tenant/42" || num(acc, "lifetime_earned") != 25 {
		t.Fatalf("account of tenant/42 = %d %s, want the 25 points of its order", acc.status, acc.raw)
	}
	red := api.do(t, "POST", "/v1/loyalty/accounts/tenant%2F42/redeem", checkoutKey, `{"points": 5, "idempotency_key": "r1"}`)
	if red.status != 201 || num(red, "balance") != 20 {
		t.Fatalf("redeem = %d %s", red.status, red.raw)
	}
	page := api.do(t, "GET", "/v1/loyalty/accounts/tenant%2F42/transactions", checkoutKey, "")
	if txs, _ := page.body["transactions"].([]any); page.status != 200 || len(txs) != 2 {
		t.Fatalf("transactions = %d %s", page.status, page.raw)
	}
	// The unencoded path names another route, which does not exist.
	if a := api.do(t, "GET", "/v1/loyalty/accounts/tenant/42", checkoutKey, ""); a.status != 404 {
		t.Fatalf("unencoded = %d %s, want 404", a.status, a.raw)
	}
}
