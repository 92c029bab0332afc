// Package complements learns which products are bought together from the lines of
// order_completed events, and serves each product's complements from memory: the model behind
// "frequently bought together" suggestions and bundles whose products are learned rather than
// typed in.
//
// The model counts, over the orders of a window, how many orders hold each product and each
// pair of products, and from those counts the association of every pair: support, confidence,
// lift, and Dunning's log-likelihood ratio G², which is large only when a pair's co-occurrence
// is both frequent and unlikely under independence, so that two rare products that met once
// by chance do not pass for complements. Counting and ranking run in Postgres (build.go,
// sql.go); one server of the fleet builds a snapshot on a schedule under an advisory lock
// (refresh.go); every server holds the newest snapshot in memory and hears of a new one by
// NOTIFY (cache.go); Model answers the complements of one product or of a shopping context
// (model.go). Evaluate (evaluate.go) replays held-out orders against models built with
// several thresholds, so that settings are chosen with evidence.
package complements
