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

from independent import bracket_root as root, evalue, norm_cdf, norm_q, seq_rho2

mp.mp.dps = 25
COMMAND = "cd internal/stats && python3 testdata/independent_plan.py > testdata/independent_plan.json"


def fixed_n(d, v, alpha, power):
    z = norm_q(1 - mp.mpf(alpha) / 2)
    pw = lambda n: norm_cdf(d / mp.sqrt(v / n) - z) + norm_cdf(-d / mp.sqrt(v / n) - z) - power
    return root(pw, 1, 10 ** 12)


def multiplier(n, alpha, tuning):
    rho2 = seq_rho2(alpha, tuning)
    # log E is smooth in S: the secant method from a rough start needs a handful of integrals.
    s = mp.findroot(lambda s: mp.log(evalue(s, n, rho2)) + mp.log(alpha), (3 * mp.sqrt(n), 3.5 * mp.sqrt(n)), solver="secant", tol=1e-24)
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
