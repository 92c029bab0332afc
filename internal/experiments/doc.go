// Package experiments holds the cross-sell experiment model: its validation and lifecycle, its
// Postgres store with the audit log, and assignment of shoppers to variants with GrowthBook's
// bucketing and condition language.
package experiments
