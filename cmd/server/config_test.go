package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/httpapi"
	"github.com/xsell/xsell/internal/servertest"
)

// secret is an API key secret of the length ParseAPIKeys wants.
const secret = "0123456789abcdef0123456789abcdef"

func TestConfigErrorsAreOneClearLine(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.pem")
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"XSELL_ADDR": "8080"}, `XSELL_ADDR="8080"`},
		{map[string]string{"XSELL_LOG_LEVEL": "loud"}, `XSELL_LOG_LEVEL="loud"`},
		{map[string]string{"XSELL_API_KEYS": "root:" + secret}, `unknown role "root"`},
		{map[string]string{"XSELL_API_KEYS": "admin:short-secret"}, `XSELL_API_KEYS: entry 1: the secret has 12 characters, want at least 32`},
		{map[string]string{"XSELL_MAX_BODY_BYTES": "lots"}, `XSELL_MAX_BODY_BYTES="lots"`},
		{map[string]string{"XSELL_TRUSTED_PROXIES": "proxy.local"}, `XSELL_TRUSTED_PROXIES`},
		{map[string]string{"XSELL_SHUTDOWN_GRACE": "-1s"}, `XSELL_SHUTDOWN_GRACE`},
		{map[string]string{"XSELL_ADDR": "0.0.0.0:8080"}, `development keys are refused`},
		{map[string]string{"XSELL_LOYALTY_JOBS": "sometimes"}, `XSELL_LOYALTY_JOBS="sometimes": want on or off`},
		{map[string]string{"XSELL_COMPLEMENTS_REFRESH": "10s"}, `XSELL_COMPLEMENTS_REFRESH="10s": want a duration of at least 1m`},
		{map[string]string{"XSELL_BANDIT_UPDATES": "yes"}, `XSELL_BANDIT_UPDATES="yes": want on or off`},
		{map[string]string{"XSELL_STICKY_LIMIT": "999"}, `XSELL_STICKY_LIMIT="999": want a whole number ≥ 1000`},
		{map[string]string{"XSELL_DB_MAX_CONNS": "many"}, `XSELL_DB_MAX_CONNS="many": want a whole number ≥ 2`},
		{map[string]string{"XSELL_RATE_LIMIT": "admin=lots"}, `XSELL_RATE_LIMIT="admin=lots"`},
		{map[string]string{"XSELL_METRICS_KEY": "short-metrics-key"}, `XSELL_METRICS_KEY: the key has 17 characters, want at least 32`},
		{map[string]string{"XSELL_READ_TIMEOUT": "0s"}, `XSELL_READ_TIMEOUT="0s": want a positive duration`},
		{map[string]string{"XSELL_READ_HEADER_TIMEOUT": "soon"}, `XSELL_READ_HEADER_TIMEOUT="soon"`},
		{map[string]string{"XSELL_WRITE_TIMEOUT": "-5s"}, `XSELL_WRITE_TIMEOUT`},
		{map[string]string{"XSELL_IDLE_TIMEOUT": "1"}, `XSELL_IDLE_TIMEOUT`},
		{map[string]string{"XSELL_TLS_CERT": missing}, `XSELL_TLS_CERT and XSELL_TLS_KEY go together`},
		{map[string]string{"XSELL_TLS_CERT": missing, "XSELL_TLS_KEY": missing}, `XSELL_TLS_CERT="` + missing},
	}
	for _, tc := range cases {
		_, err := loadConfig(func(k string) string { return tc.env[k] })
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("env %v: error %v, want one line mentioning %s", tc.env, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), "short-") || strings.Contains(err.Error(), secret)) {
			t.Errorf("env %v: the error shows a secret: %v", tc.env, err)
		}
	}
}

func TestConfigDefaultsAndValues(t *testing.T) {
	c, err := loadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if !c.DevKeys || c.Addr != "127.0.0.1:8080" || c.MetricsKey != "" || c.HTTP != httpapi.DefaultServeConfig {
		t.Fatalf("defaults: %+v", c)
	}
	if len(c.RateLimits) != 0 {
		t.Fatalf("the development keys are limited by default: %v", c.RateLimits)
	}
	c, err = loadConfig(func(k string) string { return map[string]string{"XSELL_API_KEYS": "admin:" + secret}[k] })
	if err != nil {
		t.Fatal(err)
	}
	if l := c.RateLimits; l[httpapi.RoleCheckout].PerSecond != 0 || l[httpapi.RoleAdmin].PerSecond != 50 || l[httpapi.RoleAnalyst].PerSecond != 20 {
		t.Fatalf("default rate limits %v, want checkout off, admin 50/s, analyst 20/s", l)
	}

	cert, key, _ := servertest.SelfSigned(t, t.TempDir())
	env := map[string]string{
		"XSELL_ADDR": "0.0.0.0:9000", "XSELL_API_KEYS": "admin:" + secret,
		"XSELL_METRICS_KEY": "m" + secret, "XSELL_RATE_LIMIT": "checkout=500:1000",
		"XSELL_READ_TIMEOUT": "3s", "XSELL_WRITE_TIMEOUT": "7s", "XSELL_SHUTDOWN_GRACE": "9s",
		"XSELL_TLS_CERT": cert, "XSELL_TLS_KEY": key,
		"XSELL_BANDIT_UPDATES": "off", "XSELL_STICKY_LIMIT": "5000", "XSELL_DB_MAX_CONNS": "7",
	}
	c, err = loadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.DevKeys || c.MaxBodyBytes != 1<<20 || c.Addr != "0.0.0.0:9000" || !c.LoyaltyJobs || c.MetricsKey != "m"+secret {
		t.Fatalf("config = %+v", c)
	}
	if c.BanditUpdates || c.StickyLimit != 5000 || c.DBMaxConns != 7 {
		t.Fatalf("bandit updates %v, sticky limit %d, connections %d", c.BanditUpdates, c.StickyLimit, c.DBMaxConns)
	}
	if c.HTTP.ReadTimeout != 3*time.Second || c.HTTP.WriteTimeout != 7*time.Second || c.HTTP.ShutdownGrace != 9*time.Second ||
		c.HTTP.ReadHeaderTimeout != httpapi.DefaultServeConfig.ReadHeaderTimeout || c.HTTP.TLSCert != cert || c.HTTP.TLSKey != key {
		t.Fatalf("HTTP config = %+v", c.HTTP)
	}
	if l := c.RateLimits[httpapi.RoleCheckout]; l != (httpapi.RateLimit{PerSecond: 500, Burst: 1000}) || len(c.RateLimits) != 1 {
		t.Fatalf("rate limits = %v", c.RateLimits)
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
