package pgcluster

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/lib/pq"
)

// open starts a throwaway TCP cluster asked for in dir and removes it when the test ends.
func open(t *testing.T, dir string) *Cluster {
	t.Helper()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(Options{Dir: dir, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Remove(); err != nil {
			t.Errorf("removing the cluster: %v", err)
		}
	})
	return c
}

// ping connects to dsn and runs a query, as any client would.
func ping(dsn string) error {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	var one int
	return db.QueryRow("SELECT 1").Scan(&one)
}

func withoutPassword(dsn string) string {
	u, _ := url.Parse(dsn)
	u.User = url.User(u.User.Username())
	return u.String()
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// TestClusterNeedsItsPassword: the cluster's own URL works; the same URL without the password
// is refused, and its directories and password file are closed to other users.
func TestClusterNeedsItsPassword(t *testing.T) {
	c := open(t, t.TempDir())
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := ping(c.URL()); err != nil {
		t.Fatalf("connecting with the cluster's URL: %v", err)
	}
	err := ping(withoutPassword(c.URL()))
	if err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("connecting without the password: %v, want a password failure", err)
	}
	for path, want := range map[string]os.FileMode{c.Dir: 0o700, c.socketDir(): 0o700, c.passwordFile(): 0o600} {
		if got := mode(t, path); got != want {
			t.Errorf("%s has mode %o, want %o", path, got, want)
		}
	}
}

// TestTrustClusterOfAnOlderVersionGetsAPassword: a cluster made with trust authentication,
// as older versions did, is given a password on its next start and keeps its data.
func TestTrustClusterOfAnOlderVersionGetsAPassword(t *testing.T) {
	c := open(t, t.TempDir())
	if err := c.prepareDirs(); err != nil {
		t.Fatal(err)
	}
	initdb := exec.Command(filepath.Join(c.bin, "initdb"), "-D", c.dataDir(), "-U", superuser,
		"--auth=trust", "--no-sync", "--no-instructions")
	if err := c.run.run(initdb); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := ping(withoutPassword(c.URL())); err == nil {
		t.Fatal("the former trust cluster still lets anyone in without a password")
	}
	if err := ping(c.URL()); err != nil {
		t.Fatalf("connecting with the new password: %v", err)
	}
	// Another Open finds the password again, as analyze does after the server made it.
	again, err := Open(Options{Dir: c.Dir, Port: c.Port})
	if err != nil {
		t.Fatal(err)
	}
	if again.URL() != c.URL() {
		t.Fatalf("a second Open connects with %q, want %q", again.URL(), c.URL())
	}
}

// TestClusterUnderAClosedHome: a cluster asked for inside a directory closed to others (a
// checkout in root's 0700 home) starts and answers; as root, it lives where the postgres user
// can reach it, keyed by the path asked for, and is found there again.
func TestClusterUnderAClosedHome(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(home, "clone", ".xsell")
	c := open(t, want)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := ping(c.URL()); err != nil {
		t.Fatalf("connecting: %v", err)
	}
	wantDir := want
	if c.run.asOther {
		wantDir = relocated(want)
		if !strings.HasPrefix(wantDir, relocationRoot+"/") || !strings.Contains(filepath.Base(wantDir), "clone-xsell-") {
			t.Errorf("relocated to %s, want a readable name under %s", wantDir, relocationRoot)
		}
	}
	if c.Dir != wantDir {
		t.Fatalf("the cluster lives in %s, want %s", c.Dir, wantDir)
	}
	again, err := Open(Options{Dir: want, Port: c.Port})
	if err != nil {
		t.Fatal(err)
	}
	if again.Dir != c.Dir || !again.Running() {
		t.Fatalf("a second Open finds %s (running %v), want the running cluster in %s", again.Dir, again.Running(), c.Dir)
	}
}
