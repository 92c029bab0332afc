// Package experiments holds the cross-sell experiment: its model and validation (model.go,
// validate.go, allocation.go), lifecycle and edit rules (lifecycle.go, edit.go), its Postgres
// store with the audit log (store.go, audit.go) and a bandit's periods (bandit.go), and
// assignment of shoppers to variants from an in-memory snapshot (cache.go, snapshot.go,
// answer.go, assign.go, and sticky.go, which keeps a bandit's shoppers in their first variant)
// with the targeting package's GrowthBook rules. exposures.go records who was assigned what.
package experiments
