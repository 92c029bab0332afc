"""Summarises the lag samples of scripts/bench/events.sh (LOYALTY_JOBS=on).

    python3 lag.py SAMPLES TOTAL LAST LOAD_START LOAD_END [RELEASED]

SAMPLES has one line a sample: time|the newest order event's seq|crediting's cursor|the rollup
job's cursor (both at most that seq)|crediting's lag|rollups' lag (seconds). TOTAL is the load's
order events (orders and refunds), LAST the seq of its last one; the load ran from LOAD_START
to LOAD_END (Unix seconds). For each consumer it prints the largest lag seen,
the median during the load, when it had read every order event (seconds after the load's end)
and its rate: TOTAL over the time from the load's start until then. With RELEASED (the
consumers were kept waiting until then), the rate is TOTAL over the time from RELEASED.
"""
import statistics
import sys

path, total, last, t0, t1 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
released = float(sys.argv[6]) if len(sys.argv) > 6 else None
rows = []
for line in open(path):
    f = line.strip().split("|")
    if len(f) == 6:
        rows.append((float(f[0]), int(f[1]), int(f[2]), int(f[3]), float(f[4]), float(f[5])))
print("  %d order events (orders and refunds) in %.2f s: %.0f/s ingested; %d samples" % (total, t1 - t0, total / (t1 - t0), len(rows)))
for name, read, lag in (("crediting", 2, 4), ("rollups", 3, 5)):
    during = [r[lag] for r in rows if t0 <= r[0] <= t1]
    done = next((r[0] for r in rows if r[read] == last and r[1] == last), None)
    worst = max((r[lag] for r in rows), default=float("nan"))
    if done is None:
        print("  %-9s lag max %.2f s, median during the load %.2f s; NOT caught up when sampling stopped" % (
            name, worst, statistics.median(during) if during else float("nan")))
        continue
    if released is not None:
        print("  %-9s held until %.2f s after the load; read the %d order events in %.2f s: %.0f order events/s" % (
            name, released - t1, total, done - released, total / (done - released)))
        continue
    print("  %-9s lag max %.2f s, median during the load %.2f s; caught up %.2f s after the load; %.0f order events/s" % (
        name, worst, statistics.median(during) if during else float("nan"), max(done - t1, 0), total / (done - t0)))
