// Package app is xsell's one wiring function: it builds every service on one database pool
// and the HTTP server over them, then runs the server and the background components together
// and stops them in order, so that cmd/server and every test fixture run the same server.
//
// The lifecycle rule: a background component is a Run(ctx) error that returns once ctx has
// ended and everything it started has stopped; New starts nothing, Run starts everything and
// returns only when all of it has stopped.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/bandit"
	"github.com/xsell/xsell/internal/complements"
	"github.com/xsell/xsell/internal/console"
	"github.com/xsell/xsell/internal/database"
	"github.com/xsell/xsell/internal/events"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/exposures"
	"github.com/xsell/xsell/internal/httpapi"
	"github.com/xsell/xsell/internal/loyalty"
	"github.com/xsell/xsell/internal/offers"
	"github.com/xsell/xsell/internal/results"
)

// Config is everything the server is configured with; cmd/server reads it from the
// environment, tests write it. Zero values take the defaults.
type Config struct {
	DatabaseURL string
	// DBMaxConns bounds the pool (20).
	DBMaxConns int
	// StatementTimeout bounds every statement of the pool (5 s); RequestTimeout every request
	// (10 s), and with it the events committer's writes.
	StatementTimeout time.Duration
	RequestTimeout   time.Duration
	// HTTP is the HTTP layer's own settings; its RequestTimeout is RequestTimeout.
	HTTP httpapi.Config
	// Serve is the listener's: timeouts, TLS, and the shutdown grace that in-flight requests,
	// and then queued exposures, have to finish once Run's context ends
	// (httpapi.DefaultServeConfig's where zero).
	Serve httpapi.ServeConfig
	// CacheReload is the assignment cache's backstop reload period (30 s), and the
	// complements cache's.
	CacheReload time.Duration
	// ComplementsRefresh is how old the complements model may grow before this server
	// rebuilds it (complements.DefaultRefresh); negative: only on request.
	ComplementsRefresh time.Duration
	// CreditEvery and ExpireEvery are the loyalty jobs' periods; 0 turns a job off (tests
	// run them by hand).
	CreditEvery, ExpireEvery time.Duration
	// RollupEvery is the report rollup job's pause once caught up; 0 turns it off (tests run
	// it by hand).
	RollupEvery time.Duration
	// BanditTick is how often due bandit updates are looked for (bandit.DefaultTick); negative
	// turns the updater off (tests run updates by hand).
	BanditTick time.Duration
	// StickyLimit bounds the bandit shoppers whose first variant this server remembers
	// (experiments.DefaultStickyLimit).
	StickyLimit int
	// Exposures sizes the exposure recorder; its DrainTimeout is the shutdown grace when zero,
	// and its Quarantine the app's.
	Exposures exposures.Config
	// OfferFeed times the sharing of frequency counts between servers.
	OfferFeed offers.FeedConfig
	// SpendEvery is how often order discounts are charged to offer budgets; 0 turns the
	// spender off (tests run it by hand).
	SpendEvery time.Duration
	// Events tunes the group committer; its Clock, Log, Registerer and WriteTimeout are set here.
	Events events.Options
	// ResultsRefresh is how old a running experiment's results may get before the console's
	// scheduler computes them again; 0 turns the scheduler's timer off (tests run it by hand,
	// as if every hour).
	ResultsRefresh time.Duration
	// ConsoleSession is how long a console sign-in lasts (console.DefaultSessionTTL).
	ConsoleSession time.Duration
	// Clock is every service's time source (time.Now); tests move it by hand.
	Clock func() time.Time
	Log   *slog.Logger
}

func (c *Config) defaults() {
	if c.DBMaxConns <= 0 {
		c.DBMaxConns = 20
	}
	if c.StatementTimeout <= 0 {
		c.StatementTimeout = 5 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.Serve.ShutdownGrace <= 0 {
		c.Serve.ShutdownGrace = httpapi.DefaultServeConfig.ShutdownGrace
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	switch {
	case c.ComplementsRefresh == 0:
		c.ComplementsRefresh = complements.DefaultRefresh
	case c.ComplementsRefresh < 0:
		c.ComplementsRefresh = 0 // the refresher's "off"
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// App is the server: its services, its HTTP handler and its background components.
type App struct {
	DB          *sqlx.DB
	Registry    *prometheus.Registry
	Quarantine  *database.Quarantine
	Experiments *experiments.Store
	Assignments *experiments.Cache
	Exposures   *exposures.Recorder
	Events      *events.Service
	Loyalty     *loyalty.Service
	Offers      *offers.Store   // the global cap and the holdout
	Budgets     *offers.Budgets // offer budgets, charged where money moves
	Counter     *offers.Counter // per-shopper opportunity counts and closed offers
	OfferFeed   *offers.Feed    // shares the counter with the other servers
	Spender     *offers.Spender // charges order discounts to offer budgets
	// Complements is the complements model in memory; ComplementsBuilds builds it, on a
	// schedule and on request.
	Complements       *complements.Cache
	ComplementsBuilds *complements.Refresher
	Bandits           *bandit.Updater
	HTTP              *httpapi.Server
	// Results computes the console's report snapshots, on AnalysisDB: a small pool whose
	// statements may run as long as a report over a big experiment takes.
	Results    *results.Scheduler
	AnalysisDB *sqlx.DB
	Console    *console.Console
	// Rollups keeps the figures reports read (internal/analysis, rollup.go).
	Rollups *analysis.Rollups

	cfg        Config
	log        *slog.Logger
	background []component
	serving    chan struct{}
}

// component is a background component: Run(ctx) until ctx ends, then stop everything it
// started and return.
type component struct {
	name string
	run  func(ctx context.Context) error
}

// New connects to the database and builds the services and the HTTP server; it starts
// nothing. Close releases what it opened.
func New(ctx context.Context, cfg Config) (*App, error) {
	cfg.defaults()
	// Library globals are the wiring's to set, not an init's.
	httpapi.ConfigureLibraries()
	db, err := database.Open(ctx, cfg.DatabaseURL, database.Options{
		MaxConns: cfg.DBMaxConns, StatementTimeout: cfg.StatementTimeout,
	})
	if err != nil {
		return nil, err
	}
	a := &App{DB: db, Registry: prometheus.NewRegistry(), cfg: cfg, log: cfg.Log, serving: make(chan struct{})}
	a.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
		collectors.NewDBStatsCollector(db.DB, "xsell"),
		buildInfo(),
	)
	a.Quarantine = database.NewQuarantine(a.Registry, cfg.Log)
	a.Experiments = experiments.NewStore(db, cfg.Clock)
	a.Assignments = experiments.NewCache(a.Experiments, cfg.DatabaseURL, cfg.CacheReload, cfg.Log)
	a.Offers, a.Budgets = offers.NewStore(db, cfg.Clock), offers.NewBudgets(db, cfg.Clock)
	a.Counter = offers.NewCounter(0)
	a.OfferFeed = offers.NewFeed(db, a.Counter, cfg.OfferFeed, offers.NewMetrics(a.Registry), cfg.Log)
	offers.RegisterBudgets(a.Registry, a.Budgets)
	a.Assignments.UseOffers(a.Offers, a.Counter)
	exp := cfg.Exposures
	if exp.DrainTimeout <= 0 {
		exp.DrainTimeout = cfg.Serve.ShutdownGrace
	}
	exp.Quarantine = a.Quarantine
	a.Exposures = exposures.New(db, exp, a.Registry, cfg.Log)
	a.Assignments.LimitSticky(cfg.StickyLimit)
	evo := cfg.Events
	evo.Clock, evo.Log, evo.Registerer, evo.WriteTimeout = cfg.Clock, cfg.Log, a.Registry, cfg.RequestTimeout
	a.Events = events.NewService(db, evo)
	a.Loyalty = loyalty.New(db, loyalty.Options{Clock: cfg.Clock, Quarantine: a.Quarantine, Budgets: a.Budgets})
	a.Complements = complements.NewCache(db, cfg.DatabaseURL, cfg.CacheReload, cfg.Log)
	a.ComplementsBuilds = complements.NewRefresher(complements.NewBuilder(db, cfg.Clock), cfg.ComplementsRefresh, cfg.Log)
	if a.AnalysisDB, err = database.Open(ctx, cfg.DatabaseURL, database.Options{MaxConns: 2, StatementTimeout: AnalysisStatementTimeout}); err != nil {
		db.Close()
		return nil, err
	}
	a.Rollups = analysis.NewRollups(db, analysis.RollupOptions{Every: cfg.RollupEvery, Log: cfg.Log,
		Quarantine: a.Quarantine, Registerer: a.Registry})
	a.Results = results.NewScheduler(db, a.AnalysisDB, results.Config{Refresh: cfg.ResultsRefresh, Log: cfg.Log, Clock: cfg.Clock})
	a.Console, err = console.New(console.Config{Keys: cfg.HTTP.APIKeys, SessionTTL: cfg.ConsoleSession, Clock: cfg.Clock}, console.Deps{
		DB: db, Log: cfg.Log, Experiments: a.Experiments, Assignments: a.Assignments, Loyalty: a.Loyalty, Results: a.Results,
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.Bandits = bandit.NewUpdater(db, a.AnalysisDB, a.Experiments, bandit.Options{Tick: cfg.BanditTick, Clock: cfg.Clock, Log: cfg.Log})

	httpCfg := cfg.HTTP
	httpCfg.RequestTimeout = cfg.RequestTimeout
	a.HTTP, err = httpapi.New(httpCfg, httpapi.Deps{
		DB: db, Log: cfg.Log, Registry: a.Registry,
		Experiments: a.Experiments, Assignments: a.Assignments, Exposures: a.Exposures,
		Events: a.Events, Loyalty: a.Loyalty, Console: a.Console, Offers: a.Offers, Budgets: a.Budgets,
		Bandits: a.Bandits, Complements: a.Complements, ComplementsBuilds: a.ComplementsBuilds,
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.background = []component{
		{"assignment cache", a.Assignments.Run},
		{"exposure recorder", a.Exposures.Run},
		{"events committer", a.Events.Run},
		{"loyalty jobs", loyalty.Jobs{Service: a.Loyalty, CreditEvery: cfg.CreditEvery, ExpireEvery: cfg.ExpireEvery, Log: cfg.Log}.Run},
		{"offer feed", a.OfferFeed.Run},
		{"complements cache", a.Complements.Run},
		{"complements builds", a.ComplementsBuilds.Run},
	}
	a.Spender = offers.NewSpender(db, a.Budgets, a.Quarantine, cfg.SpendEvery, cfg.Log)
	if cfg.SpendEvery > 0 {
		a.background = append(a.background, component{"offer spender", a.Spender.Run})
	}
	if cfg.ResultsRefresh > 0 {
		a.background = append(a.background, component{"results scheduler", a.Results.Run})
	}
	if cfg.RollupEvery > 0 {
		a.background = append(a.background, component{"analysis rollups", a.Rollups.Run})
	}
	if cfg.BanditTick >= 0 {
		a.background = append(a.background, component{"bandit updater", a.Bandits.Run})
	}
	return a, nil
}

// Run serves the API on l until ctx ends or a background component fails. It first loads the
// assignment cache and makes this month's event partitions (failing when it cannot), then
// starts the background components and the HTTP server. On the way out the HTTP server stops
// accepting and lets in-flight requests finish (up to ShutdownGrace); only then do the
// background components stop, so that every batch a request handed them is committed or
// flushed. Run returns once all of them have returned: nothing it started outlives it.
func (a *App) Run(ctx context.Context, l net.Listener) error {
	if err := a.start(ctx); err != nil {
		l.Close()
		return err
	}
	// The background outlives ctx until the HTTP server has drained; its failure stops the
	// HTTP server.
	front, stopFront := context.WithCancel(ctx)
	defer stopFront()
	back, stopBack := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBack()
	var bg errgroup.Group
	for _, c := range a.background {
		bg.Go(func() error {
			err := c.run(back)
			if err != nil {
				stopFront()
				return fmt.Errorf("%s: %w", c.name, err)
			}
			return nil
		})
	}
	a.log.Info("listening", "addr", l.Addr().String(), "tls", a.cfg.Serve.TLSCert != "")
	close(a.serving)
	serveErr := httpapi.Serve(front, l, a.HTTP.Handler(), a.cfg.Serve)
	a.log.Info("stopped accepting; in-flight requests finished")
	stopBack()
	bgErr := bg.Wait()
	a.log.Info("background work stopped; queued exposures flushed")
	if errors.Is(serveErr, context.Canceled) {
		serveErr = nil
	}
	return errors.Join(serveErr, bgErr)
}

// Serving is closed once Run has started everything and serves requests.
func (a *App) Serving() <-chan struct{} { return a.serving }

// start loads what the server cannot answer without.
func (a *App) start(ctx context.Context) error {
	if err := a.Assignments.Load(ctx); err != nil {
		return err
	}
	// Before serving, so that a restarted server caps by every count the fleet has written.
	if err := a.OfferFeed.Load(ctx); err != nil {
		return err
	}
	if err := a.Complements.Load(ctx); err != nil {
		return err
	}
	return a.Events.EnsurePartitions(ctx)
}

// AnalysisStatementTimeout bounds each statement of the results scheduler's pool: far above
// what a report takes, but a runaway query still ends.
const AnalysisStatementTimeout = 10 * time.Minute

// Close closes the database pools; call it after Run has returned.
func (a *App) Close() error {
	var err error
	if a.AnalysisDB != nil {
		err = a.AnalysisDB.Close()
	}
	return errors.Join(a.DB.Close(), err)
}

// buildInfo exports the module version and VCS revision the binary was built from.
func buildInfo() prometheus.Collector {
	version, revision := "(devel)", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "xsell_build_info",
		Help:        "The xsell version and revision of this binary; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision},
	})
	g.Set(1)
	return g
}
