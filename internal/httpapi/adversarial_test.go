package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/app"
	"github.com/xsell/xsell/internal/httpapi"
)

// The adversarial suite (issue 13): every field of every request body is given what an
// attacker, a buggy checkout or a confused admin would send — NUL, invalid UTF-8, unpaired
// surrogates, a huge string, integers at and beyond the edges of int64, fractions, exponents,
// strings for numbers, repeated and miscased names, data after the body — against the real
// handlers and database. Each must get a 4xx in the error shape naming the field; nothing may
// be stored; and afterwards a normal shopper's exposure is written and a normal order credited
// by the background consumers, which one poisoned row used to stop for good.

// node is a JSON value of a body template, its members kept in order so that a case can
// repeat, rename or replace one.
type node struct {
	// kind is '{' (a struct), 'm' (a map: names are data), 'M' (names are data of any
	// length: a targeting condition), '[', '"' (a string field), 's' (a string where any value
	// goes), '0' (an integer field), 'f' (a float field), 'a' (a number where any value
	// goes), 'b' (a boolean field) or 'r' (raw JSON text, what cases put in).
	kind    byte
	members []member
	elems   []*node
	text    string // a string's value; the JSON text of the others
	// unbounded says an integer field takes every int64, so that the extremes are no mistake.
	unbounded bool
	// hugeAt is the field that reports a huge value here, when a bound of the whole applies.
	hugeAt string
}

type member struct {
	name  string
	value *node
}

func object(kind byte, kv ...any) *node {
	n := &node{kind: kind}
	for i := 0; i < len(kv); i += 2 {
		n.members = append(n.members, member{kv[i].(string), kv[i+1].(*node)})
	}
	return n
}

func obj(kv ...any) *node            { return object('{', kv...) }
func dict(kv ...any) *node           { return object('m', kv...) }
func arr(elems ...*node) *node       { return &node{kind: '[', elems: elems} }
func str(s string) *node             { return &node{kind: '"', text: s} }
func anyStr(s string) *node          { return &node{kind: 's', text: s} }
func integer(s string) *node         { return &node{kind: '0', text: s} }
func float(s string) *node           { return &node{kind: 'f', text: s} }
func anyNumber(s string) *node       { return &node{kind: 'a', text: s} }
func boolean(s string) *node         { return &node{kind: 'b', text: s} }
func raw(s string) *node             { return &node{kind: 'r', text: s} }
func unbounded(n *node) *node        { n.unbounded = true; return n }
func condition(kv ...any) *node      { return object('M', kv...) }
func hugeAt(f string, n *node) *node { n.hugeAt = f; return n }

func (n *node) encode(b *strings.Builder) {
	switch n.kind {
	case '{', 'm', 'M':
		b.WriteByte('{')
		for i, m := range n.members {
			if i > 0 {
				b.WriteByte(',')
			}
			if strings.HasPrefix(m.name, `"`) {
				b.WriteString(m.name) // a name a case wrote as JSON text
			} else {
				q, _ := json.Marshal(m.name)
				b.Write(q)
			}
			b.WriteByte(':')
			m.value.encode(b)
		}
		b.WriteByte('}')
	case '[':
		b.WriteByte('[')
		for i, e := range n.elems {
			if i > 0 {
				b.WriteByte(',')
			}
			e.encode(b)
		}
		b.WriteByte(']')
	case '"', 's':
		q, _ := json.Marshal(n.text)
		b.Write(q)
	default:
		b.WriteString(n.text)
	}
}

func (n *node) String() string {
	var b strings.Builder
	n.encode(&b)
	return b.String()
}

// huge is longer than every bounded text field.
var huge = strings.Repeat("x", 100_000)

// textVariants are strings no text field may hold, as JSON: NUL, a byte that is not UTF-8,
// unpaired surrogates.
var textVariants = []string{`"a\u0000b"`, "\"a\xffb\"", `"\ud800"`, `"\udc00\ud83d"`}

// valueVariants are the hostile values for a leaf.
func valueVariants(n *node) []string {
	quotedHuge := `"` + huge + `"`
	switch n.kind {
	case '"':
		return append(textVariants, quotedHuge, "7", "[]")
	case 's':
		return append(textVariants, quotedHuge)
	case '0':
		vs := []string{"9223372036854775808", "-9223372036854775809", "1.5", "1e3", `"7"`, "1e400", "true"}
		if !n.unbounded {
			vs = append(vs, "9223372036854775807", "-9223372036854775808")
		}
		return vs
	case 'f':
		return []string{"1e400", `"0.5"`, "true", "-1"}
	case 'a':
		return []string{"1e400"}
	case 'b':
		return []string{"1", `"true"`}
	}
	return nil
}

// nameVariants are names a map may not have; a condition's names may be long.
func nameVariants(kind byte) []string {
	vs := []string{`"k\u0000"`, "\"k\xff\"", `"\ud800"`}
	if kind == 'm' {
		vs = append(vs, strings.Repeat("n", 300))
	}
	return vs
}

// badCase is one hostile body and the field its answer must name ("" for a body that is not
// JSON, which has no field).
type badCase struct {
	name, body, field string
}

// cases makes every hostile body from a valid one: each leaf replaced by each of its
// variants, each member repeated, each struct member miscased, each map given bad names, and
// the body followed by data, cut short or broken between tokens.
func cases(base *node) []badCase {
	var out []badCase
	add := func(name, field string) { out = append(out, badCase{name, base.String(), field}) }
	var walk func(n *node, path string)
	walk = func(n *node, path string) {
		switch n.kind {
		case '{', 'm', 'M':
			for i := range n.members {
				m := &n.members[i]
				child := httpapi.JoinPath(path, m.name)
				orig := n.members
				n.members = append(append(append([]member{}, orig[:i+1]...), *m), orig[i+1:]...)
				add("repeated "+child, child)
				n.members = orig
				if n.kind == '{' {
					name := m.name
					m.name = strings.ToUpper(name[:1]) + name[1:]
					add("miscased "+child, httpapi.JoinPath(path, m.name))
					m.name = name
				}
				walk(m.value, child)
			}
			if n.kind != '{' && len(n.members) > 0 {
				m := &n.members[0]
				name := m.name
				for _, bad := range nameVariants(n.kind) {
					m.name = bad
					add(fmt.Sprintf("%s name %.40q", path, bad), path)
				}
				m.name = name
			}
		case '[':
			for i, e := range n.elems {
				walk(e, path+"["+strconv.Itoa(i)+"]")
			}
		default:
			saved := *n
			for _, v := range valueVariants(&saved) {
				*n = node{kind: 'r', text: v}
				field := path
				if saved.hugeAt != "" && len(v) > len(huge) {
					field = saved.hugeAt
				}
				add(fmt.Sprintf("%s = %.40q", path, v), field)
			}
			*n = saved
		}
	}
	walk(base, "")
	good := base.String()
	for _, tail := range []string{"zz", " {}", "\xff", ",", "]", `"`} {
		out = append(out, badCase{"followed by " + tail, good + tail, ""})
	}
	out = append(out,
		badCase{"cut short", good[:len(good)/2], ""},
		badCase{"not UTF-8 between tokens", strings.Replace(good, ":", ":\xff", 1), ""},
		badCase{"unknown field", good[:len(good)-1] + `,"unknown_adv":1}`, "unknown_adv"},
		badCase{"an array", "[" + good + "]", "body"},
		badCase{"empty", "", ""},
	)
	return out
}

// newAdvAPI is the whole API on a fresh database with its background consumers running as
// the server runs them: the exposure recorder, and order crediting at a short interval.
func newAdvAPI(t *testing.T) *testAPI {
	t.Helper()
	return newTestAPI(t, func(c *app.Config) { c.CreditEvery = 20 * time.Millisecond })
}

// rowCounts counts the rows of every table of the schema that a request can write, partitions
// included. Snapshots that a server computes from the data on its own schedule are left out:
// one may land at any moment and says nothing about what a request stored.
func rowCounts(t *testing.T, db *sqlx.DB) map[string]int {
	t.Helper()
	var tables []string
	if err := db.Select(&tables, `SELECT tablename FROM pg_tables
		WHERE schemaname = current_schema()
		  AND tablename NOT IN ('goose_db_version', 'affinity_snapshots', 'results_snapshots', 'complement_snapshots', 'complements')
		ORDER BY tablename`); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, name := range tables {
		var n int
		if err := db.Get(&n, `SELECT count(*) FROM `+strconv.Quote(name)); err != nil {
			t.Fatal(err)
		}
		counts[name] = n
	}
	return counts
}

var snakeCase = regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)

// checkRefused fails unless a is a 4xx in the error shape whose details name field (an event's
// field as its index and path), or the field's parent or a field within it.
func checkRefused(t *testing.T, what string, a answer, field string) {
	t.Helper()
	e, _ := a.body["error"].(map[string]any)
	code, _ := e["code"].(string)
	msg, _ := e["message"].(string)
	rid, _ := e["request_id"].(string)
	if a.status < 400 || a.status > 499 || !snakeCase.MatchString(code) || msg == "" || rid == "" {
		t.Errorf("%s: got %d %.300s, want a 4xx in the error shape", what, a.status, a.raw)
		return
	}
	if field == "" {
		if code != "malformed_json" && code != "invalid_request" {
			t.Errorf("%s: code %s, want malformed_json", what, code)
		}
		return
	}
	index, want := -1, field
	if i, f, ok := httpapi.EventField(field); ok {
		index, want = i, f
	}
	details, _ := e["details"].([]any)
	for _, d := range details {
		d, _ := d.(map[string]any)
		f, _ := d["field"].(string)
		i := -1
		if x, ok := d["index"].(float64); ok {
			i = int(x)
		}
		if i == index && f != "" && (related(f, want) || related(want, f)) {
			return
		}
	}
	t.Errorf("%s: %d %.400s names no %q", what, a.status, a.raw, field)
}

// related says whether path is within (or is) outer.
func related(path, outer string) bool {
	return path == outer || strings.HasPrefix(path, outer+".") || strings.HasPrefix(path, outer+"[")
}

func TestAdversarialInputsAreRefusedAndThePipelinesFlow(t *testing.T) {
	api := newAdvAPI(t)
	// The normal flow's setup: a running loyalty experiment and one point per euro.
	def := validExperiment("normal-exp")
	def["targeting"] = nil
	createExperiment(t, api.url, def)
	if a := do(t, "POST", api.url+"/v1/experiments/normal-exp/start", adminKey, "", ""); a.status != 200 {
		t.Fatalf("start: %d %s", a.status, a.raw)
	}
	if a := do(t, "PUT", api.url+"/v1/loyalty/program", adminKey, "application/json",
		`{"earn_rate": 1, "point_value": 1, "expiry_days": 0, "pending_days": 0}`); a.status != 200 {
		t.Fatalf("program: %d %s", a.status, a.raw)
	}
	if err := api.cache.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := rowCounts(t, api.db)

	occurred := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	targeting := condition("country", condition("$in", arr(hugeAt("targeting", anyStr("IT")))))
	definition := func(key string, extra ...any) *node {
		return obj(append([]any{
			"key", str(key), "name", str("Adversarial"), "hypothesis", str("h"), "seed", str("s"),
			"hash_attribute", str("shopper_id"), "coverage", float("1"),
			"variants", arr(
				obj("key", str("control"), "name", str("C"), "weight", float("0.5"), "control", boolean("true"),
					"strategy", obj("type", str("none"))),
				obj("key", str("pts"), "name", str("P"), "weight", float("0.5"), "strategy", obj(
					"type", str("loyalty_points"), "products", arr(str("sku-1")), "bonus_points", integer("10"),
					"timing", str("cart"), "trigger_products", arr(str("sku-2"))),
					"frequency_cap", obj("offers", integer("2"), "per", str("24h")),
					"budget", obj("points", integer("1000"), "per_shopper", obj("accepted_offers", integer("2"), "per", str("30d"))))),
			"targeting", targeting,
			"layer", obj("name", str("l"), "range", arr(float("0"), float("1"))),
			"target_products", arr(str("sku-1")),
			"metrics", obj("primary", str("revenue"), "secondary", arr(str("aov"))),
			"forced", dict("qa-1", str("control")),
			"frequency_cap", obj("offers", integer("3"), "per", str("7d")),
		}, extra...)...)
	}
	bodies := []struct {
		method, path, key string
		body              *node
	}{
		{"POST", "/v1/assign", checkoutKey, obj(
			"shopper_id", str("adv-shopper"),
			"attributes", dict("country", anyStr("IT"), "visits", anyNumber("3"), "tags", arr(anyStr("vip")),
				"geo", dict("city", anyStr("Roma"))),
			"experiments", arr(str("normal-exp")), "track", boolean("true"),
			"context", obj("products", arr(str("sku-1"))))},
		{"POST", "/v1/events", checkoutKey, obj("events", arr(obj(
			"id", str("adv-e1"), "type", str("order_completed"), "shopper_id", str("adv-shopper"),
			"occurred_at", str(occurred), "experiment", str("normal-exp"), "order_id", str("adv-o1"),
			"amount", integer("2400"), "discount", integer("100"), "currency", str("EUR"),
			"items", arr(obj("sku", str("sku-1"), "quantity", integer("2"), "unit_price", integer("1200"))))))},
		{"POST", "/v1/loyalty/accounts/adv-shopper/earn", checkoutKey, obj(
			"points", integer("100"), "idempotency_key", str("adv-k1"), "reason", str("welcome"), "order_id", str("adv-o1"),
			"experiment", str("normal-exp"), "variant", str("pts"))},
		{"POST", "/v1/loyalty/accounts/adv-shopper/redeem", checkoutKey, obj(
			"points", integer("100"), "idempotency_key", str("adv-k2"), "order_id", str("adv-o1"))},
		{"POST", "/v1/loyalty/transactions/1/reverse", checkoutKey, obj(
			"idempotency_key", str("adv-k3"), "points", integer("5"))},
		{"PUT", "/v1/loyalty/program", adminKey, obj(
			"earn_rate", integer("2"), "point_value", integer("1"), "expiry_days", integer("0"), "pending_days", integer("0"))},
		{"POST", "/v1/experiments", adminKey, definition("adv-exp", "allocation", obj("type", str("bandit"),
			"metric", str("net_revenue"), "burn_in", str("24h"), "update_every", str("6h"), "min_weight", float("0.01"),
			"min_units", integer("100"), "sampling", str("top_two"), "leader_share", float("0.8")))},
		{"PUT", "/v1/offers/settings", adminKey, obj(
			"global_cap", obj("offers", integer("10"), "per", str("7d")), "version", unbounded(integer("1")))},
		{"PUT", "/v1/holdout", adminKey, obj("percent", float("5"), "seed", str("adv-holdout"), "version", unbounded(integer("1")))},
		{"PUT", "/v1/experiments/normal-exp", adminKey, definition("normal-exp", "version", unbounded(integer("2")))},
		{"POST", "/v1/experiments/normal-exp/bandit/update", adminKey, obj("at", str(occurred))},
	}
	total := 0
	for _, b := range bodies {
		for _, c := range cases(b.body) {
			a := do(t, b.method, api.url+b.path, b.key, "application/json", c.body)
			checkRefused(t, b.method+" "+b.path+": "+c.name, a, c.field)
			total++
		}
	}
	total += adversarialPaths(t, api.url)
	t.Logf("%d hostile requests refused", total)

	if after := rowCounts(t, api.db); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("hostile requests stored rows:\nbefore %v\nafter  %v", before, after)
	}
	normalFlowFlows(t, api)
}

// adversarialPaths sends hostile ids in paths and query strings; it returns how many.
func adversarialPaths(t *testing.T, url string) int {
	t.Helper()
	n := 0
	for _, id := range []string{"%00", "a%00b", "%FF", "%ED%A0%80", strings.Repeat("x", 300)} {
		for _, r := range []struct{ method, path, body string }{
			{"GET", "/v1/loyalty/accounts/" + id, ""},
			{"GET", "/v1/loyalty/accounts/" + id + "/transactions", ""},
			{"POST", "/v1/loyalty/accounts/" + id + "/earn", `{"points": 1, "idempotency_key": "adv-p", "reason": "r"}`},
			{"POST", "/v1/loyalty/accounts/" + id + "/redeem", `{"points": 1, "idempotency_key": "adv-p"}`},
		} {
			a := do(t, r.method, url+r.path, checkoutKey, "application/json", r.body)
			checkRefused(t, r.method+" "+r.path, a, "shopper_id")
			n++
		}
		for _, r := range []struct{ method, path string }{
			{"GET", "/v1/experiments/" + id}, {"PUT", "/v1/experiments/" + id}, {"DELETE", "/v1/experiments/" + id},
			{"POST", "/v1/experiments/" + id + "/start"}, {"POST", "/v1/experiments/" + id + "/phases"},
			{"GET", "/v1/experiments/" + id + "/history"}, {"GET", "/v1/experiments/" + id + "/bandit"},
		} {
			if a := do(t, r.method, url+r.path, adminKey, "", ""); a.status != 404 || errorCode(a) != "not_found" {
				t.Errorf("%s %s = %d %.200s, want 404 not_found", r.method, r.path, a.status, a.raw)
			}
			n++
		}
		a := do(t, "POST", url+"/v1/loyalty/transactions/"+id+"/reverse", checkoutKey, "application/json", `{"idempotency_key": "k"}`)
		if a.status != 404 {
			t.Errorf("reverse of transaction %s = %d %.200s, want 404", id, a.status, a.raw)
		}
		n++
	}
	for _, r := range []struct{ path, key, field string }{
		{"/v1/loyalty/accounts/s/transactions?cursor=%00", checkoutKey, "cursor"},
		{"/v1/loyalty/accounts/s/transactions?limit=99999999999999999999", checkoutKey, "limit"},
		{"/v1/experiments?cursor=%00", adminKey, "cursor"},
		{"/v1/experiments?cursor=%FF", adminKey, "cursor"},
		{"/v1/experiments?limit=1e3", adminKey, "limit"},
	} {
		checkRefused(t, "GET "+r.path, do(t, "GET", url+r.path, r.key, "", ""), r.field)
		n++
	}
	return n
}

// normalFlowFlows has a normal shopper assigned and ordering, and waits for the background
// consumers to write the exposure and credit the order; then checks that no row anywhere
// belongs to the hostile requests.
func normalFlowFlows(t *testing.T, api *testAPI) {
	t.Helper()
	a := do(t, "POST", api.url+"/v1/assign", checkoutKey, "application/json", `{"shopper_id": "normal-1"}`)
	if a.status != 200 || !strings.Contains(a.raw, `"in_experiment":true`) {
		t.Fatalf("normal assign: %d %s", a.status, a.raw)
	}
	a = do(t, "POST", api.url+"/v1/events", checkoutKey, "application/json", `{"events": [{"id": "normal-e1",
		"type": "order_completed", "shopper_id": "normal-1", "order_id": "normal-o1", "amount": 5000, "currency": "EUR"}]}`)
	if a.status != 200 {
		t.Fatalf("normal order: %d %s", a.status, a.raw)
	}
	waitForRow(t, api.db, `SELECT count(*) FROM exposures WHERE shopper_id = 'normal-1'`)
	waitForRow(t, api.db, `SELECT count(*) FROM loyalty_entries WHERE order_id = 'normal-o1' AND kind = 'earn' AND points = 50`)
	for _, q := range []string{
		`SELECT count(*) FROM exposures WHERE shopper_id <> 'normal-1'`,
		`SELECT count(*) FROM loyalty_accounts WHERE shopper_id <> 'normal-1'`,
		`SELECT count(*) FROM events WHERE shopper_id <> 'normal-1'`,
	} {
		var n int
		if err := api.db.Get(&n, q); err != nil || n != 0 {
			t.Errorf("%s = %d (%v), want 0", q, n, err)
		}
	}
}

// waitForRow polls query (a count) until it is positive: the row a background consumer writes.
func waitForRow(t *testing.T, db *sqlx.DB, query string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		var n int
		if err := db.Get(&n, query); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no row after 30 s: %s", query)
		}
		<-tick.C
	}
}
