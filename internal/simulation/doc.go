// Package simulation drives a running server through its public API as a checkout would, for
// demos and end-to-end tests.
//
// Shoppers arrive over simulated days that end now: each is assigned with a back-dated "at"
// (admin key), then reports the offer views, acceptances, orders and refunds a shopper of its
// arm would produce, with occurred_at in the past. What each strategy truly does is planted by a
// Scenario, so that a report can be checked against a known answer. Every random draw of a
// shopper comes from a generator seeded by the scenario's seed and the shopper's number, so a
// run is reproducible whatever the concurrency.
package simulation
