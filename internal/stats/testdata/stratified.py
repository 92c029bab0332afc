#!/usr/bin/env python3
"""Independent reference values for the stratified comparison (stratified.go).

Regenerate (Python 3 with mpmath, no other package):

    cd internal/stats && python3 testdata/stratified.py > testdata/stratified.json

Every value comes from the units themselves, by a different route than the Go code (which works
from per-stratum sums and closed-form cumulants):

- The randomization distribution of the combined statistic is enumerated: every way of
  re-randomising each stratum's units into arms of the same sizes, all strata together, with
  exact fractions. Its variance and third cumulant are taken from that enumeration.
- For proportions, the Cochran-Mantel-Haenszel statistic (no continuity correction) is computed
  from the 2x2 tables with the textbook hypergeometric variance, and the Mantel-Haenszel risk
  difference with Greenland and Robins' formula.
- The interval of the difference: the shift d whose Cornish-Fisher p-value equals alpha, the
  statistic recomputed from the shifted units (pooled central moments of the raw values) and
  the root found by mpmath.findroot; likewise the ratio r for the lift (treatment units / r).
"""
import itertools
import json
from fractions import Fraction as F

import mpmath as mp

mp.mp.dps = 40
COMMAND = "cd internal/stats && python3 testdata/stratified.py > testdata/stratified.json"

# Small strata of raw values: (control units, treatment units).
SMALL = [
    ([0, 3, 1], [5, 0]),
    ([2, 0], [0, 7, 1]),
    ([0, 0, 4, 1], [9, 2]),
]

# Larger strata for the p-value and intervals (skewed, unequal arms, a trend between strata).
LARGE = [
    ([0] * 40 + [12, 3, 30, 7, 1, 18], [0] * 8 + [25, 4]),
    ([0] * 10 + [5, 2, 40], [0] * 30 + [3, 9, 14, 60, 2, 8, 1]),
    ([0] * 25 + [20, 11, 6, 4], [0] * 22 + [35, 7, 16, 2, 9]),
]

# The same with every treatment value quadrupled: an effect the test should find.
LARGE_EFFECT = [(c, [4 * y for y in t]) for c, t in LARGE]

# Proportions: (control n, control successes, treatment n, treatment successes) per stratum.
PROPS = [(500, 40, 120, 15), (200, 30, 400, 52), (90, 5, 810, 70)]


def mh_share(strata):
    w = [F(len(c) * len(t), len(c) + len(t)) for c, t in strata]
    total = sum(w)
    return [x / total for x in w]


def mean(xs):
    return F(sum(xs), len(xs))


def statistic(strata, shares):
    return sum(s * (mean(t) - mean(c)) for s, (c, t) in zip(shares, strata))


def enumerate_distribution(strata, shares):
    """Every within-stratum re-randomisation: the combined statistic of each, all equally likely."""
    per_stratum = []
    for c, t in strata:
        pooled = c + t
        n, nt = len(pooled), len(t)
        values = []
        for idx in itertools.combinations(range(n), nt):
            tt = [pooled[i] for i in idx]
            cc = [pooled[i] for i in range(n) if i not in idx]
            values.append(mean(tt) - mean(cc))
        per_stratum.append(values)
    out = []
    for combo in itertools.product(*per_stratum):
        out.append(sum(s * d for s, d in zip(shares, combo)))
    return out


def cumulants(xs):
    n = len(xs)
    m = sum(xs) / n
    k2 = sum((x - m) ** 2 for x in xs) / n
    k3 = sum((x - m) ** 3 for x in xs) / n
    return m, k2, k3


def pooled_cumulants(c, t, shares_i):
    """Variance and third cumulant of one stratum's difference of means over re-randomisations,
    from the central moments of its pooled raw values (sampling without replacement)."""
    pooled = [mp.mpf(x) for x in c + t]
    n, nc, nt = len(pooled), len(c), len(t)
    m = sum(pooled) / n
    mu2 = sum((x - m) ** 2 for x in pooled) / n
    mu3 = sum((x - m) ** 3 for x in pooled) / n
    # Var and k3 of the treatment sum drawn without replacement (finite-population cumulants).
    var_s = mp.mpf(nt) * nc / (n - 1) * mu2
    k3_s = mp.mpf(nt) * nc * (nc - nt) / ((n - 1) * (n - 2)) * mu3
    f = mp.mpf(n) / (nt * nc)
    return f * f * var_s * shares_i ** 2, f ** 3 * k3_s * shares_i ** 3


def cf_lower(z, lam):
    if abs(lam) < mp.mpf("1e-30"):
        return mp.ncdf(z)
    w = mp.findroot(lambda w: w + lam * (w * w - 1) / 6 - z, z)
    return mp.ncdf(w)


def p_value(strata, shares):
    d = sum(mp.mpf(s.numerator) / s.denominator * (sum(mp.mpf(x) for x in t) / len(t) - sum(mp.mpf(x) for x in c) / len(c))
            for s, (c, t) in zip(shares, strata))
    var, k3 = mp.mpf(0), mp.mpf(0)
    for s, (c, t) in zip(shares, strata):
        v, k = pooled_cumulants(c, t, mp.mpf(s.numerator) / s.denominator)
        var += v
        k3 += k
    z = d / mp.sqrt(var)
    lower = cf_lower(z, k3 / var ** mp.mpf(1.5))
    return 2 * min(lower, 1 - lower)


def shifted(strata, d):
    return [(c, [mp.mpf(y) - d for y in t]) for c, t in strata]


def scaled(strata, r):
    return [(c, [mp.mpf(y) / r for y in t]) for c, t in strata]


def large_case(LARGE, alpha):
    shares = mh_share(LARGE)
    est = statistic(LARGE, shares)
    p = p_value(LARGE, shares)

    def root(fn, inside, step):
        """Bisection between a value the test accepts and one it rejects, found by stepping out."""
        outside = inside + step
        while p_value(fn(LARGE, outside), shares) >= alpha:
            outside += step
        for _ in range(200):
            mid = (inside + outside) / 2
            if p_value(fn(LARGE, mid), shares) >= alpha:
                inside = mid
            else:
                outside = mid
        return inside

    e = mp.mpf(est.numerator) / est.denominator
    lo = root(shifted, e, -1)
    hi = root(shifted, e, 1)
    mc = sum(s * mean(c) for s, (c, _) in zip(shares, LARGE))
    mt = sum(s * mean(t) for s, (_, t) in zip(shares, LARGE))
    ratio = mp.mpf(mt.numerator) / mt.denominator / (mp.mpf(mc.numerator) / mc.denominator)
    rlo = root(scaled, ratio, -ratio / 20)
    rhi = root(scaled, ratio, ratio / 2)
    return {
        "strata": [{"control": c, "treatment": t} for c, t in LARGE],
        "alpha": alpha,
        "control_mean": float(mc), "treatment_mean": float(mt), "diff": float(est),
        "p_value": float(p), "diff_ci": [float(lo), float(hi)],
        "lift": float(ratio - 1), "lift_ci": [float(rlo - 1), float(rhi - 1)],
    }


def small_case():
    shares = mh_share(SMALL)
    dist = enumerate_distribution(SMALL, shares)
    m, k2, k3 = cumulants(dist)
    assert m == 0
    return {
        "strata": [{"control": c, "treatment": t} for c, t in SMALL],
        "diff": float(statistic(SMALL, shares)),
        "variance": float(k2), "k3": float(k3), "rerandomisations": len(dist),
    }


def cmh_case():
    num, var, rd_num, rd_den = F(0), F(0), F(0), F(0)
    for nc, xc, nt, xt in PROPS:
        n, m1 = nc + nt, xc + xt
        m0 = n - m1
        # a = treatment successes; E[a] and Var[a] under the hypergeometric.
        num += xt - F(nt * m1, n)
        var += F(nt * nc * m1 * m0, n * n * (n - 1))
        # Greenland-Robins: sum (a*n0 - c*n1)/N / sum n1*n0/N with a, n1 treated.
        rd_num += F(xt * nc - xc * nt, n)
        rd_den += F(nt * nc, n)
    return {
        "strata": [{"control_n": a, "control_successes": b, "treatment_n": c, "treatment_successes": d} for a, b, c, d in PROPS],
        "cmh_chi2": float(num * num / var), "mh_risk_difference": float(rd_num / rd_den),
    }


def main():
    out = {
        "command": COMMAND,
        "mpmath": mp.__version__,
        "enumerated": small_case(),
        "cmh": cmh_case(),
        "large": [large_case(LARGE, mp.mpf("0.05")), large_case(LARGE_EFFECT, mp.mpf("0.05"))],
    }
    print(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
