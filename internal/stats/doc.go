// Package stats computes the significance tests, intervals and plans of an experiment report from per-arm sufficient statistics.
//
// Conventions:
//   - Inputs are sufficient statistics (counts, sums, sums of squares and
//     cross-products), never per-unit rows, so a report aggregates in SQL and
//     calls these functions with a handful of numbers per arm.
//   - Tests are two-sided; every comparison takes alpha (the significance
//     level, 0.05 in the spec) and reports (1−alpha) intervals. Non-inferiority
//     is the one one-sided test, at the comparison's alpha.
//   - Differences are treatment − control; lift is diff / control mean.
//   - No function returns NaN or ±Inf. A quantity that cannot be computed
//     (empty arm, a single unit, zero variance in both arms, control mean 0 for
//     a lift) is reported as absent: its Valid field is false, Reason says why
//     in words an analyst can read, and its numeric fields are zero and must
//     not be shown. Callers decide whether an absent p-value takes part in a
//     multiple-testing correction (it should not).
//   - Planning functions return an error for impossible inputs instead, since
//     they answer a question the caller asked directly.
//
// The package does no I/O and imports no other package of the project.
package stats
