#!/usr/bin/env python3
"""Independent reference values for the interval methods of internal/stats.

Regenerate (Python 3 with mpmath, no other package):

    cd internal/stats && python3 testdata/independent.py > testdata/independent.json

scipy and statsmodels are not available where this runs, so nothing here calls a statistics
library. Every value is derived from its definition by a different route than the Go code:

- Student's t quantile: root of the t CDF written as a regularised incomplete beta (mpmath.betainc).
- Fieller's interval: the roots of T(r) = (mt - r*mc)/sqrt(vt + r^2*vc) = +-q found by bracketed
  root finding on T itself, not by the quadratic formula.
- Score intervals of a difference and a ratio of proportions: the restricted maximum-likelihood
  rates are found by maximising the binomial log-likelihood numerically (bisection on its
  derivative), not by the Farrington-Manning cubic or the Miettinen-Nurminen quadratic; the
  bounds are roots of the score statistic.
- Confidence sequence: the Gaussian-mixture e-value is integrated numerically (mpmath.quad) and
  the boundary found where it reaches 1/alpha, instead of the closed form of Waudby-Smith et al.
- Exact unconditional p-values: every table is enumerated and the nuisance rate scanned on a fine
  even grid, instead of the Go code's boundary sweep and arcsine grid.
- Cornish-Fisher probability: root of w + lam*(w^2-1)/6 = z by root finding.

Inputs are the integer sufficient statistics of testdata/reference.json (made by reference.py).
"""
import json
import math
import os
import sys

import mpmath as mp

mp.mp.dps = 40
HERE = os.path.dirname(os.path.abspath(__file__))
COMMAND = "cd internal/stats && python3 testdata/independent.py > testdata/independent.json"


def f(x):
    return float(x)


def norm_q(p):
    return mp.sqrt(2) * mp.erfinv(2 * mp.mpf(p) - 1)


def norm_cdf(x):
    return (1 + mp.erf(mp.mpf(x) / mp.sqrt(2))) / 2


def t_cdf(t, nu):
    t, nu = mp.mpf(t), mp.mpf(nu)
    tail = mp.betainc(nu / 2, mp.mpf(1) / 2, 0, nu / (nu + t * t), regularized=True) / 2
    return 1 - tail if t > 0 else tail


def t_q(p, nu):
    z = norm_q(p)
    return mp.findroot(lambda x: t_cdf(x, nu) - p, (z - 1, z + 3), solver="anderson")


def bracket_root(g, lo, hi):
    """A root of g between lo and hi, where g changes sign (bisection then polish)."""
    lo, hi = mp.mpf(lo), mp.mpf(hi)
    glo = g(lo)
    for _ in range(200):
        mid = (lo + hi) / 2
        gm = g(mid)
        if (gm > 0) == (glo > 0):
            lo, glo = mid, gm
        else:
            hi = mid
        if hi - lo < mp.mpf(10) ** -30 * max(1, abs(lo)):
            break
    return (lo + hi) / 2


def mean_var(m):
    n, s, ss = mp.mpf(m["n"]), mp.mpf(m["sum"]), mp.mpf(m["sum_sq"])
    mean = s / n
    return n, mean, (ss - s * s / n) / (n - 1)


def fieller(mc, vc, mt, vt, q):
    """Lift interval [lo-1, hi-1] from the roots of T(r) = +-q on either side of mt/mc."""
    T = lambda r: (mt - r * mc) / mp.sqrt(vt + r * r * vc)
    est = mt / mc
    if not (mc * mc > q * q * vc):
        return None
    # T falls from +inf-ish to its limit -mc/sqrt(vc) < -q as r grows; bracket outwards.
    lo = est - 1
    while T(lo) < q:
        lo = est - 2 * (est - lo)
    hi = est + 1
    while T(hi) > -q:
        hi = est + 2 * (hi - est)
    return [f(bracket_root(lambda r: T(r) - q, lo, est) - 1), f(bracket_root(lambda r: T(r) + q, est, hi) - 1)]


def seq_rho2(alpha, tuning):
    """rho^2 of Waudby-Smith et al.'s eq. 161 for the tuning sample size."""
    l = -2 * mp.log(alpha)
    return (l + mp.log(l + 1)) / tuning


def evalue(s, n, rho2):
    """The Gaussian-mixture e-value: the integral over lam ~ N(0, rho2) of exp(lam*S - lam^2*n/2)."""
    g = lambda lam: mp.exp(lam * s - lam * lam * n / 2 - lam * lam / (2 * rho2)) / mp.sqrt(2 * mp.pi * rho2)
    w = 1 / mp.sqrt(n + 1 / rho2)
    centre = s / (n + 1 / rho2)
    return mp.quad(g, [centre - 40 * w, centre, centre + 40 * w])


# ---- proportions: restricted MLE by maximising the likelihood --------------------------------
def restricted(xc, nc, xt, nt, pt_of, slope, pc_lo, pc_hi):
    """Control rate maximising the binomial likelihood on a null line pt = pt_of(pc), whose
    slope dpt/dpc is slope: the root of the log-likelihood's derivative, by bisection."""
    def dll(pc):
        pt = pt_of(pc)
        d = 0
        if xc:
            d += mp.mpf(xc) / pc
        if nc - xc:
            d -= mp.mpf(nc - xc) / (1 - pc)
        if xt:
            d += slope * mp.mpf(xt) / pt
        if nt - xt:
            d -= slope * mp.mpf(nt - xt) / (1 - pt)
        return d
    eps = mp.mpf(10) ** -25
    a, b = pc_lo + eps, pc_hi - eps
    if dll(a) <= 0:
        return a
    if dll(b) >= 0:
        return b
    return bracket_root(dll, a, b)


def score_diff(xc, nc, xt, nt, d):
    d = mp.mpf(d)
    pc = restricted(xc, nc, xt, nt, lambda p: p + d, 1, max(0, -d), min(1, 1 - d))
    pt = pc + d
    var = pt * (1 - pt) / nt + pc * (1 - pc) / nc
    return (mp.mpf(xt) / nt - mp.mpf(xc) / nc - d) / mp.sqrt(var)


def score_ratio(xc, nc, xt, nt, r):
    r = mp.mpf(r)
    pc = restricted(xc, nc, xt, nt, lambda p: r * p, r, 0, min(1, 1 / r))
    pt = r * pc
    var = pt * (1 - pt) / nt + r * r * pc * (1 - pc) / nc
    return (mp.mpf(xt) / nt - r * mp.mpf(xc) / nc) / mp.sqrt(var)


def score_ci(xc, nc, xt, nt, alpha):
    z = norm_q(1 - mp.mpf(alpha) / 2)
    est = mp.mpf(xt) / nt - mp.mpf(xc) / nc
    g = lambda d: score_diff(xc, nc, xt, nt, d)
    lo = bracket_root(lambda d: g(d) - z, -1 + mp.mpf(10) ** -15, est)
    hi = bracket_root(lambda d: g(d) + z, est, 1 - mp.mpf(10) ** -15)
    out = {"diff_ci": [f(lo), f(hi)]}
    if xc > 0:
        rest = (mp.mpf(xt) / nt) / (mp.mpf(xc) / nc)
        h = lambda r: score_ratio(xc, nc, xt, nt, r)
        rlo = mp.mpf(0) if xt == 0 else bracket_root(lambda r: h(r) - z, mp.mpf(10) ** -12, rest)
        top = rest * 2 + 1
        while h(top) > -z:
            top *= 2
        rhi = bracket_root(lambda r: h(r) + z, max(rest, mp.mpf(10) ** -12), top)
        out["lift_ci"] = [f(rlo - 1), f(rhi - 1)]
    return out


# ---- exact unconditional test by full enumeration ----------------------------------------------
def exact_p(xc, nc, xt, nt, stat, pt_of, pc_lo, pc_hi, grid=4000):
    obs = abs(stat(xc, xt))
    if obs == 0:
        return 1.0
    cut = obs * (1 - 1e-9)
    region = [(x, y) for x in range(nc + 1) for y in range(nt + 1) if abs(stat(x, y)) >= cut]

    def binom(n, p):
        if p <= 0:
            return [1.0] + [0.0] * n
        if p >= 1:
            return [0.0] * n + [1.0]
        lp, lq = math.log(p), math.log1p(-p)
        return [math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * lp + (n - k) * lq) for k in range(n + 1)]

    def prob(pc):
        fc, ft = binom(nc, pc), binom(nt, pt_of(pc))
        return sum(fc[x] * ft[y] for x, y in region)

    pts = [pc_lo + (pc_hi - pc_lo) * k / grid for k in range(grid + 1)]
    vals = [prob(p) for p in pts]
    k = max(range(len(vals)), key=lambda i: vals[i])
    # polish the best grid point by ternary search between its neighbours
    a, b = pts[max(0, k - 1)], pts[min(grid, k + 1)]
    for _ in range(100):
        m1, m2 = a + (b - a) / 3, b - (b - a) / 3
        if prob(m1) < prob(m2):
            a = m1
        else:
            b = m2
    return min(1.0, max(vals[k], prob((a + b) / 2)))


def float_stat_diff(nc, nt, d):
    cache = {}

    def s(x, y):
        if (x, y) not in cache:
            cache[(x, y)] = float(score_diff(x, nc, y, nt, d)) if 0 < x + y < nc + nt or d != 0 else 0.0
        return cache[(x, y)]
    return s


def float_stat_ratio(nc, nt, r):
    cache = {}

    def s(x, y):
        if (x, y) not in cache:
            cache[(x, y)] = float(score_ratio(x, nc, y, nt, r)) if x + y > 0 else 0.0
        return cache[(x, y)]
    return s


def main():
    mp.mp.dps = 30
    ref = json.load(open(os.path.join(HERE, "reference.json")))
    out = {"command": COMMAND, "mpmath": mp.__version__}

    # Fieller lifts of Welch comparisons (t quantile with Welch's df) and of ratio metrics (z).
    means = []
    for c in ref["means"]:
        nc, mc, sc = mean_var(c["control"])
        nt, mt, st = mean_var(c["treatment"])
        vc, vt = sc / nc, st / nt
        if vc + vt == 0:
            continue
        df = (vc + vt) ** 2 / (vc ** 2 / (nc - 1) + vt ** 2 / (nt - 1))
        q = t_q(1 - mp.mpf(c["alpha"]) / 2, df)
        lift = fieller(mc, vc, mt, vt, q) if mc > 0 else None
        means.append({"name": c["name"], "lift_ci": lift, "t_quantile": f(q)})
    out["means"] = means

    ratios = []
    for c in ref["ratios"]:
        arms = []
        for a in (c["control"], c["treatment"]):
            n = mp.mpf(a["n"])
            r = mp.mpf(a["sum_num"]) / a["sum_den"]
            sxx = (a["sum_num_sq"] - mp.mpf(a["sum_num"]) ** 2 / n) / (n - 1)
            syy = (a["sum_den_sq"] - mp.mpf(a["sum_den"]) ** 2 / n) / (n - 1)
            sxy = (a["sum_num_den"] - mp.mpf(a["sum_num"]) * a["sum_den"] / n) / (n - 1)
            ybar = mp.mpf(a["sum_den"]) / n
            arms.append((r, (sxx - 2 * r * sxy + r * r * syy) / (n * ybar * ybar)))
        q = norm_q(1 - mp.mpf(c["alpha"]) / 2)
        ratios.append({"name": c["name"], "lift_ci": fieller(arms[0][0], arms[0][1], arms[1][0], arms[1][1], q)})
    out["ratios"] = ratios

    # Score intervals of proportions (the asymptotic regime: every expected count at least 5).
    props = []
    for c in ref["proportions"]:
        xc, nc, xt, nt = c["control"]["sum"], c["control"]["n"], c["treatment"]["sum"], c["treatment"]["n"]
        pool = (xc + xt) / (nc + nt)
        if min(nc, nt) * min(pool, 1 - pool) < 5:
            continue
        row = {"name": c["name"]}
        row.update(score_ci(xc, nc, xt, nt, c["alpha"]))
        props.append(row)
    out["proportions"] = props

    # Exact unconditional p-values at non-zero null values (differences and ratios), by enumeration.
    exact = []
    for xc, nc, xt, nt, kind, theta in [(3, 12, 9, 13, "diff", 0.0), (3, 12, 9, 13, "diff", 0.1), (3, 12, 9, 13, "diff", -0.05),
                                        (0, 20, 4, 25, "diff", 0.3), (1, 30, 6, 28, "ratio", 1.0), (1, 30, 6, 28, "ratio", 2.5),
                                        (4, 15, 2, 14, "ratio", 0.4), (0, 40, 5, 45, "diff", 0.02)]:
        if kind == "diff":
            st = float_stat_diff(nc, nt, theta)
            p = exact_p(xc, nc, xt, nt, st, lambda pc: pc + theta, max(0.0, -theta), min(1.0, 1 - theta))
        else:
            st = float_stat_ratio(nc, nt, theta)
            p = exact_p(xc, nc, xt, nt, st, lambda pc: theta * pc, 0.0, min(1.0, 1 / theta))
        exact.append({"xc": xc, "nc": nc, "xt": xt, "nt": nt, "kind": kind, "theta": theta, "p_value": p})
        print("exact", exact[-1], file=sys.stderr)
    out["exact"] = exact

    # Confidence sequences: the Gaussian-mixture e-value, integrated numerically.
    seq = []
    for n, alpha, tuning in [(1000, 0.05, 5000), (10000, 0.05, 5000), (6461, 0.05, 1000), (200, 0.05, 5000), (50000, 0.01, 800)]:
        n, alpha = mp.mpf(n), mp.mpf(alpha)
        rho2 = seq_rho2(alpha, tuning)
        s_star = bracket_root(lambda s: evalue(s, n, rho2) - 1 / alpha, 0, 100 * mp.sqrt(n))
        multiplier = s_star / mp.sqrt(n)  # half-width / SE, since S = sqrt(n)*diff/SE
        z = mp.mpf(1.3)  # an always-valid p-value at an observed diff/SE of 1.3
        p = min(1, 1 / evalue(z * mp.sqrt(n), n, rho2))
        seq.append({"n": f(n), "alpha": f(alpha), "tuning": tuning, "multiplier": f(multiplier), "p_at_z_1_3": f(p)})
    out["sequence"] = seq

    # Sequential lifts: Fieller with the sequence's multiplier, for the Welch cases above.
    seq_lift = []
    for c in ref["means"]:
        if c["name"] not in ("revenue_cents", "alpha_001_large"):
            continue
        nc, mc, sc = mean_var(c["control"])
        nt, mt, st = mean_var(c["treatment"])
        n, alpha = nc + nt, mp.mpf(c["alpha"])
        rho2 = seq_rho2(alpha, 5000)
        s_star = bracket_root(lambda s: evalue(s, n, rho2) - 1 / alpha, 0, 100 * mp.sqrt(n))
        seq_lift.append({"name": c["name"], "tuning": 5000, "lift_ci": fieller(mc, sc / nc, mt, st / nt, s_star / mp.sqrt(n))})
    out["sequential_lift"] = seq_lift

    # Relative non-inferiority: the contrast mt - k*mc, one-sided, and Fieller's one-sided bound.
    ni = []
    for kind, name, margin, lower in [("mean", "revenue_cents", 0.1, False), ("proportion", "spec_like", 0.05, True)]:
        if kind == "mean":
            c = next(x for x in ref["means"] if x["name"] == name)
            nc, mc, sc = mean_var(c["control"])
            nt, mt, st = mean_var(c["treatment"])
            vc, vt = sc / nc, st / nt
            df = (vc + vt) ** 2 / (vc ** 2 / (nc - 1) + vt ** 2 / (nt - 1))
            q = t_q(1 - mp.mpf(c["alpha"]), df)
            surv = lambda x: 1 - t_cdf(x, df)
        else:
            c = next(x for x in ref["proportions"] if x["name"] == name)
            nc, nt = mp.mpf(c["control"]["n"]), mp.mpf(c["treatment"]["n"])
            mc, mt = c["control"]["sum"] / nc, c["treatment"]["sum"] / nt
            vc, vt = mc * (1 - mc) / nc, mt * (1 - mt) / nt
            q = norm_q(1 - mp.mpf(c["alpha"]))
            surv = lambda x: 1 - norm_cdf(x)
        k = 1 + margin if lower else 1 - margin
        stat = (mt - k * mc) / mp.sqrt(vt + k * k * vc)
        p = surv(-stat) if lower else surv(stat)
        T = lambda r: (mt - r * mc) / mp.sqrt(vt + r * r * vc)
        est = mt / mc
        if lower:
            bound = bracket_root(lambda r: T(r) + q, est, est * 10)
        else:
            bound = bracket_root(lambda r: T(r) - q, est / 10, est)
        ni.append({"kind": kind, "case": name, "margin": margin, "lower_is_better": lower,
                   "stat": f(stat), "p_value": f(p), "bound": f(bound - 1)})
    out["noninferiority_relative"] = ni

    # Cornish-Fisher lower-tail probabilities.
    cf = []
    for z, lam in [(-1.5, 0.4), (2.1, 0.4), (0.3, -0.7), (-2.5, 0.05), (1.0, 1.2)]:
        w = mp.findroot(lambda w: w + lam * (w * w - 1) / 6 - z, z)
        cf.append({"z": z, "lambda": lam, "lower": f(norm_cdf(w))})
    out["cornish_fisher"] = cf

    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
