// Package bandit moves an experiment's traffic towards its better arms while it runs: Thompson
// sampling (top-two by default) on the posterior of the experiment's metric per arm, standardised
// over the periods of constant weights, recomputed on schedule by one server of the fleet and
// stored as a new period of the same phase (docs/bandits.md).
package bandit
