#!/usr/bin/python3
"""Independent reference values for internal/analysis tests.

Run from the repository root:
    /usr/bin/python3 internal/analysis/testdata/gen_reference.py
(Debian python3-scipy 1.10.1, python3-statsmodels 0.13.5, python3-numpy.)

It writes a seeded experiment (exposures, events, order items, loyalty entries) as CSV, a
units.csv for file mode, and the statistics expected of them, computed here with
scipy/statsmodels and hand-written formulas from the per-shopper values that this script
derives itself from the raw rows under the SPEC §6 rules — nothing from the Go code.
"""
import csv, json, math, os
from datetime import datetime, timedelta, timezone
import numpy as np
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower

HERE = os.path.dirname(os.path.abspath(__file__))
ALPHA = 0.05
rng = np.random.RandomState(20261125)
T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
END = T0 + timedelta(days=20)          # the phase ended here (experiment stopped)
POINT_VALUE = 2
TARGET = "sku-cond"
VARIANTS = [("control", 0.34), ("bundle10", 0.33), ("points200", 0.33)]
ts = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")

exposures, events, items, entries = [], [], [], []
per = {}  # shopper -> per-shopper values, computed by the rules below
conv_p = {"control": 0.35, "bundle10": 0.45, "points200": 0.40}
cond_p = {"control": 0.15, "bundle10": 0.45, "points200": 0.35}
counts = {"control": 160, "bundle10": 150, "points200": 150}
sid = 0
for v, _ in VARIANTS:
    for _ in range(counts[v]):
        sid += 1
        s = "s%04d" % sid
        first = T0 + timedelta(seconds=int(rng.randint(0, 10 * 86400)))
        exposures.append((s, v, ts(first), "mobile" if rng.rand() < 0.5 else "desktop", "false"))
        val = dict(variant=v, orders=0, rev=0, cost=0, pre=0, cross=0, refunded=0)
        # Orders before exposure: the CUPED covariate counts those in the 14 days before.
        for _ in range(rng.poisson(0.6)):
            t = first - timedelta(seconds=int(rng.randint(1, 20 * 86400)))
            amt = int(rng.randint(1000, 9000))
            events.append(("pre-%s-%d" % (s, len(events)), "order_completed", s, ts(t), "o%d" % len(events), amt, 0))
            if first - t <= timedelta(days=14):
                val["pre"] += amt
        n_orders = rng.binomial(3, conv_p[v])
        for k in range(n_orders):
            t = first + timedelta(seconds=int(rng.randint(0, 14 * 86400)))
            oid = "o-%s-%d" % (s, k)
            amt = int(rng.randint(1000, 9000))
            has_cond = rng.rand() < cond_p[v]
            disc = int(amt // 10) if (v == "bundle10" and has_cond) else 0
            eid = "e-%s-%d" % (s, k)
            events.append((eid, "order_completed", s, ts(t), oid, amt, disc))
            items.append((eid, 0, ts(t), oid, s, "sku-sham", 1, amt))
            if has_cond:
                items.append((eid, 1, ts(t), oid, s, TARGET, 1, 500))
            inside = t < END
            bonus = 0
            if v == "points200" and has_cond:
                entries.append((s, "earn", 200, "", "seeded", "points200", ts(t), oid))
                bonus = 200
            entries.append((s, "earn", amt // 100, "", "", "", ts(t), oid))  # base earn: not an offer cost
            refunded = rng.rand() < 0.15
            rt = t + timedelta(days=2)
            if refunded:
                ramt = int(amt // 2)
                events.append(("r-%s-%d" % (s, k), "order_refunded", s, ts(rt), oid, ramt, 0))
                if bonus:
                    # the reversal names its earn entry, not the experiment
                    entries.append((s, "reverse", -200, "reverses-bonus", "", "", ts(rt), oid))
            if inside:
                val["orders"] += 1
                val["rev"] += amt
                val["cost"] += disc + bonus * POINT_VALUE
                val["cross"] |= int(has_cond)
            if refunded and rt < END:
                val["rev"] -= int(amt // 2)
                val["refunded"] = 1
                if bonus:
                    val["cost"] -= 200 * POINT_VALUE
        per[s] = val

# Two shoppers flagged as seen in two variants, with orders: left out, counted.
for k in range(2):
    s = "dup%d" % k
    exposures.append((s, "bundle10", ts(T0 + timedelta(days=1)), "mobile", "true"))
    events.append(("dup-e%d" % k, "order_completed", s, ts(T0 + timedelta(days=2)), "dup-o%d" % k, 5000, 0))


def write(name, header, rows):
    with open(os.path.join(HERE, name), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


write("seed_exposures.csv", ["shopper_id", "variant", "first_seen", "device", "multiple_variants"], exposures)
write("seed_events.csv", ["id", "type", "shopper_id", "occurred_at", "order_id", "amount", "discount"], events)
write("seed_items.csv", ["event_id", "line", "occurred_at", "order_id", "shopper_id", "sku", "quantity", "unit_price"], items)
write("seed_loyalty.csv", ["shopper_id", "kind", "points", "reason", "experiment", "variant", "created_at", "order_id"], entries)

z = stats.norm.ppf(1 - ALPHA / 2)


def clean(x):
    # JSON has no NaN or infinity: an undefined value (e.g. a lift over a control mean of 0) is null.
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [clean(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def lift(mc, vmc, mt, vmt):
    # delta method for mt/mc - 1 with independent arms
    if mc == 0:
        return float("nan"), float("nan"), [float("nan"), float("nan")]
    est = mt / mc - 1
    r = mt / mc
    se = math.sqrt((vmt + r * r * vmc) / (mc * mc))
    return est, se, [est - z * se, est + z * se]


def prop(c, t):
    nc, nt, sc, st = len(c), len(t), sum(c), sum(t)
    _, p = proportions_ztest([st, sc], [nt, nc], alternative="two-sided")  # pooled
    pc, pt = sc / nc, st / nt
    vmc, vmt = pc * (1 - pc) / nc, pt * (1 - pt) / nt
    se = math.sqrt(vmc + vmt)
    d = pt - pc
    est, lse, lci = lift(pc, vmc, pt, vmt)
    return dict(control_mean=pc, treatment_mean=pt, diff=d, diff_ci=[d - z * se, d + z * se], diff_se=se,
                lift=est, lift_se=lse, lift_ci=lci, p_value=p, test="z")


def welch(c, t, test="welch_t"):
    c, t = np.asarray(c, float), np.asarray(t, float)
    res = stats.ttest_ind(t, c, equal_var=False)
    vmc, vmt = c.var(ddof=1) / len(c), t.var(ddof=1) / len(t)
    se = math.sqrt(vmc + vmt)
    df = (vmc + vmt) ** 2 / (vmc ** 2 / (len(c) - 1) + vmt ** 2 / (len(t) - 1))
    h = stats.t.ppf(1 - ALPHA / 2, df) * se
    d = t.mean() - c.mean()
    est, lse, lci = lift(c.mean(), vmc, t.mean(), vmt)
    return dict(control_mean=c.mean(), treatment_mean=t.mean(), diff=d, diff_ci=[d - h, d + h], diff_se=se, df=df,
                lift=est, lift_se=lse, lift_ci=lci, p_value=float(res.pvalue), test=test)


def ratio(cnum, cden, tnum, tden):
    def arm(num, den):
        num, den = np.asarray(num, float), np.asarray(den, float)
        n = len(num)
        r = num.sum() / den.sum()
        cov = np.cov(num, den, ddof=1)
        var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (n * den.mean() ** 2)
        return r, var
    rc, vc = arm(cnum, cden)
    rt, vt = arm(tnum, tden)
    se = math.sqrt(vc + vt)
    d = rt - rc
    p = 2 * stats.norm.sf(abs(d / se))
    est, lse, lci = lift(rc, vc, rt, vt)
    return dict(control_mean=rc, treatment_mean=rt, diff=d, diff_ci=[d - z * se, d + z * se], diff_se=se,
                lift=est, lift_se=lse, lift_ci=lci, p_value=p, test="delta_z")


def by(v, key):
    return [per[s][key] for s in per if per[s]["variant"] == v]


def report(cuped):
    res = []
    metrics = {
        "cross_sell_rate": lambda v: by(v, "cross"),
        "conversion": lambda v: [int(o > 0) for o in by(v, "orders")],
        "refund_rate": lambda v: by(v, "refunded"),
        "revenue": lambda v: by(v, "rev"),
        "offer_cost": lambda v: by(v, "cost"),
        "net_revenue": lambda v: [r - c for r, c in zip(by(v, "rev"), by(v, "cost"))],
    }
    for m, get in metrics.items():
        theta, xbar = None, None
        if cuped and m in ("revenue", "offer_cost", "net_revenue"):
            ys = np.concatenate([np.asarray(get(v), float) for v, _ in VARIANTS])
            xs = np.concatenate([np.asarray(by(v, "pre"), float) for v, _ in VARIANTS])
            theta = np.cov(xs, ys, ddof=1)[0, 1] / xs.var(ddof=1)  # pooled over all arms
            xbar = xs.mean()
        for v, _ in VARIANTS[1:]:
            if m in ("cross_sell_rate", "conversion", "refund_rate"):
                r = prop(get("control"), get(v))
            elif theta is not None:
                adj = lambda w: [y - theta * (x - xbar) for y, x in zip(get(w), by(w, "pre"))]
                r = welch(adj("control"), adj(v), test="cuped_welch_t")
                r["theta"] = theta
            else:
                r = welch(get("control"), get(v))
            r.update(metric=m, variant=v)
            res.append(r)
        if m == "revenue":
            for v, _ in VARIANTS[1:]:
                r = ratio(by("control", "rev"), by("control", "orders"), by(v, "rev"), by(v, "orders"))
                r.update(metric="aov", variant=v)
                res.append(r)
    padj = multipletests([r["p_value"] for r in res], method="holm")[1]
    for r, p in zip(res, padj):
        r["p_adjusted"] = p
    return res


obs = [sum(1 for s in per if per[s]["variant"] == v) for v, _ in VARIANTS]
chi2, srm_p = stats.chisquare(obs, [sum(obs) * w for _, w in VARIANTS])
plain = report(False)
# Guardrail refund_rate, absolute margin 0.05, lower is better: H0 diff >= margin, one-sided z with unpooled SE.
guard = []
for r in plain:
    if r["metric"] == "refund_rate":
        stat = (r["diff"] - 0.05) / r["diff_se"]
        guard.append(dict(variant=r["variant"], estimate=r["diff"], p_value=stats.norm.cdf(stat),
                          bound=r["diff"] + stats.norm.ppf(1 - ALPHA) * r["diff_se"]))
expected = dict(units=dict(zip([v for v, _ in VARIANTS], obs)), excluded=2,
                srm=dict(chi2=chi2, p_value=srm_p), results=plain, cuped=report(True), guardrails=guard)
with open(os.path.join(HERE, "seed_expected.json"), "w") as f:
    json.dump(clean(expected), f, indent=1)

# ---- file mode: units.csv -------------------------------------------------------------------
frng = np.random.RandomState(7)
rows, data = [], {}
for v, n, pc, mu in [("control", 210, 0.20, 50.0), ("treat_a", 190, 0.27, 55.0), ("treat_b", 200, 0.22, 49.0)]:
    for i in range(n):
        conv = int(frng.rand() < pc)
        rev = round(float(frng.gamma(2.0, mu / 2.0)) if conv or frng.rand() < 0.5 else 0.0, 2)
        rows.append(("%s-%d" % (v, i), v, conv, rev))
frng.shuffle(rows)
rows = [tuple(r) for r in rows]
write("units.csv", ["unit_id", "variant", "converted", "revenue"], rows)
for _, v, c, r in rows:
    data.setdefault(v, {"converted": [], "revenue": []})
    data[v]["converted"].append(int(c))
    data[v]["revenue"].append(float(r))
fres = []
for m in ["converted", "revenue"]:
    for v in ["treat_a", "treat_b"]:
        r = prop(data["control"][m], data[v][m]) if m == "converted" else welch(data["control"][m], data[v][m])
        r.update(metric=m, variant=v)
        fres.append(r)
fp = [r["p_value"] for r in fres]
for r, a, b in zip(fres, multipletests(fp, method="holm")[1], multipletests(fp, method="fdr_bh")[1]):
    r["p_holm"], r["p_bh"] = a, b
order = []
for _, v, _, _ in rows:
    if v not in order:
        order.append(v)
fobs = [len(data[v]["converted"]) for v in order]
fchi2, fsrm = stats.chisquare(fobs)
with open(os.path.join(HERE, "units_expected.json"), "w") as f:
    json.dump(clean(dict(order=order, units=fobs, srm=dict(chi2=fchi2, p_value=fsrm), results=fres)), f, indent=1)

# ---- plan ------------------------------------------------------------------------------------
def fleiss(p1, p2, a, power):
    # Fleiss, Levin & Paik eq. 4.14 without continuity correction, written out here
    za, zb = stats.norm.ppf(1 - a / 2), stats.norm.ppf(power)
    pbar = (p1 + p2) / 2
    return (za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / (p2 - p1) ** 2

plans = []
for b, mde, rel, k, a, pw in [(0.10, 0.10, True, 2, 0.05, 0.8), (0.05, 0.01, False, 3, 0.05, 0.9), (0.30, 0.02, False, 2, 0.01, 0.8)]:
    d = mde * b if rel else mde
    plans.append(dict(kind="proportion", baseline=b, mde=mde, relative=rel, variants=k, alpha=a, power=pw,
                      per_variant=math.ceil(fleiss(b, b + d, a / (k - 1), pw))))
for mean, sd, mde, k, a, pw in [(40.0, 25.0, 2.0, 2, 0.05, 0.8), (40.0, 25.0, 1.0, 4, 0.05, 0.8)]:
    n = NormalIndPower().solve_power(effect_size=mde / sd, alpha=a / (k - 1), power=pw, ratio=1.0, alternative="two-sided")
    plans.append(dict(kind="mean", baseline=mean, stddev=sd, mde=mde, relative=False, variants=k, alpha=a, power=pw,
                      per_variant=math.ceil(n)))
with open(os.path.join(HERE, "plan_expected.json"), "w") as f:
    json.dump(clean(plans), f, indent=1)
print("wrote", len(exposures), "exposures,", len(events), "events,", len(items), "items,", len(entries), "ledger entries")
