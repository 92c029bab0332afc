// Package stats computes the significance tests, intervals and plans of an experiment report from per-arm sufficient statistics.
//
// Conventions:
//   - Inputs are sufficient statistics (counts, sums, sums of squares and cubes,
//     cross-products), never per-unit rows, so a report aggregates in SQL and
//     calls these functions with a handful of numbers per arm.
//   - Tests are two-sided; every comparison takes alpha (the significance
//     level, 0.05 in the spec) and reports (1−alpha) intervals. Non-inferiority
//     is the one one-sided test, at the comparison's alpha.
//   - Differences are treatment − control; lift is diff / control mean, reported only
//     when the control mean is clearly above 0 (its own interval at the same level
//     excludes 0), so that a lift never has the opposite sign of the difference.
//   - A comparison's p-value and intervals come from one method: the difference's
//     interval is the set of values its test does not reject, and the lift's interval
//     is built on the same test, so both exclude 0 exactly when p < alpha. Each
//     method, its source and its measured calibration are in docs/statistics.md.
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
