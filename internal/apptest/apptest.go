// Package apptest runs the whole server, through internal/app's wiring, for a test: over a
// fresh migrated database, on a loopback port, stopped and checked when the test ends.
package apptest

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/app"
	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/events"
	"github.com/xsell/xsell/internal/httpapi"
)

// The API keys of every test server, one per role.
const (
	AdminKey    = "a-secret-0123456789abcdef0123456789"
	CheckoutKey = "c-secret-0123456789abcdef0123456789"
	AnalystKey  = "n-secret-0123456789abcdef0123456789"
)

// Options change a test server's configuration.
type Options struct {
	// Now is where the server's clock starts (the wall clock's time when zero); the test
	// moves it with Server.Clock.
	Now time.Time
	// Configure edits the configuration before the server is built.
	Configure func(*app.Config)
	// Proxy puts a TCP proxy between the server and its database, which the test can cut
	// (Server.Proxy) as a stopped database would.
	Proxy bool
	// APIKeys replaces the keys, in XSELL_API_KEYS's form (default: AdminKey, CheckoutKey and
	// AnalystKey, named admin-1, checkout-1 and analyst-1).
	APIKeys string
}

// Server is a test's server.
type Server struct {
	URL   string // http://127.0.0.1:port
	App   *app.App
	DB    *sqlx.DB // the server's pool
	Clock *Clock
	Proxy *Proxy // nil unless Options.Proxy

	listener net.Listener
	stop     func() error
}

// New builds a server over a fresh database without running it: the test may add routes to
// App.HTTP.Engine() before Start.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	if o.APIKeys == "" {
		o.APIKeys = "admin:" + AdminKey + ",checkout:" + CheckoutKey + ",analyst:" + AnalystKey
	}
	keys, err := httpapi.ParseAPIKeys(o.APIKeys)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Clock: NewClock(o.Now)}
	url := dbtest.URL(t)
	if o.Proxy {
		s.Proxy = NewProxy(t, url)
		url = s.Proxy.URL
	}
	cfg := app.Config{
		DatabaseURL: url,
		// Other packages test against the same cluster at the same time: stay well inside
		// its connection limit.
		DBMaxConns: 16,
		HTTP:       httpapi.Config{APIKeys: keys},
		Clock:      s.Clock.Now,
		// This month's and the next's partitions: tests of partitions are internal/events';
		// the seven of a server cost a test half a second of DDL.
		Events: events.Options{MonthsAhead: 1},
	}
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	a, err := app.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.App, s.DB = a, a.DB
	if s.listener, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	s.URL = "http://" + s.listener.Addr().String()
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("the server stopped with %v", err)
		}
		a.Close()
	})
	return s
}

// Start runs a server made by New until the test ends or Stop, and returns once it serves.
func (s *Server) Start(t testing.TB) *Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.App.Run(ctx, s.listener) }()
	var once sync.Once
	var err error
	s.stop = func() error {
		once.Do(func() { cancel(); err = <-errc })
		return err
	}
	select {
	case <-s.App.Serving():
	case err := <-errc:
		errc <- err
		t.Fatalf("the server did not start: %v", err)
	}
	return s
}

// Start is New and Start.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	return New(t, o).Start(t)
}

// Stop stops the server as SIGTERM would and returns what app.Run returned, once it has:
// in-flight requests finished, queued exposures flushed, every background component
// returned. Calling it again returns the same.
func (s *Server) Stop() error {
	if s.stop == nil {
		s.listener.Close()
		return nil
	}
	return s.stop()
}

// Clock is a time source the test moves by hand.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at t, or at the wall clock's time when t is zero.
func NewClock(t time.Time) *Clock {
	if t.IsZero() {
		t = time.Now()
	}
	return &Clock{t: t}
}

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set puts the clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
