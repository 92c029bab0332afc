#!/usr/bin/env bash
# Benchmark of `analyze report` (docs/benchmarks.md, section "analyze report").
#
# Generates 1,000,000 exposed shoppers and 5,000,000 events with SQL in a throwaway PostgreSQL
# cluster (cmd/devdb), then times `analyze report` end to end against the bare aggregate query
# it runs (printed by `analyze report --sql`, so it is the very same statement) in psql, in the
# same run, and against the report computed from events (--from events), whose figures must be
# the same to 1e-9. It builds the report rollups first (`server rollups`, timed). Each command
# runs once: the machine is shared. The cluster is removed at the end whatever happens.
#
#   scripts/bench/analyze.sh                 1M shoppers / 5M events, every report
#   SCALE=10 REPORTS="report cuped" nice -n 10 scripts/bench/analyze.sh     10M / 50M, two reports
#
# SCALE multiplies every count (0.01 for a quick try). REPORTS picks among report, cuped, segment, window (all by
# default). REFERENCE=off skips the reference reports (--from events), which at SCALE=10 take
# half an hour each; the figures' equality to 1e-9 is then left to the 1M runs and the tests.
# EXPLAIN=on prints EXPLAIN (ANALYZE, BUFFERS) of each report's statement after its timed run.
# Run it under nice: the generation, the rollup build and the reference reports (--from events)
# run at that priority and outside the bench lock; only the timed reports (the statement in psql
# and `analyze report` from the rollups) hold /work/wt/bench.lock, with the cluster's processes
# put back to priority 0 for them.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -z "${XSELL_BENCH_INNER:-}" ]; then
	# A fresh cluster even if DATABASE_URL is set: this script fills the database with 10M rows.
	exec env -u DATABASE_URL XSELL_BENCH_INNER=1 go run ./cmd/devdb exec -- bash "$0" "$@"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/" ./cmd/analyze ./cmd/server
export XSELL_LOG_LEVEL=error
"$work/server" migrate >/dev/null
psql=(psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1)

now() { date +%s.%N; }
scale=${SCALE:-1}
reports=${REPORTS:-report cuped segment window}
lock=/work/wt/bench.lock
k=$(python3 -c "print(round($scale * 1000))") # thousands of shoppers
echo "$(date -u +%H:%M:%S) generating $((k * 1000)) exposures and $((k * 5000)) events..."
t0=$(now)
"${psql[@]}" -v k="$k" <<'SQL'
SET synchronous_commit = off;
INSERT INTO experiments (key, name, status, phase, seed, hash_attribute, coverage, variants, target_products, metrics, started_at)
VALUES ('bench', 'Benchmark', 'running', 1, 'bench', 'shopper_id', 1,
  '[{"key":"control","name":"c","weight":0.3334,"control":true,"strategy":{"type":"none"}},
    {"key":"bundle10","name":"b","weight":0.3333,"strategy":{"type":"bundle","products":["sku-cond"],"discount_percent":10,"timing":"cart"}},
    {"key":"points200","name":"p","weight":0.3333,"strategy":{"type":"loyalty_points","products":["sku-cond"],"bonus_points":200,"timing":"checkout"}}]',
  '["sku-cond"]', '{"primary":"cross_sell_rate","secondary":["net_revenue"],"guardrails":["refund_rate"]}', now() - interval '30 days');
INSERT INTO experiment_phases (experiment_key, phase, seed, coverage, variants, started_at)
SELECT key, 1, seed, coverage, variants, started_at FROM experiments WHERE key = 'bench';

-- 1M exposed shoppers (times SCALE, as every count below) over the first 20 days; 0.1% of them seen in two variants.
INSERT INTO exposures (experiment_key, phase, shopper_id, variant, attributes, first_seen, multiple_variants)
SELECT 'bench', 1, 's' || g, (ARRAY['control','bundle10','points200'])[1 + g % 3],
       jsonb_build_object('device', CASE WHEN g % 5 < 3 THEN 'mobile' ELSE 'desktop' END, 'country', 'IT'),
       now() - interval '30 days' + random() * interval '20 days', g % 1000 = 0
FROM generate_series(1, :k * 1000) g;

-- 5M events of random exposed shoppers from 14 days before the start to now: 2.0M views,
-- 0.5M acceptances, 2.2M orders (one or two lines each), 0.3M refunds.
CREATE TEMP TABLE gen AS
SELECT g, 's' || (1 + floor(random() * :k * 1000)::int) AS shopper,
       now() - interval '44 days' + random() * interval '44 days' AS at,
       CASE WHEN g <= :k * 2000 THEN 'offer_viewed' WHEN g <= :k * 2500 THEN 'offer_accepted'
            WHEN g <= :k * 4700 THEN 'order_completed' ELSE 'order_refunded' END AS type
FROM generate_series(1, :k * 5000) g;
INSERT INTO events (id, type, shopper_id, occurred_at, experiment, order_id, amount, discount, currency)
SELECT 'e' || g, type, shopper, at, 'bench',
       CASE WHEN type IN ('order_completed', 'order_refunded') THEN 'o' || (g % (:k * 2200)) END,
       CASE WHEN type = 'order_completed' THEN 1000 + (g::bigint * 7919) % 9000 WHEN type = 'order_refunded' THEN 500 + g % 2000 END,
       CASE WHEN type = 'order_completed' THEN (g % 4 = 0)::int * 300 END,
       CASE WHEN type IN ('order_completed', 'order_refunded') THEN 'EUR' END
FROM gen;
INSERT INTO order_items (event_id, line, occurred_at, order_id, shopper_id, sku, quantity, unit_price)
SELECT 'e' || g, l, at, 'o' || (g % (:k * 2200)), shopper,
       CASE WHEN l = 0 THEN 'sku-' || (g % 50) ELSE 'sku-cond' END, 1, 1000
FROM gen, generate_series(0, 1) l
WHERE type = 'order_completed' AND (l = 0 OR g % 3 = 0);
-- Bonus points of the points200 arm: one ledger entry per qualifying order.
INSERT INTO loyalty_accounts (shopper_id, created_at)
SELECT DISTINCT shopper, now() - interval '40 days' FROM gen WHERE type = 'order_completed' AND g % 3 = 0;
INSERT INTO loyalty_entries (shopper_id, kind, points, source, order_id, experiment, variant, created_at)
SELECT shopper, 'earn', 200, 'order', 'o' || (g % (:k * 2200)), 'bench', 'points200', at
FROM gen WHERE type = 'order_completed' AND g % 3 = 0;
DROP TABLE gen;
VACUUM ANALYZE exposures, events, order_items, loyalty_entries, loyalty_accounts;
SQL
t1=$(now)
printf 'generated in %.0f s\n' "$(echo "$t1 - $t0" | bc)"
"${psql[@]}" -At -c "SELECT 'exposures', count(*) FROM exposures UNION ALL SELECT 'events', count(*) FROM events
  UNION ALL SELECT 'order_items', count(*) FROM order_items UNION ALL SELECT 'loyalty_entries', count(*) FROM loyalty_entries"

echo "$(date -u +%H:%M:%S) building the rollups (server rollups)..."
t0=$(now)
"$work/server" rollups >/dev/null
t1=$(now)
printf 'rollups built in %.0f s\n' "$(echo "$t1 - $t0" | bc)"

# same A B: the figures of two JSON reports agree to 1e-9 (relative, absolute below 1), all but
# where each read them from.
same() {
	python3 - "$1" "$2" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for r in (a, b):
    r.pop("data_source", None)
bad = []
def walk(x, y, path):
    if isinstance(x, dict) and isinstance(y, dict) and x.keys() == y.keys():
        for k in x: walk(x[k], y[k], path + "." + k)
    elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
        for i, (u, v) in enumerate(zip(x, y)): walk(u, v, "%s[%d]" % (path, i))
    elif isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool):
        if abs(x - y) > 1e-9 * max(1, abs(x), abs(y)): bad.append("%s: %r vs %r" % (path, x, y))
    elif x != y:
        bad.append("%s: %r vs %r" % (path, x, y))
print("same figures to 1e-9" if not bad else "DIFFERENT: " + "; ".join(bad[:5]))
sys.exit(1 if bad else 0)
PY
}

# prio N: the cluster's processes (the postmaster, whose new backends inherit it, and its
# children) at nice N; the timed reports run at 0, everything else at the script's own.
base_nice=$(nice)
pgdata=$("${psql[@]}" -At -c 'SHOW data_directory')
prio() {
	local pm
	pm=$(head -1 "$pgdata/postmaster.pid")
	renice -n "$1" -p "$pm" $(pgrep -P "$pm") >/dev/null
}
# The timed part of a report holds the bench lock (fd 9) at priority 0, and says the load.
lock_on() { prio 0; exec 9>"$lock"; flock 9; echo "    load before: $(cut -d' ' -f1-3 /proc/loadavg)"; }
lock_off() { echo "    load after: $(cut -d' ' -f1-3 /proc/loadavg)"; flock -u 9; exec 9>&-; prio "$base_nice"; }

bench() { # label, analyze flags...
	local label=$1; shift
	"$work/analyze" report --experiment bench --sql "$@" >"$work/q.sql"
	head -3 "$work/q.sql" | sed 's/^/    /'
	local s e q r ev
	lock_on
	# With the settings analyze runs it with, which the statement's own comment names (jit = off;
	# enable_sort = off for a segment).
	local opts
	opts=$(sed -n "s/.*(PGOPTIONS='\([^']*\)' for psql).*/\1/p" "$work/q.sql" | head -1)
	# Without them psql would time another plan (JIT on) than analyze runs: stop instead.
	: "${opts:?the comment of the statement names no PGOPTIONS for psql (internal/analysis/source.go note)}"
	s=$(now); PGOPTIONS="$opts" "${psql[@]}" -f "$work/q.sql" -o /dev/null; e=$(now); q=$(echo "$e - $s" | bc)
	s=$(now); "$work/analyze" report --experiment bench --format json "$@" >"$work/rollups.json"; e=$(now); r=$(echo "$e - $s" | bc)
	lock_off
	if [ "${EXPLAIN:-off}" = on ]; then
		{ echo 'EXPLAIN (ANALYZE, BUFFERS)'; cat "$work/q.sql"; } | PGOPTIONS="$opts" "${psql[@]}" -f - | sed 's/^/    | /'
	fi
	if [ "${REFERENCE:-on}" = off ]; then
		printf '%-28s bare query (psql): %.2f s   analyze report: %.2f s   --from events: not run (REFERENCE=off)\n' "$label" "$q" "$r"
		return
	fi
	# The reference, outside the lock and at the script's priority: the slow part.
	s=$(now); "$work/analyze" report --experiment bench --format json --from events "$@" >"$work/events.json"; e=$(now); ev=$(echo "$e - $s" | bc)
	printf '%-28s bare query (psql): %.2f s   analyze report: %.2f s   --from events: %.2f s   ' "$label" "$q" "$r" "$ev"
	same "$work/rollups.json" "$work/events.json"
}
echo
echo "$(date -u +%H:%M:%S) machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); $(psql --version); $(go version | cut -d' ' -f3); load: $(cut -d' ' -f1-3 /proc/loadavg); nice $base_nice"
for report in $reports; do
	case $report in
	report) bench "report" ;;
	cuped) bench "report --cuped" --cuped ;;
	segment) bench "report --segment device" --segment device ;;
	window) bench "report --window 7d" --window 7d ;;
	*) echo "unknown report $report" >&2; exit 2 ;;
	esac
done
