#!/usr/bin/env python3
"""Independent interval references for internal/analysis tests (mpmath only).

Regenerate from the repository root (Python 3 with mpmath; scipy is not available here):

    python3 internal/analysis/testdata/independent.py > internal/analysis/testdata/independent.json

gen_reference.py (scipy/statsmodels) produced seed_expected.json and units_expected.json with
the SPEC's first methods (Wald intervals for proportions, delta-method lifts). This script adds
the intervals of the methods the report uses now, derived from their definitions without the
Go code's formulas:

- proportions: counts are read back from the expected means and units; the score interval of
  the difference and of the ratio are roots of the score statistic, whose restricted rates come
  from maximising the binomial likelihood numerically;
- means of the seeded report: the per-arm variances of the means are solved from the scipy
  reference's diff_se and delta-method lift_se (vc + vt = diff_se^2, vt + r^2 vc = (lift_se*mc)^2),
  and Fieller's interval is found as the roots of (mt - r mc)/sqrt(vt + r^2 vc) = +-t;
- units.csv: the raw rows are read directly;
- confidence sequences: the Gaussian-mixture e-value integrated numerically (mpmath.quad) and
  its boundary found where it reaches 1/alpha.

The numerical helpers (root finding, Student's t, Fieller, score statistics, the e-value) are
those of internal/stats/testdata/independent.py.
"""
import csv
import importlib.util
import json
import os
import sys

import mpmath as mp

mp.mp.dps = 30
HERE = os.path.dirname(os.path.abspath(__file__))
ALPHA = mp.mpf("0.05")
COMMAND = "python3 internal/analysis/testdata/independent.py > internal/analysis/testdata/independent.json"


def f(x):
    return float(x)


def _stats_reference():
    """The helpers of internal/stats/testdata/independent.py (same name, so loaded by path)."""
    path = os.path.join(HERE, "..", "..", "stats", "testdata", "independent.py")
    spec = importlib.util.spec_from_file_location("stats_reference", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ref = _stats_reference()
mp.mp.dps = 30
norm_q, t_q, root, fieller, evalue, seq_rho2 = ref.norm_q, ref.t_q, ref.bracket_root, ref.fieller, ref.evalue, ref.seq_rho2


def score_intervals(xc, nc, xt, nt):
    z = norm_q(1 - ALPHA / 2)
    zd = lambda d: ref.score_diff(xc, nc, xt, nt, d)
    zr = lambda r: ref.score_ratio(xc, nc, xt, nt, r)
    est = mp.mpf(xt) / nt - mp.mpf(xc) / nc
    out = {"diff_ci": [f(root(lambda d: zd(d) - z, -1 + mp.mpf(10) ** -15, est)),
                       f(root(lambda d: zd(d) + z, est, 1 - mp.mpf(10) ** -15))]}
    if xc > 0:
        rest = (mp.mpf(xt) / nt) / (mp.mpf(xc) / nc)
        rlo = 0 if xt == 0 else root(lambda r: zr(r) - z, mp.mpf(10) ** -12, rest)
        top = 2 * rest + 1
        while zr(top) > -z:
            top *= 2
        out["lift_ci"] = [f(rlo - 1), f(root(lambda r: zr(r) + z, max(rest, mp.mpf(10) ** -12), top) - 1)]
    return out


def sequence_multiplier(n, tuning=5000):
    n = mp.mpf(n)
    rho2 = seq_rho2(ALPHA, tuning)
    return root(lambda s: evalue(s, n, rho2) - 1 / ALPHA, 0, 100 * mp.sqrt(n)) / mp.sqrt(n)


def main():
    seed = json.load(open(os.path.join(HERE, "seed_expected.json")))
    units = seed["units"]
    out = {"command": COMMAND, "mpmath": mp.__version__, "seeded": [], "units": [], "sequence": {}}
    for r in seed["results"]:
        row = {"metric": r["metric"], "variant": r["variant"]}
        nc, nt = units["control"], units[r["variant"]]
        if r["test"] == "z":
            xc, xt = round(r["control_mean"] * nc), round(r["treatment_mean"] * nt)
            row.update(score_intervals(xc, nc, xt, nt))
        elif r["test"] == "welch_t" and r["lift"] is not None:
            mc, mt = mp.mpf(r["control_mean"]), mp.mpf(r["treatment_mean"])
            ratio = mt / mc
            s2, l2 = mp.mpf(r["diff_se"]) ** 2, (mp.mpf(r["lift_se"]) * mc) ** 2
            vc = (l2 - s2) / (ratio * ratio - 1)
            vt = s2 - vc
            df = (vc + vt) ** 2 / (vc ** 2 / (nc - 1) + vt ** 2 / (nt - 1))
            # The variances must also reproduce scipy's Welch degrees of freedom.
            assert abs(df - r["df"]) < 1e-6 * r["df"], (r["metric"], df, r["df"])
            row["lift_ci"] = fieller(mc, vc, mt, vt, t_q(1 - ALPHA / 2, df))
        else:
            continue
        out["seeded"].append(row)
        ntot = nc + nt
        if str(ntot) not in out["sequence"]:
            out["sequence"][str(ntot)] = f(sequence_multiplier(ntot))

    data = {}
    with open(os.path.join(HERE, "units.csv")) as fh:
        for rec in csv.DictReader(fh):
            d = data.setdefault(rec["variant"], {"converted": [], "revenue": []})
            d["converted"].append(int(rec["converted"]))
            d["revenue"].append(mp.mpf(rec["revenue"]))
    c = data["control"]
    for v in ("treat_a", "treat_b"):
        t = data[v]
        row = {"metric": "converted", "variant": v}
        row.update(score_intervals(sum(c["converted"]), len(c["converted"]), sum(t["converted"]), len(t["converted"])))
        out["units"].append(row)
        xs, ys = c["revenue"], t["revenue"]
        mc, mt = sum(xs) / len(xs), sum(ys) / len(ys)
        vc = sum((x - mc) ** 2 for x in xs) / (len(xs) - 1) / len(xs)
        vt = sum((y - mt) ** 2 for y in ys) / (len(ys) - 1) / len(ys)
        df = (vc + vt) ** 2 / (vc ** 2 / (len(xs) - 1) + vt ** 2 / (len(ys) - 1))
        out["units"].append({"metric": "revenue", "variant": v, "lift_ci": fieller(mc, vc, mt, vt, t_q(1 - ALPHA / 2, df))})
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
