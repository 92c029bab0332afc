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
//	server rollups    bring the report rollups up to date with every event and exit (the
//	                  server also does this continuously; after a bulk load this builds them)
//
// Configuration comes from the environment; see the README's table. The wiring is
// internal/app's, shared with the tests.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/app"
	"github.com/xsell/xsell/internal/database"
	"github.com/xsell/xsell/internal/exposures"
	"github.com/xsell/xsell/internal/httpapi"
	"github.com/xsell/xsell/internal/loyalty"
	"github.com/xsell/xsell/internal/offers"
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tuneGC(ctx, uint64(cfg.HeapFloorMB)<<20)

	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "serve", "migrate", "rollups":
	case "loyalty":
		if len(args) != 2 || args[1] != "expire" {
			return fmt.Errorf("unknown command %q (want: server loyalty expire)", strings.Join(args, " "))
		}
	case "complements":
		if len(args) != 2 || args[1] != "build" {
			return fmt.Errorf("unknown command %q (want: server complements build)", strings.Join(args, " "))
		}
	default:
		return fmt.Errorf("unknown command %q (want serve, migrate, rollups, loyalty expire or complements build)", cmd)
	}

	url, stopCluster, err := databaseURL(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer stopCluster()
	if err := migrate(ctx, url, log); err != nil || cmd == "migrate" {
		return err
	}
	if cfg.DevKeys && cmd == "serve" {
		log.Warn("XSELL_API_KEYS is unset: using the DEVELOPMENT keys dev-admin, dev-checkout, dev-analyst — never expose this server")
	}
	a, err := app.New(ctx, appConfig(cfg, url, log))
	if err != nil {
		return err
	}
	defer a.Close()
	switch cmd {
	case "loyalty":
		return a.ExpireLoyalty(ctx)
	case "rollups":
		return a.CatchUpRollups(ctx)
	case "complements":
		return a.BuildComplements(ctx)
	}
	if !cfg.LoyaltyJobs {
		log.Info("loyalty jobs are off on this instance (XSELL_LOYALTY_JOBS=off): orders are credited and points expired only where they are on")
	}
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	return a.Run(ctx, l)
}

// appConfig is the wiring's configuration from the environment's.
func appConfig(cfg config, url string, log *slog.Logger) app.Config {
	c := app.Config{
		DatabaseURL:      url,
		DBMaxConns:       cfg.DBMaxConns,
		StatementTimeout: cfg.StatementTimeout,
		RequestTimeout:   cfg.RequestTimeout,
		HTTP: httpapi.Config{
			APIKeys:        cfg.APIKeys,
			RateLimits:     cfg.RateLimits,
			MaxBodyBytes:   cfg.MaxBodyBytes,
			TrustedProxies: cfg.TrustedProxies,
			MetricsKey:     cfg.MetricsKey,
			// The hot route's successful lines are sampled (docs/assignment.md).
			AssignLogSample: cfg.AssignLogSample,
		},
		Exposures:          exposures.Config{QueueSize: cfg.ExposureQueue, MergeShare: cfg.MergeShare},
		Serve:              cfg.HTTP,
		CacheReload:        cfg.CacheReload,
		ComplementsRefresh: cfg.ComplementsRefresh,
		ResultsRefresh:     cfg.ResultsRefresh,
		ConsoleSession:     cfg.ConsoleSession,
		Log:                log,
	}
	if cfg.LoyaltyJobs {
		c.CreditEvery, c.ExpireEvery = loyalty.DefaultCreditEvery, loyalty.DefaultExpireEvery
		// The order discounts that spend offer budgets are read from the same events, by the
		// same kind of instance (docs/offers.md).
		c.SpendEvery = offers.DefaultSpendEvery
	}
	if cfg.Rollups {
		c.RollupEvery = analysis.DefaultRollupEvery
	}
	if !cfg.BanditUpdates {
		c.BanditTick = -1
	}
	c.StickyLimit = cfg.StickyLimit
	return c
}

// databaseURL is DATABASE_URL, or the private cluster's under XSELL_DATA_DIR, started here;
// the returned func stops a cluster this process started.
func databaseURL(ctx context.Context, cfg config, log *slog.Logger) (string, func(), error) {
	if cfg.DatabaseURL != "" {
		return cfg.DatabaseURL, func() {}, nil
	}
	cluster, err := pgcluster.StartPrivate(ctx, cfg.DataDir, func(f string, a ...any) { log.Info(fmt.Sprintf(f, a...)) })
	if err != nil {
		return "", nil, err
	}
	log.Info("using the private PostgreSQL cluster", "dir", cluster.Dir)
	return cluster.URL(), func() {
		if err := cluster.Stop(); err != nil {
			log.Error("stopping the private cluster", "error", err)
		}
	}, nil
}

// migrate applies the migrations on a pool of its own: without the statement timeout of
// the server's pool, which a long migration, or the wait for another server's, would exceed.
func migrate(ctx context.Context, url string, log *slog.Logger) error {
	db, err := database.Open(ctx, url, database.Options{MaxConns: 2})
	if err != nil {
		return err
	}
	defer db.Close()
	applied, err := migrations.Up(ctx, db.DB)
	if err != nil {
		return err
	}
	log.Info("migrations applied", "new", applied)
	return nil
}
