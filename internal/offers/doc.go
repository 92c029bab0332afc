// Package offers keeps xsell's offers within bounds (SPEC §2a, §2b): it counts each shopper's
// offer opportunities against frequency caps in memory, shared across servers through
// Postgres; charges offer budgets where money moves, race-free; and keeps the program's
// settings — the global cap and the holdout. The rules and their reasons are in
// docs/offers.md; the pipeline that applies them to answers is internal/experiments' (offer.go).
package offers
