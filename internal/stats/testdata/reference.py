#!/usr/bin/python3
"""Reference values for internal/stats, computed independently with scipy and statsmodels.

Regenerate (Debian packages python3-scipy 1.10 and python3-statsmodels 0.13):

    apt-get install -y python3-scipy python3-statsmodels
    cd internal/stats && /usr/bin/python3 testdata/reference.py > testdata/reference.json

Inputs are generated here from fixed seeds as raw per-unit rows with integer values,
reduced to the sufficient statistics the Go code takes (exact integer sums), while the
expected values are computed from the raw rows (or, for 10^9 units, from exact rational
arithmetic) by scipy/statsmodels, or by the published formula where no library has it.
"""
import json
import math
import sys
from fractions import Fraction

import numpy as np
import scipy
import statsmodels
from scipy import integrate, optimize, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (confint_proportions_2indep,
                                          proportions_ztest,
                                          test_proportions_2indep)
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

COMMAND = ("cd internal/stats && /usr/bin/python3 testdata/reference.py "
           "> testdata/reference.json")


def f(x):
    return float(x)


def moments(values):
    v = [int(x) for x in values]
    return {"n": len(v), "sum": sum(v), "sum_sq": sum(x * x for x in v)}


def lift_ref(mc, vmc, mt, vmt, alpha):
    """Delta method for mt/mc - 1 with independent arms:
    Var ≈ Var(mt)/mc² + mt²·Var(mc)/mc⁴ (e.g. Deng, Knoblich & Lu, KDD 2018, §3)."""
    if mc == 0:
        return None
    est = mt / mc - 1
    se = math.sqrt(vmt / mc**2 + mt**2 * vmc / mc**4)
    h = stats.norm.ppf(1 - alpha / 2) * se
    return {"estimate": est, "se": se, "ci": [est - h, est + h]}


out = {
    "command": COMMAND,
    "versions": {"python": sys.version.split()[0], "numpy": np.__version__,
                 "scipy": scipy.__version__, "statsmodels": statsmodels.__version__},
}

# ---- 1. SRM: scipy.stats.chisquare -----------------------------------------
srm = []
for name, obs, w in [
    ("balanced", [5012, 4988], [0.5, 0.5]),
    ("three_arms_mismatch", [1000, 1100, 900], [1, 1, 1]),
    ("uneven_weights", [7000, 2950, 1050], [0.7, 0.2, 0.1]),
    ("five_arms_ok", [2013, 1987, 2040, 1968, 1992], [1, 1, 1, 1, 1]),
    ("billion_units", [1_000_000_000, 1_000_100_000], [1, 1]),
]:
    tot = sum(obs)
    exp = [tot * x / sum(w) for x in w]
    r = stats.chisquare(obs, f_exp=exp)
    srm.append({"name": name, "observed": obs, "weights": w, "chi2": f(r.statistic),
                "df": len(obs) - 1, "p_value": f(r.pvalue), "mismatch": bool(r.pvalue < 0.001)})
out["srm"] = srm

# ---- 2. Proportions: statsmodels proportions_ztest (pooled) and Wald CI -------
props = []
for name, sc, nc, st, nt, alpha in [
    ("spec_like", 506, 5012, 584, 4988, 0.05),
    ("small", 3, 40, 9, 38, 0.05),
    ("zero_conversions_control", 0, 500, 7, 500, 0.05),
    ("zero_conversions_treatment", 12, 500, 0, 480, 0.05),
    ("all_conversions_control", 500, 500, 480, 500, 0.05),
    ("alpha_010", 1200, 10000, 1290, 10050, 0.10),
    ("billion_units", 100_000_000, 1_000_000_000, 100_030_000, 1_000_000_000, 0.05),
]:
    z, p = proportions_ztest([st, sc], [nt, nc])  # treatment − control, pooled variance
    lo, hi = confint_proportions_2indep(st, nt, sc, nc, method="wald", compare="diff", alpha=alpha)
    pc, pt = sc / nc, st / nt
    props.append({"name": name, "alpha": alpha,
                  "control": {"n": nc, "sum": sc}, "treatment": {"n": nt, "sum": st},
                  "diff": pt - pc, "z": f(z), "p_value": f(p), "diff_ci": [f(lo), f(hi)],
                  "lift": lift_ref(pc, pc * (1 - pc) / nc, pt, pt * (1 - pt) / nt, alpha)})
out["proportions"] = props

# ---- 3. Means: scipy ttest_ind(equal_var=False), statsmodels CompareMeans -----
rng = np.random.default_rng(20261125)
welch = []
raw_means = {}


def welch_case(name, c, t, alpha):
    c = np.asarray(c, dtype=np.int64)
    t = np.asarray(t, dtype=np.int64)
    r = stats.ttest_ind(t, c, equal_var=False)
    cm = CompareMeans(DescrStatsW(t.astype(float)), DescrStatsW(c.astype(float)))
    _, _, df = cm.ttest_ind(usevar="unequal")
    lo, hi = cm.tconfint_diff(alpha=alpha, usevar="unequal")
    mc, mt = c.mean(), t.mean()
    vmc, vmt = c.var(ddof=1) / len(c), t.var(ddof=1) / len(t)
    raw_means[name] = (c, t)
    welch.append({"name": name, "alpha": alpha, "control": moments(c), "treatment": moments(t),
                  "diff": f(mt - mc), "t": f(r.statistic), "df": f(df), "p_value": f(r.pvalue),
                  "diff_ci": [f(lo), f(hi)], "diff_se": math.sqrt(vmc + vmt),
                  "lift": lift_ref(mc, vmc, mt, vmt, alpha)})


welch_case("revenue_cents", np.round(rng.lognormal(7, 1.2, 800) * (rng.random(800) < 0.3)),
           np.round(rng.lognormal(7.05, 1.2, 820) * (rng.random(820) < 0.32)), 0.05)
welch_case("small", [12, 15, 9, 20, 11], [14, 22, 19, 25, 18, 21, 16], 0.05)
welch_case("control_zero_variance", [5] * 10, [3, 7, 5, 6, 4, 8, 5, 6, 7, 5, 4, 6], 0.05)
welch_case("control_mean_zero", [-3, 3, -1, 1, 0, -2, 2], [1, 4, -2, 3, 0, 2], 0.05)
welch_case("alpha_001_large", rng.poisson(40, 5000), rng.poisson(40.3, 5100), 0.01)

# 10^9 units per arm: sufficient statistics only; mean and variance by exact
# rational arithmetic, then scipy.stats.ttest_ind_from_stats and t.ppf.
big = []
for name, (nc, sc, ssc), (nt, st, sst), alpha in [
    ("billion_units", (10**9, 50 * 10**9, 50**2 * 10**9 + 10**4 * (10**9 - 1)),
     (10**9, 50 * 10**9 + 10**7, None), 0.05),
]:
    mtF = Fraction(st, nt)
    sst = int(nt * mtF**2 + 10**4 * (nt - 1)) if sst is None else sst
    vcF = (Fraction(ssc) - Fraction(sc) ** 2 / nc) / (nc - 1)
    vtF = (Fraction(sst) - Fraction(st) ** 2 / nt) / (nt - 1)
    mc, mt = float(Fraction(sc, nc)), float(Fraction(st, nt))
    r = stats.ttest_ind_from_stats(mt, math.sqrt(vtF), nt, mc, math.sqrt(vcF), nc, equal_var=False)
    a, b = vcF / nc, vtF / nt
    df = float((a + b) ** 2 / (a * a / (nc - 1) + b * b / (nt - 1)))
    se = math.sqrt(a + b)
    h = stats.t.ppf(1 - alpha / 2, df) * se
    welch.append({"name": name, "alpha": alpha,
                  "control": {"n": nc, "sum": sc, "sum_sq": ssc},
                  "treatment": {"n": nt, "sum": st, "sum_sq": sst},
                  "diff": mt - mc, "t": f(r.statistic), "df": df, "p_value": f(r.pvalue),
                  "diff_ci": [mt - mc - h, mt - mc + h], "diff_se": se,
                  "lift": lift_ref(mc, float(a), mt, float(b), alpha)})
out["means"] = welch

# ---- 4. Ratio metrics: delta method from raw rows (numpy), scipy.stats.norm ----
# Var(Σx/Σy) ≈ (s_xx − 2R s_xy + R² s_yy) / (n ȳ²)  (Deng et al. 2018, eq. 2; Kohavi et al. 2020, ch. 18).
ratio = []
for name, n_c, n_t, lam_t, alpha in [("revenue_per_order", 1500, 1480, 0.62, 0.05),
                                      ("alpha_010", 400, 420, 0.7, 0.10)]:
    arms = []
    for n, lam in [(n_c, 0.6), (n_t, lam_t)]:
        orders = rng.poisson(lam, n)
        rev = np.array([int(np.round(rng.gamma(2.0, 2500.0, k)).sum()) for k in orders])
        arms.append((rev.astype(np.int64), orders.astype(np.int64)))
    res = []
    for x, y in arms:
        R = x.sum() / y.sum()
        cov = np.cov(np.vstack([x, y]).astype(float), ddof=1)
        var = (cov[0, 0] - 2 * R * cov[0, 1] + R * R * cov[1, 1]) / (len(x) * y.mean() ** 2)
        res.append((R, var))
    (rc, vc), (rt, vt) = res
    se = math.sqrt(vc + vt)
    z = (rt - rc) / se
    h = stats.norm.ppf(1 - alpha / 2) * se
    def rm(x, y):
        x, y = [int(v) for v in x], [int(v) for v in y]
        return {"n": len(x), "sum_num": sum(x), "sum_num_sq": sum(v * v for v in x),
                "sum_den": sum(y), "sum_den_sq": sum(v * v for v in y),
                "sum_num_den": sum(a * b for a, b in zip(x, y))}
    ratio.append({"name": name, "alpha": alpha, "control": rm(*arms[0]), "treatment": rm(*arms[1]),
                  "control_mean": f(rc), "treatment_mean": f(rt), "diff": f(rt - rc), "z": f(z),
                  "p_value": f(2 * stats.norm.sf(abs(z))), "diff_ci": [f(rt - rc - h), f(rt - rc + h)],
                  "lift": lift_ref(rc, vc, rt, vt, alpha)})
out["ratios"] = ratio

# ---- 6. Multiple testing: statsmodels multipletests --------------------------
adj = []
for p in [[0.01, 0.04, 0.03, 0.005, 0.2, 0.04, 0.9],
          [0.001],
          [0.5, 0.5, 0.01],
          [0.0001, 0.0002, 0.011, 0.012, 0.013, 0.05, 0.051, 0.2, 0.5, 0.7, 1.0]]:
    adj.append({"p": p, "holm": [f(v) for v in multipletests(p, method="holm")[1]],
                "bh": [f(v) for v in multipletests(p, method="fdr_bh")[1]]})
out["adjust"] = adj

# ---- 7. CUPED: θ over all arms pooled, Welch on adjusted rows (scipy, statsmodels)
cuped = []
k, n = 3, 3000
arms = []
for i in range(k):
    x = np.round(rng.gamma(1.5, 3000.0, n))              # pre-period revenue, cents
    y = np.round(0.8 * x + rng.normal(0, 3000, n) + 150 * i).clip(min=0)
    arms.append((y.astype(np.int64), x.astype(np.int64)))
ally = np.concatenate([a[0] for a in arms]).astype(float)
allx = np.concatenate([a[1] for a in arms]).astype(float)
theta = np.cov(ally, allx, ddof=1)[0, 1] / np.var(allx, ddof=1)
xbar = allx.mean()
adjusted = [(y - theta * (x - xbar)) for y, x in arms]


def cm_(y, x):
    y, x = [int(v) for v in y], [int(v) for v in x]
    return {"n": len(y), "sum_y": sum(y), "sum_yy": sum(v * v for v in y), "sum_x": sum(x),
            "sum_xx": sum(v * v for v in x), "sum_xy": sum(a * b for a, b in zip(y, x))}


comps = []
for i in (1, 2):
    zc, zt = adjusted[0], adjusted[i]
    r = stats.ttest_ind(zt, zc, equal_var=False)
    cmp_ = CompareMeans(DescrStatsW(zt), DescrStatsW(zc))
    _, _, df = cmp_.ttest_ind(usevar="unequal")
    lo, hi = cmp_.tconfint_diff(alpha=0.05, usevar="unequal")
    yc, yt = arms[0][0].astype(float), arms[i][0].astype(float)
    raw = yc.var(ddof=1) / len(yc) + yt.var(ddof=1) / len(yt)
    adjv = zc.var(ddof=1) / len(zc) + zt.var(ddof=1) / len(zt)
    comps.append({"treatment": i, "control_mean": f(zc.mean()), "treatment_mean": f(zt.mean()),
                  "control_variance": f(zc.var(ddof=1)), "treatment_variance": f(zt.var(ddof=1)),
                  "t": f(r.statistic), "df": f(df), "p_value": f(r.pvalue), "diff_ci": [f(lo), f(hi)],
                  "variance_reduction": f(1 - adjv / raw)})
cuped.append({"name": "three_arms", "alpha": 0.05, "arms": [cm_(*a) for a in arms],
              "theta": f(theta), "covariate_mean": f(xbar), "comparisons": comps})
out["cuped"] = cuped

# ---- 8. Sequential: not here. The confidence sequence is checked against testdata/independent.py,
# which integrates the Gaussian mixture numerically instead of restating the closed form.

# ---- 9. Bayesian: normal posterior of the lift (GrowthBook's Gaussian approximation)
# chance to win = P(δ > 0) (scipy.stats.norm.sf); expected loss = ∫ max(0, −δ) dN(δ; m, s²)
# and risk of control = ∫ max(0, δ) dN(δ; m, s²) by numerical integration (scipy quad).
bayes = []
for mean, sd, lower in [(0.05, 0.03, False), (-0.02, 0.01, False), (0.0, 0.2, False),
                        (0.01, 0.05, True), (0.3, 0.08, False), (-0.004, 0.0021, True)]:
    m = -mean if lower else mean
    pdf = lambda x: stats.norm.pdf(x, m, sd)
    loss = integrate.quad(lambda x: -x * pdf(x), m - 40 * sd, 0, epsabs=0, epsrel=1e-13, limit=200)[0] if m - 40 * sd < 0 else 0.0
    risk = integrate.quad(lambda x: x * pdf(x), 0, m + 40 * sd, epsabs=0, epsrel=1e-13, limit=200)[0] if m + 40 * sd > 0 else 0.0
    bayes.append({"mean": mean, "sd": sd, "lower_is_better": lower,
                  "chance_to_win": f(stats.norm.sf(0, m, sd)), "expected_loss": f(loss), "risk_control": f(risk)})
out["bayes"] = bayes

# ---- 10. Non-inferiority: statsmodels one-sided tests against the margin --------
ni = []
for name, margin, lower in [("revenue_cents", 50.0, False), ("revenue_cents", 50.0, True),
                            ("small", 2.0, False), ("alpha_001_large", 0.5, True)]:
    c, t = raw_means[name]
    case = next(w for w in welch if w["name"] == name)
    alpha = case["alpha"]
    cm = CompareMeans(DescrStatsW(t.astype(float)), DescrStatsW(c.astype(float)))
    if lower:
        st, p, df = cm.ttest_ind(alternative="smaller", usevar="unequal", value=margin)
        bound = cm.tconfint_diff(alpha=alpha, alternative="smaller", usevar="unequal")[1]
    else:
        st, p, df = cm.ttest_ind(alternative="larger", usevar="unequal", value=-margin)
        bound = cm.tconfint_diff(alpha=alpha, alternative="larger", usevar="unequal")[0]
    ni.append({"kind": "mean", "case": name, "margin": margin, "relative": False,
               "lower_is_better": lower, "stat": f(st), "p_value": f(p), "bound": f(bound),
               "non_inferior": bool(p < alpha)})
for name, margin, lower in [("spec_like", 0.005, False), ("alpha_010", 0.002, True)]:
    case = next(w for w in props if w["name"] == name)
    c, t, alpha = case["control"], case["treatment"], case["alpha"]
    r = test_proportions_2indep(t["sum"], t["n"], c["sum"], c["n"], value=(margin if lower else -margin),
                                method="wald", compare="diff",
                                alternative=("smaller" if lower else "larger"))
    pc, pt = c["sum"] / c["n"], t["sum"] / t["n"]
    se = math.sqrt(pc * (1 - pc) / c["n"] + pt * (1 - pt) / t["n"])
    q = stats.norm.ppf(1 - alpha)
    bound = case["diff"] + q * se if lower else case["diff"] - q * se
    ni.append({"kind": "proportion", "case": name, "margin": margin, "relative": False,
               "lower_is_better": lower, "stat": f(r.statistic), "p_value": f(r.pvalue),
               "bound": bound, "non_inferior": bool(r.pvalue < alpha)})
# Relative margin: one-sided normal test of the lift against −margin (or +margin).
for kind, name, margin, lower in [("mean", "revenue_cents", 0.10, False), ("proportion", "spec_like", 0.05, True)]:
    pool = welch if kind == "mean" else props
    case = next(w for w in pool if w["name"] == name)
    L, alpha = case["lift"], case["alpha"]
    q = stats.norm.ppf(1 - alpha)
    if lower:
        st = (L["estimate"] - margin) / L["se"]; p = stats.norm.cdf(st); bound = L["estimate"] + q * L["se"]
    else:
        st = (L["estimate"] + margin) / L["se"]; p = stats.norm.sf(st); bound = L["estimate"] - q * L["se"]
    ni.append({"kind": kind, "case": name, "margin": margin, "relative": True, "lower_is_better": lower,
               "stat": f(st), "p_value": f(p), "bound": f(bound), "non_inferior": bool(p < alpha)})
out["noninferiority"] = ni

# ---- 11. Planning: closed forms with scipy.stats.norm; statsmodels cross-check ---
# Proportions: n = (z_{1−α'/2}√(2p̄q̄) + z_{1−β}√(p1q1+p2q2))² / δ²  (Fleiss, Levin & Paik 2003, eq. 4.14
# without continuity correction); means: n = 2σ²(z_{1−α'/2}+z_{1−β})²/δ²; α' = α/(variants−1).
def prop_n(p1, p2, alpha, power):
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    pb = (p1 + p2) / 2
    return (za * math.sqrt(2 * pb * (1 - pb)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / (p2 - p1) ** 2


plan = []
for base, mde, rel, alpha, power, k in [(0.10, 0.02, False, 0.05, 0.8, 2), (0.10, 0.10, True, 0.05, 0.8, 3),
                                        (0.03, 0.15, True, 0.05, 0.9, 5), (0.5, 0.01, False, 0.1, 0.8, 2)]:
    d = mde * base if rel else mde
    a = alpha / (k - 1)
    n = prop_n(base, base + d, a, power)
    plan.append({"kind": "proportion", "baseline": base, "mde": mde, "relative": rel, "alpha": alpha,
                 "power": power, "variants": k, "per_variant_exact": n, "per_variant": math.ceil(n),
                 "absolute_mde": d, "alpha_per_comparison": a})
for base, sd, mde, rel, alpha, power, k in [(50.0, 100.0, 5.0, False, 0.05, 0.8, 2),
                                            (50.0, 100.0, 0.05, True, 0.05, 0.8, 5),
                                            (120.0, 35.0, 2.0, False, 0.01, 0.95, 3)]:
    d = mde * base if rel else mde
    a = alpha / (k - 1)
    n = 2 * sd**2 * (stats.norm.ppf(1 - a / 2) + stats.norm.ppf(power)) ** 2 / d**2
    sm = NormalIndPower().solve_power(effect_size=d / sd, alpha=a, power=power, ratio=1.0, alternative="two-sided")
    plan.append({"kind": "mean", "baseline": base, "sd": sd, "mde": mde, "relative": rel, "alpha": alpha,
                 "power": power, "variants": k, "per_variant_exact": n, "per_variant": math.ceil(n),
                 "statsmodels_normal_ind_power": f(sm), "absolute_mde": d, "alpha_per_comparison": a})
out["sample_size"] = plan

mde = []
for base, n, alpha, power, k in [(0.10, 3841, 0.05, 0.8, 2), (0.03, 50000, 0.05, 0.9, 5), (0.6, 200, 0.05, 0.8, 2)]:
    a = alpha / (k - 1)
    d = optimize.brentq(lambda d: prop_n(base, base + d, a, power) - n, 1e-9, 1 - base - 1e-12, xtol=1e-16, rtol=1e-15)
    mde.append({"kind": "proportion", "baseline": base, "per_variant": n, "alpha": alpha, "power": power,
                "variants": k, "absolute": d, "relative": d / base})
for base, sd, n, alpha, power, k in [(50.0, 100.0, 6280, 0.05, 0.8, 2), (0.0, 12.5, 1000, 0.05, 0.8, 4)]:
    a = alpha / (k - 1)
    d = (stats.norm.ppf(1 - a / 2) + stats.norm.ppf(power)) * sd * math.sqrt(2 / n)
    es = NormalIndPower().solve_power(nobs1=n, alpha=a, power=power, ratio=1.0, alternative="two-sided")
    mde.append({"kind": "mean", "baseline": base, "sd": sd, "per_variant": n, "alpha": alpha, "power": power,
                "variants": k, "absolute": d, "relative": (d / base if base else None),
                "statsmodels_normal_ind_power": f(es * sd)})
out["mde"] = mde

# ---- Student's t, small to huge degrees of freedom: mpmath at 50 digits -----------
# (scipy 1.10's t.ppf is only good to ~5e-9, checked against mpmath; its t.sf is fine.)
# P(T > t) = I_{ν/(ν+t²)}(ν/2, 1/2) / 2; the quantile is the root of that in t.
import mpmath
mpmath.mp.dps = 50
tdist = []


def t_sf(x, nu):
    return mpmath.betainc(nu / 2, mpmath.mpf(1) / 2, 0, nu / (nu + x * x), regularized=True) / 2


for nu in [3.0, 8.5, 12.0, 30.0, 1e3, 99999.0, 1e5, 1e6, 1e7, 2e9]:
    N = mpmath.mpf(nu)
    for x in [0.3, 2.2, 6.0]:
        tdist.append({"nu": nu, "t": x, "survival": float(t_sf(mpmath.mpf(x), N))})
    for p in [0.95, 0.975, 0.995, 0.9995, 0.9999995]:
        q = mpmath.findroot(lambda x: t_sf(x, N) - (1 - mpmath.mpf(p)), stats.t.ppf(p, nu))
        tdist.append({"nu": nu, "p": p, "quantile": float(q)})
out["student_t"] = tdist

json.dump(out, sys.stdout, indent=1)
sys.stdout.write("\n")
