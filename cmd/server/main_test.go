package main

import (
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/pgcluster"
	"github.com/xsell/xsell/internal/servertest"
	"github.com/xsell/xsell/migrations"
)

// TestTwoServersOnAFreshDatabaseAndAGracefulStop: two servers started together on an empty
// database both come up with the schema applied once (the advisory lock serialises their
// migrations); SIGTERM stops one with exit status 0 after it has written the exposures it
// queued, while the other keeps answering.
func TestTwoServersOnAFreshDatabaseAndAGracefulStop(t *testing.T) {
	url, db := emptyDatabase(t)
	a := servertest.Launch(t, freeAddr(t), url)
	b := servertest.Launch(t, freeAddr(t), url)
	a.WaitReady(t)
	b.WaitReady(t)

	var applied []struct {
		Version int64 `db:"version_id"`
		Times   int   `db:"times"`
	}
	if err := db.Select(&applied, `SELECT version_id, count(*) AS times FROM goose_db_version
		WHERE version_id > 0 GROUP BY version_id ORDER BY version_id`); err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != len(files) {
		t.Fatalf("%d migrations recorded, the binary has %d: %+v", len(applied), len(files), applied)
	}
	for _, m := range applied {
		if m.Times != 1 {
			t.Errorf("migration %d recorded %d times", m.Version, m.Times)
		}
	}

	startExperiment(t, a.URL, "graceful")
	waitVariant(t, a.URL, "graceful", "probe", 5*time.Second)
	want := map[string]string{}
	for i := range 20 {
		shopper := fmt.Sprintf("last-%d", i)
		want[shopper], _ = variantOf(t, a.URL, "graceful", shopper)
	}
	if err := a.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(30 * time.Second); err != nil {
		t.Fatalf("server did not exit cleanly on SIGTERM: %v\n%s", err, a.Output())
	}
	var got []struct {
		Shopper string `db:"shopper_id"`
		Variant string `db:"variant"`
	}
	if err := db.Select(&got, `SELECT shopper_id, variant FROM exposures
		WHERE experiment_key = 'graceful' AND shopper_id LIKE 'last-%'`); err != nil {
		t.Fatal(err)
	}
	for _, e := range got {
		if want[e.Shopper] != e.Variant {
			t.Errorf("%s: stored variant %q, answered %q", e.Shopper, e.Variant, want[e.Shopper])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d of the %d exposures answered before SIGTERM were stored", len(got), len(want))
	}
	if resp, err := http.Get(a.URL + "/readyz"); err == nil {
		resp.Body.Close()
		t.Fatalf("the stopped server still answers: %s", resp.Status)
	}
	if st, m := call(t, "GET", b.URL+"/readyz", "", ""); st != 200 {
		t.Fatalf("the other server after the first stopped: %d %v", st, m)
	}
}

// emptyDatabase creates a database with no schema on DATABASE_URL's server, dropped when the
// test ends, and returns its URL and a pool to it.
func emptyDatabase(t *testing.T) (string, *sqlx.DB) {
	t.Helper()
	admin, err := sqlx.Open("postgres", os.Getenv("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	name := fmt.Sprintf("xsell_empty_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("CREATE DATABASE (is DATABASE_URL set? run make test): %v", err)
	}
	u, err := url.Parse(os.Getenv("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	db, err := sqlx.Open("postgres", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		if _, err := admin.Exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("dropping %s: %v", name, err)
		}
	})
	return u.String(), db
}

func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

func TestMigrateCommand(t *testing.T) {
	cmd := servertest.Command(t, []string{"DATABASE_URL=" + dbtest.URL(t)}, "migrate")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("server migrate: %v\n%s", err, out)
	}
	cmd = servertest.Command(t, []string{"DATABASE_URL=postgres://nowhere"}, "frobnicate")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: %v %s", err, out)
	}
}
