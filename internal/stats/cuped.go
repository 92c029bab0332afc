package stats

import "math"

// CUPEDFit is the CUPED coefficient θ and the covariate mean, both pooled over all arms of an experiment.
type CUPEDFit struct {
	Theta         float64 // Cov(Y, X) / Var(X) over the units of all arms together
	CovariateMean float64 // mean of X over all arms
}

// FitCUPED estimates θ from all arms pooled; θ is 0 (no adjustment) when the covariate does not vary.
func FitCUPED(arms ...CUPEDMoments) CUPEDFit {
	var all CUPEDMoments
	for _, a := range arms {
		all.N += a.N
		all.SumY += a.SumY
		all.SumYY += a.SumYY
		all.SumX += a.SumX
		all.SumXX += a.SumXX
		all.SumXY += a.SumXY
	}
	if !(all.N > 0) || !finite(all.N, all.SumY, all.SumYY, all.SumX, all.SumXX, all.SumXY) {
		return CUPEDFit{}
	}
	fit := CUPEDFit{CovariateMean: all.SumX / all.N}
	vx := centredCov(all.N, all.SumX, all.SumX, all.SumXX)
	if vx > 0 {
		fit.Theta = centredCov(all.N, all.SumX, all.SumY, all.SumXY) / vx
	}
	if !finite(fit.Theta) {
		fit.Theta = 0
	}
	return fit
}

// CUPEDComparison is Welch's t-test on CUPED-adjusted values Y − θ(X − mean X), with what the adjustment achieved.
type CUPEDComparison struct {
	Comparison                          // on adjusted values; ControlMean and TreatmentMean are adjusted means
	Theta                       float64 // θ used
	ControlVariance             float64 // adjusted per-unit variance in control
	TreatmentVariance           float64 // adjusted per-unit variance in treatment
	VarianceReduction           float64 // 1 − Var(adjusted diff) / Var(unadjusted diff)
	UnadjustedControlVariance   float64 // per-unit variance of Y in control
	UnadjustedTreatmentVariance float64 // per-unit variance of Y in treatment
}

// adjust returns an arm's adjusted summary and its unadjusted variance.
func (f CUPEDFit) adjust(m CUPEDMoments) (adj summary, rawVar float64) {
	vy := centredCov(m.N, m.SumY, m.SumY, m.SumYY)
	vx := centredCov(m.N, m.SumX, m.SumX, m.SumXX)
	cxy := centredCov(m.N, m.SumX, m.SumY, m.SumXY)
	vy = math.Max(0, vy)
	adj = summary{
		n:        m.N,
		mean:     m.SumY/m.N - f.Theta*(m.SumX/m.N-f.CovariateMean),
		variance: math.Max(0, vy-2*f.Theta*cxy+f.Theta*f.Theta*vx),
	}
	return adj, vy
}

// CompareCUPED compares two arms on CUPED-adjusted values with the given fit (from FitCUPED over all arms).
func CompareCUPED(control, treatment CUPEDMoments, fit CUPEDFit, alpha float64) CUPEDComparison {
	out := CUPEDComparison{Theta: fit.Theta}
	c := newComparison(TestCUPEDWelchT, alpha, control.N, 0, treatment.N, 0)
	if r := checkArms(control.N, treatment.N, alpha, fit.Theta, fit.CovariateMean,
		control.SumY, control.SumYY, control.SumX, control.SumXX, control.SumXY,
		treatment.SumY, treatment.SumYY, treatment.SumX, treatment.SumXX, treatment.SumXY); r != "" {
		out.Comparison = invalid(c, r)
		return out
	}
	ac, rc := fit.adjust(control)
	at, rt := fit.adjust(treatment)
	out.ControlVariance, out.TreatmentVariance = ac.variance, at.variance
	out.UnadjustedControlVariance, out.UnadjustedTreatmentVariance = rc, rt
	out.Comparison = welch(c, ac, at)
	if raw := rc/control.N + rt/treatment.N; raw > 0 && out.Valid {
		out.VarianceReduction = 1 - (ac.variance/control.N+at.variance/treatment.N)/raw
	}
	return out
}
