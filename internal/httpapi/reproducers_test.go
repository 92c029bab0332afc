package httpapi_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/servertest"
)

// TestIssue13ReproducersAgainstTheServerBinary replays issue 13's reproducers, as its reporter
// sent them, against the server binary and its database, then checks that a normal shopper's
// exposure is written and a normal order credited: before, the first one alone stopped every
// exposure until a restart, and two refunds stopped all crediting.
func TestIssue13ReproducersAgainstTheServerBinary(t *testing.T) {
	const admin, checkout = "e2e-admin-secret-0123456789abcdefghijkl", "e2e-checkout-secret-0123456789abcdefgh"
	url := dbtest.URL(t)
	srv := servertest.Start(t, url, "XSELL_API_KEYS=admin:"+admin+",checkout:"+checkout)
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	def := validExperiment("repro")
	def["targeting"] = nil
	if a := do(t, "POST", srv.URL+"/v1/experiments", admin, "application/json", mustJSON(t, def)); a.status != 201 {
		t.Fatalf("create: %d %s", a.status, a.raw)
	}
	if a := do(t, "POST", srv.URL+"/v1/experiments/repro/start", admin, "", ""); a.status != 200 {
		t.Fatalf("start: %d %s", a.status, a.raw)
	}
	before := rowCounts(t, db)

	refund := `{"id": "r%d", "type": "order_refunded", "shopper_id": "s", "order_id": "o", "amount": 9223372036854775807, "currency": "EUR"}`
	earn := func(fields string) string { return `{"idempotency_key": "k", "reason": "r", ` + fields + `}` }
	for _, r := range []struct {
		name, method, path, key, body, field, code string
	}{
		{"NUL shopper id", "POST", "/v1/assign", checkout, `{"shopper_id": "evil\u0000x"}`, "shopper_id", "invalid_character"},
		{"NUL attribute name", "POST", "/v1/assign", checkout, `{"shopper_id": "s", "attributes": {"k\u0000": "v"}}`, "attributes", "invalid_character"},
		{"NUL attribute value", "POST", "/v1/assign", checkout, `{"shopper_id": "s", "attributes": {"k": "v\u0000"}}`, "attributes.k", "invalid_character"},
		{"refunds of MaxInt64", "POST", "/v1/events", checkout,
			`{"events": [` + strings.Replace(refund, "%d", "1", 1) + `,` + strings.Replace(refund, "%d", "2", 1) + `]}`, "events[0].amount", "out_of_range"},
		{"amount below int64", "POST", "/v1/events", checkout, `{"events": [{"id": "e", "type": "order_completed", "shopper_id": "s",
			"order_id": "o", "amount": -9223372036854775809, "currency": "EUR"}]}`, "events[0].amount", "out_of_range"},
		{"version beyond int64", "PUT", "/v1/experiments/repro", admin, mustJSON(t, def)[:len(mustJSON(t, def))-1] + `, "version": 9223372036854775808}`, "version", "out_of_range"},
		{"repeated points", "POST", "/v1/loyalty/accounts/s/redeem", checkout, `{"points":1000,"points":1, "idempotency_key": "k"}`, "points", "duplicate_key"},
		{"miscased points", "POST", "/v1/loyalty/accounts/s/earn", checkout, earn(`"Points": 1`), "Points", "unknown_field"},
		{"invalid UTF-8", "POST", "/v1/loyalty/accounts/s/earn", checkout, earn("\"points\": 1, \"order_id\": \"o\xff\""), "order_id", "invalid_utf8"},
		{"invalid UTF-8 and junk", "POST", "/v1/loyalty/accounts/s/earn", checkout, "{\"points\": 201, \"idempotency_key\": \"k\", \"reason\":\"r\xff\"}zz", "", "malformed_json"},
		{"trailing junk", "POST", "/v1/loyalty/accounts/s/earn", checkout, earn(`"points": 1`) + "zz", "", "malformed_json"},
		{"NUL experiment name", "PUT", "/v1/experiments/repro", admin, strings.Replace(mustJSON(t, def), `"Conditioner with shampoo"`, `"a\u0000"`, 1), "name", "invalid_character"},
		{"NUL idempotency key", "POST", "/v1/loyalty/accounts/s/earn", checkout, `{"points": 1, "idempotency_key": "k\u0000", "reason": "r"}`, "idempotency_key", "invalid_character"},
		{"NUL order id", "POST", "/v1/events", checkout, `{"events": [{"id": "e", "type": "order_completed", "shopper_id": "s",
			"order_id": "o\u0000", "amount": 1, "currency": "EUR"}]}`, "events[0].order_id", "invalid_character"},
		{"NUL loyalty path id", "GET", "/v1/loyalty/accounts/s%00", checkout, "", "shopper_id", "invalid_character"},
		{"huge attributes", "POST", "/v1/assign", checkout, `{"shopper_id": "s", "attributes": {"a": "` + strings.Repeat("x", 900_000) + `"}}`, "attributes.a", "too_long"},
		{"huge forced id", "PUT", "/v1/experiments/repro", admin, strings.Replace(mustJSON(t, def), `"key":"repro"`, `"key":"repro","version":2,"forced":{"`+strings.Repeat("s", 900_000)+`":"control"}`, 1), "forced", "too_long"},
	} {
		ct := "application/json"
		if r.body == "" {
			ct = ""
		}
		a := do(t, r.method, srv.URL+r.path, r.key, ct, r.body)
		checkRefused(t, r.name, a, r.field)
		if errorCode(a) != "malformed_json" && !strings.Contains(a.raw, `"code":"`+r.code+`"`) {
			t.Errorf("%s: %d %.300s, want a detail of code %s", r.name, a.status, a.raw, r.code)
		}
	}
	if after := rowCounts(t, db); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("the reproducers stored rows:\nbefore %v\nafter  %v", before, after)
	}

	if a := do(t, "POST", srv.URL+"/v1/assign", checkout, "application/json", `{"shopper_id": "normal-1"}`); a.status != 200 {
		t.Fatalf("normal assign: %d %s", a.status, a.raw)
	}
	if a := do(t, "POST", srv.URL+"/v1/events", checkout, "application/json", `{"events": [{"id": "n1", "type": "order_completed",
		"shopper_id": "normal-1", "order_id": "normal-o1", "amount": 5000, "currency": "EUR"}]}`); a.status != 200 {
		t.Fatalf("normal order: %d %s", a.status, a.raw)
	}
	waitForRow(t, db, `SELECT count(*) FROM exposures WHERE shopper_id = 'normal-1'`)
	waitForRow(t, db, `SELECT count(*) FROM loyalty_entries WHERE order_id = 'normal-o1' AND kind = 'earn'`)
	if out := srv.Output(); strings.Contains(out, "panic") || strings.Contains(out, "level=ERROR") {
		t.Fatalf("the server logged a panic or an error:\n%s", out)
	}
}
