#!/usr/bin/env python3
"""Independent sample sizes for the planning of internal/stats (mpmath only).

Regenerate:

    cd internal/stats && python3 testdata/independent_plan.py > testdata/independent_plan.json

Each size solves the power equation itself rather than the Go code's closed forms:
- fixed horizon: the n at which a two-sided z-test at alpha' = alpha/comparisons detects the
  difference d with the given power, the far tail included (as statsmodels' NormalIndPower
  does), for unequal spreads sigma_c, sigma_t: Phi(d/se - z) + Phi(-d/se - z) = power with
  se = sqrt((sigma_c^2 + sigma_t^2)/n);
- sequential: the n at which the confidence sequence's boundary, found by integrating the
  Gaussian-mixture e-value numerically at 2n observations, sits z_power standard errors below d.
"""
import json
import sys

import mpmath as mp

mp.mp.dps = 25
COMMAND = "cd internal/stats && python3 testdata/independent_plan.py > testdata/independent_plan.json"


def norm_cdf(x):
    return (1 + mp.erf(x / mp.sqrt(2))) / 2


def norm_q(p):
    return mp.sqrt(2) * mp.erfinv(2 * mp.mpf(p) - 1)


def root(g, lo, hi):
    lo, hi = mp.mpf(lo), mp.mpf(hi)
    glo = g(lo)
    for _ in range(300):
        mid = (lo + hi) / 2
        gm = g(mid)
        if (gm > 0) == (glo > 0):
            lo, glo = mid, gm
        else:
            hi = mid
        if hi - lo < mp.mpf(10) ** -20 * hi:
            break
    return (lo + hi) / 2


def fixed_n(d, v, alpha, power):
    z = norm_q(1 - mp.mpf(alpha) / 2)
    pw = lambda n: norm_cdf(d / mp.sqrt(v / n) - z) + norm_cdf(-d / mp.sqrt(v / n) - z) - power
    return root(pw, 1, 10 ** 12)


def multiplier(n, alpha, tuning):
    l = -2 * mp.log(alpha)
    rho2 = (l + mp.log(l + 1)) / tuning

    def evalue(s):
        g = lambda lam: mp.exp(lam * s - lam * lam * n / 2 - lam * lam / (2 * rho2)) / mp.sqrt(2 * mp.pi * rho2)
        w = 1 / mp.sqrt(n + 1 / rho2)
        c = s / (n + 1 / rho2)
        return mp.quad(g, [c - 40 * w, c, c + 40 * w])
    # log E is smooth in S: the secant method from a rough start needs a handful of integrals.
    s = mp.findroot(lambda s: mp.log(evalue(s)) + mp.log(alpha), (3 * mp.sqrt(n), 3.5 * mp.sqrt(n)), solver="secant", tol=1e-24)
    return s / mp.sqrt(n)


def sequential_n(d, v, alpha, power, tuning=5000):
    zb = norm_q(power)
    n0 = ((zb + 3) / d) ** 2 * v
    g = lambda n: d * mp.sqrt(n / v) - multiplier(2 * n, mp.mpf(alpha), tuning) - zb
    return mp.findroot(g, (n0, 1.1 * n0), solver="secant", tol=1e-16)


cases = []
for kind, base, d, sc, st, alpha, power, comparisons, seq in [
        ("mean", 50, 2.5, 40, 42, 0.05, 0.8, 3, False),
        ("mean", 50, 2.5, 40, 42, 0.05, 0.9, 7, False),
        ("mean", 100, 5, 30, 20, 0.01, 0.8, 1, False),
        ("proportion", 0.2, 0.02, None, None, 0.05, 0.8, 1, True),
        ("mean", 50, 2.5, 40, 42, 0.05, 0.8, 3, True)]:
    if kind == "mean":
        v = mp.mpf(sc) ** 2 + mp.mpf(st) ** 2
    else:
        p1, p2 = mp.mpf(base), mp.mpf(base) + d
        v = p1 * (1 - p1) + p2 * (1 - p2)
    a = mp.mpf(alpha) / comparisons
    n = sequential_n(d, v, a, power) if seq else fixed_n(d, v, a, power)
    cases.append({"kind": kind, "baseline": base, "mde": d, "sd": sc, "sd_treatment": st, "alpha": alpha,
                  "power": power, "comparisons": comparisons, "sequential": seq, "per_variant_exact": float(n)})
json.dump({"command": COMMAND, "mpmath": mp.__version__, "cases": cases}, sys.stdout, indent=1)
print()
