package app

import "context"

// The one-shot tasks of `server loyalty expire`, `server rollups` and `server complements
// build`: what the background components do on their timers, done once, for an operator or a
// script.

// ExpireLoyalty writes off the loyalty points past their expiry, once.
func (a *App) ExpireLoyalty(ctx context.Context) error {
	n, err := a.Loyalty.ExpireDue(ctx)
	a.log.Info("loyalty: expired lots", "lots", n)
	return err
}

// CatchUpRollups brings the report rollups up to date with every event committed when it
// starts, once; on a database loaded in bulk, this builds them.
func (a *App) CatchUpRollups(ctx context.Context) error {
	p, err := a.Rollups.Advance(ctx)
	a.log.Info("analysis rollups: up to date", "events", p.Events, "shoppers", p.Shoppers,
		"rebuilt", p.Rebuilt, "cursor", p.Cursor, "quarantined", p.Poisoned, "seconds", p.Duration.Seconds())
	return err
}

// BuildComplements builds a snapshot of the complements model now, once.
func (a *App) BuildComplements(ctx context.Context) error {
	snap, err := a.ComplementsBuilds.Builder.Build(ctx, 0)
	if err != nil {
		return err
	}
	a.log.Info("complements snapshot built", "version", snap.Version, "orders", snap.Orders,
		"skipped_orders", snap.SkippedOrders, "catalog", snap.Catalog, "products", snap.Products,
		"pairs", snap.Pairs, "build_ms", snap.BuildMillis)
	return nil
}
