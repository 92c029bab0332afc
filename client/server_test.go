package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"

	"github.com/xsell/xsell/client"
	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/openapitest"
	"github.com/xsell/xsell/internal/servertest"
)

// The keys of the test server, long enough for any key policy.
const (
	adminSecret    = "client-test-admin-0123456789abcdef"
	checkoutSecret = "client-test-checkout-0123456789abcdef"
	analystSecret  = "client-test-analyst-0123456789abcdef"
)

// server is the server binary on a fresh database.
type server struct {
	url string
	db  *sqlx.DB
}

func startServer(t *testing.T) server {
	t.Helper()
	dbURL := dbtest.URL(t)
	p := servertest.Start(t, dbURL,
		"XSELL_API_KEYS=admin:"+adminSecret+",checkout:"+checkoutSecret+",analyst:"+analystSecret)
	db, err := sqlx.Connect("postgres", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return server{url: p.URL, db: db}
}

// connect is a client of url whose every exchange is checked against the OpenAPI document.
func connect(t *testing.T, url, key string, opts ...client.Option) *client.Client {
	t.Helper()
	h := &http.Client{Transport: openapitest.Transport(t, nil), Timeout: 30 * time.Second}
	c, err := client.New(url, key, append([]client.Option{client.WithHTTPClient(h)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dropProxy forwards connections to a server, and can drop the next answers: it closes the
// client's connection when the first bytes of an answer arrive, so the server has done the
// work (a 200 from /v1/events means committed) and the client never learns it.
type dropProxy struct {
	l        net.Listener
	upstream string
	drop     atomic.Int32 // answers still to drop
	dropped  atomic.Int32
	wg       sync.WaitGroup
}

func newDropProxy(t *testing.T, upstreamURL string) *dropProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{l: l, upstream: upstreamURL[len("http://"):]}
	p.wg.Go(p.accept)
	t.Cleanup(func() { l.Close(); p.wg.Wait() })
	return p
}

func (p *dropProxy) url() string { return "http://" + p.l.Addr().String() }

func (p *dropProxy) accept() {
	for {
		down, err := p.l.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.serve(down) })
	}
}

func (p *dropProxy) serve(down net.Conn) {
	defer down.Close()
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	defer up.Close()
	go func() { _, _ = io.Copy(up, down); up.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := up.Read(buf)
		if n > 0 {
			if p.drop.Load() > 0 {
				p.drop.Add(-1)
				p.dropped.Add(1)
				return // both connections close: the answer is lost
			}
			if _, werr := down.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestDroppedAnswersStoreNothingTwice loses the answers of an events batch and of a
// redemption after the server committed them: the client retries with the same event ids and
// the same (generated) idempotency key, and the database holds each event and the
// redemption once.
func TestDroppedAnswersStoreNothingTwice(t *testing.T) {
	srv := startServer(t)
	proxy := newDropProxy(t, srv.url)
	var retries atomic.Int32
	hook := client.WithRetryHook(func(client.RetryEvent) { retries.Add(1) })
	checkout := connect(t, proxy.url(), checkoutSecret, hook)
	ctx := context.Background()

	events := []client.Event{
		{Type: client.EventOfferViewed, ShopperID: "s-drop", Experiment: "pdp-bundle"},
		{Type: client.EventOfferAccepted, ShopperID: "s-drop", Experiment: "pdp-bundle"},
		{Type: client.EventOrderCompleted, ShopperID: "s-drop", Experiment: "pdp-bundle", OrderID: "o-drop",
			Amount: client.Int64(2400), Discount: client.Int64(150), Currency: "EUR",
			Items: []client.Item{{SKU: "sku-shampoo", Quantity: 1, UnitPrice: 900}, {SKU: "sku-conditioner", Quantity: 1, UnitPrice: 1500}}},
	}
	proxy.drop.Store(1)
	res, err := checkout.SendEvents(ctx, events)
	if err != nil {
		t.Fatal(err)
	}
	if proxy.dropped.Load() != 1 || retries.Load() != 1 {
		t.Fatalf("dropped %d answers, the client retried %d times; want 1 and 1", proxy.dropped.Load(), retries.Load())
	}
	// The first try stored all three; the retry found them stored.
	if res.Accepted != 0 || res.Duplicates != 3 || res.Sent != 3 {
		t.Fatalf("after a lost answer: %+v, want 0 accepted, 3 duplicates, 3 sent", res)
	}
	for _, e := range events {
		if e.ID == "" {
			t.Fatal("SendEvents did not give the events the ids it sent")
		}
	}
	if n := dbtest.Count(t, srv.db, `SELECT count(*) FROM events WHERE shopper_id = 's-drop'`); n != 3 {
		t.Fatalf("the database holds %d events of the batch, want 3", n)
	}

	if _, err := checkout.Earn(ctx, "s-drop", client.EarnRequest{Points: 100, Reason: "welcome"}); err != nil {
		t.Fatal(err)
	}
	proxy.drop.Store(1)
	rc, err := checkout.Redeem(ctx, "s-drop", client.RedeemRequest{Points: 30, OrderID: "o-drop-2"})
	if err != nil {
		t.Fatal(err)
	}
	if !rc.Replayed || rc.Balance != 70 || rc.IdempotencyKey == "" || proxy.dropped.Load() != 2 {
		t.Fatalf("redeem after a lost answer: replayed=%v balance=%d key=%q dropped=%d; want a replay, 70, a generated key, 2",
			rc.Replayed, rc.Balance, rc.IdempotencyKey, proxy.dropped.Load())
	}
	if n := dbtest.Count(t, srv.db, `SELECT count(*) FROM loyalty_entries WHERE shopper_id = 's-drop' AND kind = 'redeem'`); n != 1 {
		t.Fatalf("the ledger holds %d redemptions, want 1", n)
	}
	acct, err := checkout.GetAccount(ctx, "s-drop")
	if err != nil {
		t.Fatal(err)
	}
	if acct.Balance != 70 || acct.LifetimeRedeemed != 30 {
		t.Fatalf("account after one redemption of 30 from 100: %+v", acct)
	}
}

// TestIdempotencyConflictIsTyped checks that reusing a key for another request surfaces as a
// *client.Error with its code, status and request id, and changes nothing.
func TestIdempotencyConflictIsTyped(t *testing.T) {
	srv := startServer(t)
	checkout := connect(t, srv.url, checkoutSecret)
	ctx := context.Background()
	if _, err := checkout.Earn(ctx, "s-9", client.EarnRequest{Points: 50, Reason: "goodwill", IdempotencyKey: "goodwill-9"}); err != nil {
		t.Fatal(err)
	}
	again, err := checkout.Earn(ctx, "s-9", client.EarnRequest{Points: 50, Reason: "goodwill", IdempotencyKey: "goodwill-9"})
	if err != nil || !again.Replayed || again.Balance != 50 {
		t.Fatalf("the same request again: %+v, %v; want the first answer replayed", again, err)
	}
	_, err = checkout.Earn(ctx, "s-9", client.EarnRequest{Points: 60, Reason: "goodwill", IdempotencyKey: "goodwill-9"})
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("the key with another body: %v, want a *client.Error", err)
	}
	if e.Status != http.StatusConflict || e.Code != client.CodeIdempotencyConflict || e.RequestID == "" || e.Message == "" {
		t.Fatalf("the key with another body: %+v", e)
	}
	if !client.IsCode(err, "idempotency_conflict") || client.StatusOf(err) != 409 {
		t.Fatalf("IsCode/StatusOf do not see the conflict in %v", err)
	}
	_, err = checkout.Redeem(ctx, "s-9", client.RedeemRequest{Points: 51})
	if !client.IsCode(err, client.CodeInsufficientPoints) {
		t.Fatalf("redeeming 51 of 50: %v, want insufficient_points", err)
	}
	if n := dbtest.Count(t, srv.db, `SELECT count(*) FROM loyalty_entries WHERE shopper_id = 's-9'`); n != 1 {
		t.Fatalf("the ledger holds %d entries, want the one earn", n)
	}
}

// TestEventBatches sends more events than a request takes, with one bad event in the third
// batch: the first two batches are committed, the error names the bad event by its place in
// the whole slice, and sending everything again stores only what was missing.
func TestEventBatches(t *testing.T) {
	srv := startServer(t)
	checkout := connect(t, srv.url, checkoutSecret)
	ctx := context.Background()
	events := make([]client.Event, 2500)
	for i := range events {
		events[i] = client.Event{ID: fmt.Sprintf("batch-%d", i), Type: client.EventOfferViewed, ShopperID: fmt.Sprintf("s-%d", i%7)}
	}
	events[2100].Type = "offer_clicked"
	res, err := checkout.SendEvents(ctx, events)
	var e *client.Error
	if !errors.As(err, &e) || e.Code != client.CodeInvalidRequest || len(e.Details) == 0 || e.Details[0].Index == nil ||
		*e.Details[0].Index != 2100 || e.Details[0].Field != "type" {
		t.Fatalf("a bad event at 2100: %v (%+v)", err, e)
	}
	if res.Sent != 2000 || res.Accepted != 2000 {
		t.Fatalf("before the bad batch: %+v, want 2000 sent and accepted", res)
	}
	if n := dbtest.Count(t, srv.db, `SELECT count(*) FROM events`); n != 2000 {
		t.Fatalf("the database holds %d events, want the 2000 of the good batches", n)
	}
	events[2100].Type = client.EventOfferViewed
	res, err = checkout.SendEvents(ctx, events)
	if err != nil || res.Accepted != 500 || res.Duplicates != 2000 || res.Sent != 2500 {
		t.Fatalf("all again: %+v, %v; want 500 accepted, 2000 duplicates", res, err)
	}
	if n := dbtest.Count(t, srv.db, `SELECT count(*) FROM events`); n != 2500 {
		t.Fatalf("the database holds %d events, want 2500", n)
	}
}

// TestTour walks the README's tour through the client, as an admin tool and a checkout would.
func TestTour(t *testing.T) {
	srv := startServer(t)
	admin := connect(t, srv.url, adminSecret)
	checkout := connect(t, srv.url, checkoutSecret)
	analyst := connect(t, srv.url, analystSecret)
	ctx := context.Background()

	def := client.Definition{
		Key: "pdp-bundle", Name: "Conditioner with shampoo",
		Hypothesis: "A bundle discount sells more conditioner than bonus points do",
		Variants: []client.Variant{
			{Key: "control", Name: "No offer", Weight: 0.34, Strategy: client.Strategy{Type: "none"}},
			{Key: "bundle10", Name: "Bundle -10%", Weight: 0.33, Strategy: client.Strategy{Type: "bundle",
				Products: []string{"sku-conditioner"}, DiscountPercent: client.Float64(10), Timing: "cart"}},
			{Key: "points200", Name: "200 bonus points", Weight: 0.33, Strategy: client.Strategy{Type: "loyalty_points",
				Products: []string{"sku-conditioner"}, BonusPoints: client.Int64(200), Timing: "checkout"}},
		},
		Targeting: map[string]any{"country": map[string]any{"$in": []string{"IT", "FR"}}},
		Metrics: &client.Metrics{Primary: "cross_sell_rate", Secondary: []string{"net_revenue"},
			Guardrails: []client.Guardrail{{Metric: "refund_rate"}}},
	}
	x, err := admin.CreateExperiment(ctx, def)
	if err != nil {
		t.Fatal(err)
	}
	if x.Status != client.StatusDraft || x.Version != 1 || x.Seed != "pdp-bundle" || !x.Variants[0].Control {
		t.Fatalf("created: %+v", x)
	}
	if _, err := admin.CreateExperiment(ctx, def); !client.IsCode(err, client.CodeAlreadyExists) {
		t.Fatalf("creating it again: %v, want already_exists", err)
	}
	if _, err := checkout.CreateExperiment(ctx, def); !client.IsCode(err, client.CodeForbidden) {
		t.Fatalf("checkout creating: %v, want forbidden", err)
	}
	if x, err = admin.StartExperiment(ctx, "pdp-bundle", x.Version); err != nil || x.Status != client.StatusRunning {
		t.Fatalf("start: %+v, %v", x, err)
	}
	def.Name = "Renamed"
	if _, err := admin.UpdateExperiment(ctx, "pdp-bundle", def, 1); !client.IsCode(err, client.CodeVersionConflict) {
		t.Fatalf("update from a stale version: %v, want version_conflict", err)
	}
	if x, err = admin.UpdateExperiment(ctx, "pdp-bundle", def, x.Version); err != nil || x.Name != "Renamed" {
		t.Fatalf("update: %+v, %v", x, err)
	}
	page, err := analyst.ListExperiments(ctx, client.ListOptions{Status: client.StatusRunning})
	if err != nil || len(page.Experiments) != 1 || page.Experiments[0].Key != "pdp-bundle" {
		t.Fatalf("running experiments: %+v, %v", page, err)
	}

	req := client.AssignRequest{ShopperID: "s-3", Attributes: map[string]any{"country": "IT", "device": "mobile"},
		Experiments: []string{"pdp-bundle"}, Track: client.Bool(false), Context: &client.AssignContext{Products: []string{"sku-shampoo"}}}
	prefetch, err := checkout.Assign(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	req.Track = nil
	ans, err := checkout.Assign(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	a, ok := ans.For("pdp-bundle")
	if !ok || !a.InExperiment || a.Variant == nil || a.Reason != client.ReasonAssigned || !a.ShowsOffer() || a.Phase != 1 {
		t.Fatalf("assignment: %+v", ans)
	}
	if p, _ := prefetch.For("pdp-bundle"); p.Variant == nil || *p.Variant != *a.Variant {
		t.Fatalf("the prefetch (track: false) answered %+v, the tracked ask %+v", p, a)
	}
	out, err := checkout.Assign(ctx, client.AssignRequest{ShopperID: "s-4", Attributes: map[string]any{"country": "US"}})
	if b, _ := out.For("pdp-bundle"); err != nil || b.InExperiment || b.Variant != nil || b.Reason != client.ReasonNotTargeted {
		t.Fatalf("a shopper outside the audience: %+v, %v", out, err)
	}

	if _, err := checkout.Earn(ctx, "s-3", client.EarnRequest{Points: 22, Reason: "tour"}); err != nil {
		t.Fatal(err)
	}
	rc, err := checkout.Redeem(ctx, "s-3", client.RedeemRequest{Points: 20, IdempotencyKey: "o-1002-points", OrderID: "o-1002"})
	if err != nil || rc.Balance != 2 || rc.Transaction.Points != -20 || rc.Transaction.Type != "redeem" {
		t.Fatalf("redeem: %+v, %v", rc, err)
	}
	var seen []string
	for tx, err := range analyst.Transactions(ctx, "s-3") {
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, tx.Type)
	}
	if fmt.Sprint(seen) != "[redeem earn]" {
		t.Fatalf("the ledger newest first: %v", seen)
	}
	p1, err := analyst.ListTransactions(ctx, "s-3", "", 1)
	if err != nil || len(p1.Transactions) != 1 || p1.NextCursor == "" {
		t.Fatalf("a page of one: %+v, %v", p1, err)
	}
	if rc, err = checkout.Reverse(ctx, rc.Transaction.ID, client.ReverseRequest{}); err != nil || rc.Balance != 22 {
		t.Fatalf("reversing the redemption: %+v, %v", rc, err)
	}
	h, err := analyst.ExperimentHistory(ctx, "pdp-bundle")
	if err != nil || len(h) != 3 || h[0].Action != "create" || h[0].KeyName == "" {
		t.Fatalf("history: %+v, %v", h, err)
	}
	if x, err = admin.StopExperiment(ctx, "pdp-bundle", 0); err != nil || x.Status != client.StatusStopped || x.StoppedAt == nil {
		t.Fatalf("stop: %+v, %v", x, err)
	}
	// A learned strategy round-trips; a shop without orders has no complements.
	learned := client.Strategy{Type: "suggestion", Source: client.SourceComplements, MaxProducts: client.Int(2), Timing: "cart"}
	lx, err := admin.CreateExperiment(ctx, client.Definition{Key: "learned", Name: "Learned", Variants: []client.Variant{
		{Key: "control", Name: "None", Weight: 0.5, Strategy: client.Strategy{Type: "none"}},
		{Key: "learned", Name: "Learned", Weight: 0.5, Strategy: learned}}})
	if st := lx.Variants[1].Strategy; err != nil || st.Source != client.SourceComplements || *st.MaxProducts != 2 || st.MinLift == nil || *st.MinLift != 1 {
		t.Fatalf("a learned strategy: %+v, %v", lx, err)
	}
	cs, err := checkout.GetComplements(ctx, "sku-shampoo", client.ComplementsOptions{Limit: 3, MinLift: 1.5})
	// The server builds its first snapshot at start, of no orders.
	if err != nil || cs.SKU != "sku-shampoo" || cs.Complements == nil || len(cs.Complements) != 0 || (cs.Model != nil && cs.Model.Orders != 0) {
		t.Fatalf("complements of a shop without orders: %+v, %v", cs, err)
	}
	if _, err := checkout.GetComplements(ctx, "sku", client.ComplementsOptions{Limit: 51}); !client.IsCode(err, client.CodeInvalidRequest) {
		t.Fatalf("complements with limit 51: %v, want invalid_request", err)
	}
	r, err := analyst.Ready(ctx)
	if err != nil || r.Status != "ready" {
		t.Fatalf("ready: %+v, %v", r, err)
	}
}
