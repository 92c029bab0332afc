package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/xsell/xsell/internal/complements"
	"github.com/xsell/xsell/internal/httpapi"
)

// config is the server's environment, read once at start.
type config struct {
	DatabaseURL    string
	Addr           string
	APIKeys        []httpapi.APIKey
	DevKeys        bool
	RateLimits     httpapi.RateLimits
	MetricsKey     string
	HTTP           httpapi.ServeConfig // timeouts, TLS and shutdown grace of the listener
	LogLevel       slog.Level
	MaxBodyBytes   int64
	TrustedProxies []string
	DataDir        string
	ShutdownGrace  time.Duration
	DBMaxConns     int
	CacheReload    time.Duration
	LoyaltyJobs    bool // this instance credits orders, expires points and charges order discounts to offer budgets on timers
	// ComplementsRefresh is how old the complements model may grow before this instance
	// rebuilds it (one instance of the fleet does, under a lock); negative: never on a
	// schedule.
	ComplementsRefresh time.Duration
	Rollups            bool // this instance keeps the report rollups
	BanditUpdates      bool // this instance takes part in recomputing bandits' weights
	StickyLimit        int  // bandit shoppers whose first variant this instance remembers
	HeapFloorMB        int  // the garbage collector's heap goal is at least this (0: none)

	StatementTimeout time.Duration // bound on each statement of the server's pool
	RequestTimeout   time.Duration // deadline of each request
	ResultsRefresh   time.Duration // how old running experiments' results may get in the console
	ConsoleSession   time.Duration // how long a console sign-in lasts

	ExposureQueue   int     // assignment requests whose exposures may wait in memory to be staged
	MergeShare      float64 // the most of the time merging staged exposures may take under load
	AssignLogSample int     // 1 in this many successful /v1/assign lines is logged
}

// envVar documents one variable: the README's configuration table mirrors this list.
type envVar struct {
	name, def string
	parse     func(c *config, v string) error
}

// secretVars never have their values shown in an error.
var secretVars = map[string]bool{"DATABASE_URL": true, "XSELL_API_KEYS": true, "XSELL_METRICS_KEY": true}

var envVars = []envVar{
	{"DATABASE_URL", "", func(c *config, v string) error { c.DatabaseURL = v; return nil }},
	{"XSELL_ADDR", "127.0.0.1:8080", func(c *config, v string) error {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("want host:port, %v", err)
		}
		c.Addr = v
		return nil
	}},
	{"XSELL_API_KEYS", "", func(c *config, v string) error {
		if v == "" {
			c.DevKeys, c.APIKeys = true, httpapi.DevKeys()
			return nil
		}
		keys, err := httpapi.ParseAPIKeys(v)
		c.APIKeys = keys
		return err
	}},
	{"XSELL_RATE_LIMIT", httpapi.DefaultRateLimits, func(c *config, v string) error {
		limits, err := httpapi.ParseRateLimits(v)
		c.RateLimits = limits
		return err
	}},
	{"XSELL_METRICS_KEY", "", func(c *config, v string) error {
		if n := utf8.RuneCountInString(v); v != "" && n < httpapi.MinSecretLength {
			return fmt.Errorf("the key has %d characters, want at least %d", n, httpapi.MinSecretLength)
		}
		c.MetricsKey = v
		return nil
	}},
	{"XSELL_READ_HEADER_TIMEOUT", httpapi.DefaultServeConfig.ReadHeaderTimeout.String(), durationVar(func(c *config) *time.Duration { return &c.HTTP.ReadHeaderTimeout })},
	{"XSELL_READ_TIMEOUT", httpapi.DefaultServeConfig.ReadTimeout.String(), durationVar(func(c *config) *time.Duration { return &c.HTTP.ReadTimeout })},
	{"XSELL_WRITE_TIMEOUT", httpapi.DefaultServeConfig.WriteTimeout.String(), durationVar(func(c *config) *time.Duration { return &c.HTTP.WriteTimeout })},
	{"XSELL_IDLE_TIMEOUT", httpapi.DefaultServeConfig.IdleTimeout.String(), durationVar(func(c *config) *time.Duration { return &c.HTTP.IdleTimeout })},
	{"XSELL_TLS_CERT", "", func(c *config, v string) error { c.HTTP.TLSCert = v; return nil }},
	{"XSELL_TLS_KEY", "", func(c *config, v string) error { c.HTTP.TLSKey = v; return nil }},
	{"XSELL_LOG_LEVEL", "info", func(c *config, v string) error {
		return c.LogLevel.UnmarshalText([]byte(v))
	}},
	{"XSELL_MAX_BODY_BYTES", "1048576", func(c *config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1024 {
			return fmt.Errorf("want a whole number of bytes ≥ 1024")
		}
		c.MaxBodyBytes = n
		return nil
	}},
	{"XSELL_TRUSTED_PROXIES", "", func(c *config, v string) error {
		c.TrustedProxies = nil
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			if net.ParseIP(p) == nil {
				if _, _, err := net.ParseCIDR(p); err != nil {
					return fmt.Errorf("%q is neither an IP address nor a CIDR range", p)
				}
			}
			c.TrustedProxies = append(c.TrustedProxies, p)
		}
		return nil
	}},
	{"XSELL_DATA_DIR", ".xsell", func(c *config, v string) error { c.DataDir = v; return nil }},
	{"XSELL_SHUTDOWN_GRACE", "30s", durationVar(func(c *config) *time.Duration { return &c.ShutdownGrace })},
	{"XSELL_CACHE_RELOAD", "30s", func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 100*time.Millisecond {
			return fmt.Errorf("want a duration of at least 100ms, such as 30s")
		}
		c.CacheReload = d
		return nil
	}},
	{"XSELL_LOYALTY_JOBS", "on", onOff(func(c *config) *bool { return &c.LoyaltyJobs })},
	{"XSELL_COMPLEMENTS_REFRESH", complements.DefaultRefresh.String(), func(c *config, v string) error {
		if v == "off" {
			c.ComplementsRefresh = -1
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute {
			return fmt.Errorf("want a duration of at least 1m, such as 1h, or off")
		}
		c.ComplementsRefresh = d
		return nil
	}},
	{"XSELL_ANALYSIS_ROLLUPS", "on", onOff(func(c *config) *bool { return &c.Rollups })},
	{"XSELL_RESULTS_REFRESH", "1h", func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Second {
			return fmt.Errorf("want a duration of at least 10s, such as 1h")
		}
		c.ResultsRefresh = d
		return nil
	}},
	{"XSELL_CONSOLE_SESSION", "12h", func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute || d > 30*24*time.Hour {
			return fmt.Errorf("want a duration from 1m to 720h, such as 12h")
		}
		c.ConsoleSession = d
		return nil
	}},
	{"XSELL_BANDIT_UPDATES", "on", onOff(func(c *config) *bool { return &c.BanditUpdates })},
	{"XSELL_STICKY_LIMIT", "2000000", atLeast(1000, func(c *config) *int { return &c.StickyLimit })},
	{"XSELL_HEAP_FLOOR_MB", "384", atLeast(0, func(c *config) *int { return &c.HeapFloorMB })},
	{"XSELL_DB_MAX_CONNS", "20", atLeast(2, func(c *config) *int { return &c.DBMaxConns })},
	{"XSELL_DB_STATEMENT_TIMEOUT", "5s", durationVar(func(c *config) *time.Duration { return &c.StatementTimeout })},
	{"XSELL_REQUEST_TIMEOUT", "10s", durationVar(func(c *config) *time.Duration { return &c.RequestTimeout })},
}

// The exposure recorder's and the access log's variables (docs/assignment.md).
func init() {
	envVars = append(envVars,
		envVar{"XSELL_EXPOSURE_QUEUE", "50000", atLeast(1, func(c *config) *int { return &c.ExposureQueue })},
		envVar{"XSELL_EXPOSURE_MERGE_SHARE", "0.25", func(c *config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f <= 0 || f > 1 {
				return fmt.Errorf("want a share of the time above 0 and at most 1, such as 0.25")
			}
			c.MergeShare = f
			return nil
		}},
		envVar{"XSELL_ASSIGN_LOG_SAMPLE", "100", atLeast(1, func(c *config) *int { return &c.AssignLogSample })},
	)
}

// durationVar parses a positive duration into the field that at returns.
func durationVar(at func(*config) *time.Duration) func(*config, string) error {
	return func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration such as 30s")
		}
		*at(c) = d
		return nil
	}
}

// atLeast parses a whole number of at least least into the field that at returns.
func atLeast(least int, at func(*config) *int) func(*config, string) error {
	return func(c *config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < least {
			return fmt.Errorf("want a whole number ≥ %d", least)
		}
		*at(c) = n
		return nil
	}
}

// onOff parses "on" or "off" into the switch that at returns.
func onOff(at func(*config) *bool) func(*config, string) error {
	return func(c *config, v string) error {
		switch v {
		case "on", "off":
			*at(c) = v == "on"
			return nil
		}
		return fmt.Errorf("want on or off")
	}
}

// loadConfig reads the environment; the error names the variable and what it wants, in one line.
func loadConfig(getenv func(string) string) (config, error) {
	var c config
	for _, v := range envVars {
		val, set := getenv(v.name), true
		if val == "" {
			val, set = v.def, false
		}
		if err := v.parse(&c, val); err != nil {
			switch {
			case !set:
				return c, fmt.Errorf("default of %s: %v", v.name, err)
			case secretVars[v.name]:
				return c, fmt.Errorf("%s: %v", v.name, err)
			}
			return c, fmt.Errorf("%s=%q: %v", v.name, val, err)
		}
	}
	c.HTTP.ShutdownGrace = c.ShutdownGrace
	if c.DevKeys && getenv("XSELL_RATE_LIMIT") == "" {
		// The development keys serve one laptop, where the simulator assigns back-dated
		// shoppers by the thousand through the admin key: the default limits are for keys
		// that could leak.
		c.RateLimits = nil
	}
	if c.DevKeys && !loopback(c.Addr) {
		return c, fmt.Errorf("XSELL_API_KEYS is unset, and the development keys are refused on the non-loopback address XSELL_ADDR=%q: set XSELL_API_KEYS", c.Addr)
	}
	if err := checkTLS(c.HTTP.TLSCert, c.HTTP.TLSKey); err != nil {
		return c, err
	}
	return c, nil
}

// checkTLS fails at start, in one line, on a certificate and key that will not serve.
func checkTLS(cert, key string) error {
	if (cert == "") != (key == "") {
		return fmt.Errorf("XSELL_TLS_CERT and XSELL_TLS_KEY go together: set both for HTTPS, or neither")
	}
	if cert == "" {
		return nil
	}
	if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
		return fmt.Errorf("XSELL_TLS_CERT=%q, XSELL_TLS_KEY=%q: %s", cert, key, strings.ReplaceAll(err.Error(), "\n", " "))
	}
	return nil
}

// loopback reports whether addr listens only on this machine.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
