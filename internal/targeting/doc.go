// Package targeting decides which shoppers an experiment reaches and where each one falls, with
// GrowthBook's rules bit for bit: conditions (compile.go, then logic.go and operators.go, on
// JavaScript's value rules in jsvalue.go and jsnumber.go), hashing (hash.go), bucket ranges
// (buckets.go) and namespaces, which xsell calls layers (namespace.go).
//
// It knows nothing of experiments or the database, so that the GrowthBook conformance cases in
// testdata/growthbook test it alone.
package targeting
