package stats

import "math"

// Fieller's interval for a ratio of means (Fieller, "Some problems in interval estimation",
// JRSS B 16, 1954): the ratio r = μt/μc is in the interval when the test of μt − r·μc = 0 with
// standard error √(vt + r²·vc) does not reject at the quantile q, that is when
//
//	(mc² − q²vc)·r² − 2·mt·mc·r + (mt² − q²vt) ≤ 0.
//
// At r = 1 that test is the test of the difference with the same quantile, so the lift's
// interval excludes 0 exactly when the difference's does. The set is a bounded interval exactly
// when mc² > q²·vc, that is when the control mean's own interval at the same level excludes 0;
// otherwise it is unbounded and no lift is reported. Unlike the delta method it is not forced
// to be symmetric, which is what a ratio of skewed means needs (docs/statistics.md, coverage).

// liftReason says why no relative lift is reported for a control mean mc.
func liftReason(mc float64) string {
	switch {
	case mc == 0:
		return "control mean is 0, so a relative lift is undefined"
	case mc < 0:
		return "control mean is negative, so a relative lift would have the wrong sign; read the difference"
	}
	return "control mean is not clearly above 0 (its interval reaches 0), so a relative lift is not reported; read the difference"
}

// fiellerLift returns the lift mt/mc − 1 with Fieller's interval at quantile q, and the delta-method standard error for Bayesian figures.
func fiellerLift(mc, vc, mt, vt, q float64) Lift {
	if !(mc > 0) {
		return Lift{Reason: liftReason(mc)}
	}
	a := mc*mc - q*q*vc
	if !(a > 0) || !(mc*mc > 1e-300) {
		return Lift{Reason: liftReason(mc)}
	}
	disc := mt*mt*vc + mc*mc*vt - q*q*vc*vt
	h := q * math.Sqrt(math.Max(0, disc))
	l := Lift{Valid: true, Estimate: mt/mc - 1, SE: deltaLiftSE(mc, vc, mt, vt),
		CI: [2]float64{(mt*mc-h)/a - 1, (mt*mc+h)/a - 1}}
	if !finite(l.Estimate, l.SE, l.CI[0], l.CI[1]) {
		return Lift{Reason: liftReason(0.5)}
	}
	return l
}

// deltaLiftSE is the delta-method standard error of mt/mc for independent means with variances vc and vt.
func deltaLiftSE(mc, vc, mt, vt float64) float64 {
	r := mt / mc
	return math.Sqrt((vt + r*r*vc) / (mc * mc))
}

// fiellerBound is the one-sided Fieller bound of mt/mc − 1 at quantile q: the lower bound when lower, else the upper; ok is false when it is unbounded.
func fiellerBound(mc, vc, mt, vt, q float64, lower bool) (bound float64, ok bool) {
	l := fiellerLift(mc, vc, mt, vt, q)
	if !l.Valid {
		return 0, false
	}
	if lower {
		return l.CI[0], true
	}
	return l.CI[1], true
}
