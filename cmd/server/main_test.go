package main

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/servertest"
)

func TestConfigErrorsAreOneClearLine(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"XSELL_ADDR": "8080"}, `XSELL_ADDR="8080"`},
		{map[string]string{"XSELL_LOG_LEVEL": "loud"}, `XSELL_LOG_LEVEL="loud"`},
		{map[string]string{"XSELL_API_KEYS": "root:x"}, `unknown role "root"`},
		{map[string]string{"XSELL_MAX_BODY_BYTES": "lots"}, `XSELL_MAX_BODY_BYTES="lots"`},
		{map[string]string{"XSELL_TRUSTED_PROXIES": "proxy.local"}, `XSELL_TRUSTED_PROXIES`},
		{map[string]string{"XSELL_SHUTDOWN_GRACE": "-1s"}, `XSELL_SHUTDOWN_GRACE`},
		{map[string]string{"XSELL_ADDR": "0.0.0.0:8080"}, `development keys are refused`},
		{map[string]string{"XSELL_LOYALTY_JOBS": "sometimes"}, `XSELL_LOYALTY_JOBS="sometimes": want on or off`},
	}
	for _, tc := range cases {
		_, err := loadConfig(func(k string) string { return tc.env[k] })
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("env %v: error %v, want one line mentioning %s", tc.env, err, tc.want)
		}
	}
	c, err := loadConfig(func(k string) string {
		return map[string]string{"XSELL_ADDR": "0.0.0.0:9000", "XSELL_API_KEYS": "admin:s"}[k]
	})
	if err != nil || c.DevKeys || c.MaxBodyBytes != 1<<20 || c.Addr != "0.0.0.0:9000" || !c.LoyaltyJobs {
		t.Fatalf("config = %+v, %v", c, err)
	}
}

// TestREADMEListsEveryVariable keeps the README's configuration table and the variables the
// server reads in step.
func TestREADMEListsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range envVars {
		row := "| `" + v.name + "` | "
		if v.def != "" {
			row += "`" + v.def + "` |"
		}
		if !strings.Contains(string(readme), row) {
			t.Errorf("README's configuration table has no row starting %q", row)
		}
	}
}

func TestServerProcessStartsAndStopsGracefully(t *testing.T) {
	url := dbtest.URL(t)
	// Two servers starting at once against one database: the advisory lock serialises their
	// migrations, and both come up.
	a := servertest.Start(t, url)
	b := servertest.Start(t, url)
	for _, p := range []*servertest.Process{a, b} {
		resp, err := http.Get(p.URL + "/readyz")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("readyz: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	if err := a.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(15 * time.Second); err != nil {
		t.Fatalf("server did not exit cleanly on SIGTERM: %v\n%s", err, a.Output())
	}
}

func TestMigrateCommand(t *testing.T) {
	cmd := exec.Command(servertest.Binary(t), "migrate")
	cmd.Env = append(cmd.Environ(), "DATABASE_URL="+dbtest.URL(t))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("server migrate: %v\n%s", err, out)
	}
	cmd = exec.Command(servertest.Binary(t), "frobnicate")
	cmd.Env = append(cmd.Environ(), "DATABASE_URL=postgres://nowhere")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: %v %s", err, out)
	}
}
