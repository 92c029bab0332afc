// Package analysis turns stored exposures and events into per-variant sufficient statistics and the experiment report of SPEC §6.
//
// The heavy lifting happens in Postgres: one query per report reduces every exposed shopper to
// a handful of sums per variant (and segment and exposure day), so the cost of a report does
// not grow with the number of shoppers on the Go side. The sums are additive, which is how the
// overall figures, the segments and the cumulative-by-day series all come from that one result.
// The statistics themselves live in internal/stats; this package decides which test fits which
// metric, applies the window, phase and two-variant-shopper rules, and shapes the report.
package analysis
