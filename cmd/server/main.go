// Command server runs the xsell HTTP API.
//
//	server            serve the API (applies migrations first)
//	server migrate    apply migrations and exit
//	server loyalty expire
//	                  write off loyalty points past their expiry and exit (the server also
//	                  does this on a timer)
//	server complements build
//	                  build a snapshot of the complements model now and exit (the servers
//	                  also do this on a schedule, XSELL_COMPLEMENTS_REFRESH)
//
// Configuration comes from the environment; see the README's table.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/xsell/xsell/internal/complements"
	"github.com/xsell/xsell/internal/events"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/httpapi"
	"github.com/xsell/xsell/internal/loyalty"
	"github.com/xsell/xsell/internal/pgcluster"
	"github.com/xsell/xsell/migrations"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cfg, err := loadConfig(os.Getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	if os.Getenv("GOGC") == "" {
		// Each assignment allocates a few kilobytes that die at once, over a live heap of tens of
		// megabytes: collecting at 4× rather than 2× the live heap cuts GC work by about half,
		// for 15% more requests per second in scripts/bench/assign.sh. GOGC still overrides.
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "serve", "migrate":
	case "loyalty":
		if len(args) != 2 || args[1] != "expire" {
			return fmt.Errorf("unknown command %q (want: server loyalty expire)", strings.Join(args, " "))
		}
	case "complements":
		if len(args) != 2 || args[1] != "build" {
			return fmt.Errorf("unknown command %q (want: server complements build)", strings.Join(args, " "))
		}
	default:
		return fmt.Errorf("unknown command %q (want serve, migrate, loyalty expire or complements build)", cmd)
	}

	db, url, closeDB, err := openDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeDB()

	applied, err := migrations.Up(ctx, db.DB)
	if err != nil {
		return err
	}
	log.Info("migrations applied", "new", applied)
	if cmd == "migrate" {
		return nil
	}
	if cmd == "loyalty" {
		n, err := loyalty.New(db, nil).ExpireDue(ctx)
		log.Info("loyalty: expired lots", "lots", n)
		return err
	}
	if cmd == "complements" {
		return buildComplements(ctx, db, log)
	}
	return serve(ctx, cfg, db, url, log)
}

// buildComplements builds one snapshot of the complements model and says what it holds.
func buildComplements(ctx context.Context, db *sqlx.DB, log *slog.Logger) error {
	snap, err := complements.NewBuilder(db, nil).Build(ctx, 0)
	if err != nil {
		return err
	}
	log.Info("complements snapshot built", "version", snap.Version, "orders", snap.Orders,
		"skipped_orders", snap.SkippedOrders, "catalog", snap.Catalog, "products", snap.Products,
		"pairs", snap.Pairs, "build_ms", snap.BuildMillis)
	return nil
}

// openDatabase connects to DATABASE_URL, or to the private cluster it starts under
// XSELL_DATA_DIR; the returned func closes the pool and stops a cluster this process started.
func openDatabase(ctx context.Context, cfg config, log *slog.Logger) (*sqlx.DB, string, func(), error) {
	url := cfg.DatabaseURL
	var cluster *pgcluster.Cluster
	if url == "" {
		var err error
		cluster, err = pgcluster.StartPrivate(ctx, cfg.DataDir, func(f string, a ...any) { log.Info(fmt.Sprintf(f, a...)) })
		if err != nil {
			return nil, "", nil, err
		}
		url = cluster.URL()
		log.Info("using the private PostgreSQL cluster", "dir", cluster.Dir)
	}
	stopCluster := func() {
		if cluster == nil {
			return
		}
		if err := cluster.Stop(); err != nil {
			log.Error("stopping the private cluster", "error", err)
		}
	}
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		stopCluster()
		return nil, "", nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	db.SetMaxOpenConns(cfg.DBMaxConns)
	db.SetMaxIdleConns(cfg.DBMaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		stopCluster()
		return nil, "", nil, fmt.Errorf("the database does not answer: %w", err)
	}
	return db, url, func() { db.Close(); stopCluster() }, nil
}

func serve(ctx context.Context, cfg config, db *sqlx.DB, url string, log *slog.Logger) error {
	if cfg.DevKeys {
		log.Warn("XSELL_API_KEYS is unset: using the DEVELOPMENT keys dev-admin, dev-checkout, dev-analyst — never expose this server")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
		collectors.NewDBStatsCollector(db.DB, "xsell"),
		buildInfo(),
	)
	// Background work runs until the HTTP server has drained, then stops before the
	// database closes, so that its last writes (queued exposures) still reach it.
	workers := newWorkers()
	defer workers.stop()

	store := experiments.NewStore(db, nil)
	cache := experiments.NewCache(store, url, cfg.CacheReload, log)
	if err := cache.Load(ctx); err != nil {
		return err
	}
	workers.run(cache.Run)
	recorder := experiments.NewRecorder(db, experiments.RecorderConfig{}, reg, log)
	workers.run(func(ctx context.Context) { recorder.Run(ctx, cfg.ShutdownGrace) })

	eventsSvc := events.NewService(db, events.Options{Log: log, Registerer: reg})
	// Deferred so that it runs after the HTTP server has drained and before the database
	// closes: every batch taken is committed and answered.
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
		defer cancel()
		if err := eventsSvc.Close(cctx); err != nil {
			log.Error("stopping the events committer", "error", err)
		}
	}()
	if err := eventsSvc.EnsurePartitions(ctx); err != nil {
		return err
	}
	workers.run(eventsSvc.MaintainPartitions)

	// Every server holds the complements model and may build it; one builds per period.
	model := complements.NewCache(db, url, cfg.CacheReload, log)
	if err := model.Load(ctx); err != nil {
		return err
	}
	workers.run(func(ctx context.Context) { _ = model.Run(ctx) })
	modelBuilds := complements.NewRefresher(complements.NewBuilder(db, nil), cfg.ComplementsRefresh, log)
	workers.run(func(ctx context.Context) { _ = modelBuilds.Run(ctx) })

	points := loyalty.New(db, nil)
	if cfg.LoyaltyJobs {
		jobs := loyalty.DefaultJobs
		jobs.Log = log
		workers.run(func(ctx context.Context) { points.RunJobs(ctx, jobs) })
	} else {
		log.Info("loyalty jobs are off on this instance (XSELL_LOYALTY_JOBS=off): orders are credited and points expired only where they are on")
	}

	api, err := httpapi.New(httpapi.Config{
		APIKeys:        cfg.APIKeys,
		RateLimits:     cfg.RateLimits,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		TrustedProxies: cfg.TrustedProxies,
		MetricsKey:     cfg.MetricsKey,
	}, httpapi.Deps{
		DB: db, Log: log, Registry: reg,
		Experiments: store,
		Assignments: cache,
		Exposures:   recorder,
		Events:      eventsSvc,
		Loyalty:     points,

		Complements:       model,
		ComplementsBuilds: modelBuilds,
	})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	log.Info("listening", "addr", l.Addr().String(), "tls", cfg.HTTP.TLSCert != "")
	err = httpapi.Serve(ctx, l, api.Handler(), cfg.HTTP)
	log.Info("stopped accepting; in-flight requests finished")
	workers.stop()
	log.Info("background work stopped; queued exposures flushed")
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// workers runs background loops with a context of their own, cancelled by stop, which waits
// for every loop to return.
type workers struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newWorkers() *workers {
	ctx, cancel := context.WithCancel(context.Background())
	return &workers{ctx: ctx, cancel: cancel}
}

func (w *workers) run(loop func(context.Context)) {
	w.wg.Add(1)
	go func() { defer w.wg.Done(); loop(w.ctx) }()
}

func (w *workers) stop() {
	w.cancel()
	w.wg.Wait()
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
