package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/pgcluster"
	"github.com/xsell/xsell/internal/servertest"
)

const devAdmin, devCheckout = "Bearer dev-admin", "Bearer dev-checkout"

func call(t *testing.T, method, url, auth, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", auth)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

const twoArms = `{"key": "%s", "name": "e2e", "variants": [
	{"key": "control", "name": "C", "weight": 0.5, "strategy": {"type": "none"}},
	{"key": "bundle", "name": "B", "weight": 0.5, "strategy": {"type": "bundle", "products": ["sku-2"], "discount_percent": 10, "timing": "cart"}}]}`

func startExperiment(t *testing.T, base, key string) {
	t.Helper()
	if st, m := call(t, "POST", base+"/v1/experiments", devAdmin, fmt.Sprintf(twoArms, key)); st != 201 {
		t.Fatalf("create: %d %v", st, m)
	}
	if st, m := call(t, "POST", base+"/v1/experiments/"+key+"/start", devAdmin, ""); st != 200 {
		t.Fatalf("start: %d %v", st, m)
	}
}

// variantOf asks server base for the shopper's variant in experiment key ("" when none).
func variantOf(t *testing.T, base, key, shopper string) (string, string) {
	t.Helper()
	st, m := call(t, "POST", base+"/v1/assign", devCheckout, `{"shopper_id": "`+shopper+`", "experiments": ["`+key+`"]}`)
	if st != 200 {
		t.Fatalf("assign: %d %v", st, m)
	}
	a := m["assignments"].([]any)[0].(map[string]any)
	v, _ := a["variant"].(string)
	return v, a["reason"].(string)
}

// waitVariant polls server base until the experiment answers for the shopper, or fails at the
// deadline; it returns how long that took.
func waitVariant(t *testing.T, base, key, shopper string, within time.Duration) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		if v, _ := variantOf(t, base, key, shopper); v != "" {
			return v, time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("server %s did not see experiment %s within %s", base, key, within)
		}
	}
}

func TestSameVariantAcrossProcessesAndRestarts(t *testing.T) {
	url := dbtest.URL(t)
	a := servertest.Start(t, url)
	b := servertest.Start(t, url)
	startExperiment(t, a.URL, "sticky")
	// Server B learns of the change through LISTEN/NOTIFY: well before its backstop reload
	// (XSELL_CACHE_RELOAD, 30 s), which is all this can assert without timing the machine;
	// the delay itself is logged.
	_, took := waitVariant(t, b.URL, "sticky", "probe", 15*time.Second)
	t.Logf("server B saw the new experiment after %s", took)
	shoppers := make([]string, 50)
	first := map[string]string{}
	for i := range shoppers {
		shoppers[i] = fmt.Sprintf("shopper-%d", i)
		va, _ := variantOf(t, a.URL, "sticky", shoppers[i])
		vb, _ := variantOf(t, b.URL, "sticky", shoppers[i])
		if va != vb || va == "" {
			t.Fatalf("%s: server A says %q, server B %q", shoppers[i], va, vb)
		}
		first[shoppers[i]] = va
	}
	a.Kill()
	restarted := servertest.StartAt(t, a.Addr, url)
	for _, s := range shoppers {
		if v, _ := variantOf(t, restarted.URL, "sticky", s); v != first[s] {
			t.Fatalf("%s: %q after restart, %q before", s, v, first[s])
		}
	}
}

func TestChangeOnOneServerReachesAnotherWithinASecond(t *testing.T) {
	url := dbtest.URL(t)
	a := servertest.Start(t, url)
	b := servertest.Start(t, url)
	startExperiment(t, a.URL, "paused-later")
	waitVariant(t, b.URL, "paused-later", "s-1", 5*time.Second)
	if st, m := call(t, "POST", a.URL+"/v1/experiments/paused-later/pause", devAdmin, ""); st != 200 {
		t.Fatalf("pause: %d %v", st, m)
	}
	start := time.Now()
	for {
		if _, reason := variantOf(t, b.URL, "paused-later", "s-1"); reason == "not_running" {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("server B still assigns a paused experiment after 5s")
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("server B saw the pause after %s, want within 1s", d)
	}
}

func TestAssignmentContinuesWhileTheDatabaseIsDown(t *testing.T) {
	dir, err := os.MkdirTemp("", "xsell-down-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := pgcluster.Open(pgcluster.Options{Dir: dir, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := cluster.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Remove() })

	srv := servertest.Start(t, cluster.URL())
	startExperiment(t, srv.URL, "resilient")
	want, _ := waitVariant(t, srv.URL, "resilient", "s-1", 5*time.Second)

	if err := cluster.Stop(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		v, reason := variantOf(t, srv.URL, "resilient", "s-1")
		if v != want || reason != "assigned" {
			t.Fatalf("call %d with the database down: %q %s, want %q", i, v, reason, want)
		}
	}
	// A shopper first seen while the database is down is still recorded once it is back.
	downVariant, _ := variantOf(t, srv.URL, "resilient", "seen-while-down")
	st, ready := call(t, "GET", srv.URL+"/readyz", "", "")
	if st != 503 || ready["status"] != "degraded" {
		t.Fatalf("readyz with the database down: %d %v, want 503 degraded", st, ready)
	}

	if err := cluster.Start(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := sqlx.Open("postgres", cluster.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(15 * time.Second)
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		var variant string
		err := db.Get(&variant, `SELECT variant FROM exposures WHERE experiment_key = 'resilient' AND shopper_id = 'seen-while-down'`)
		if err == nil {
			if variant != downVariant {
				t.Fatalf("recorded variant %s, answered %s", variant, downVariant)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the exposure from while the database was down never arrived: %v", err)
		}
		<-poll.C
	}
}
