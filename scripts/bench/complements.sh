#!/usr/bin/env bash
# Benchmark of the complements model build (docs/benchmarks.md, section "Complements model").
#
# Generates 1,000,000 orders with 3,000,000 lines over 10,000 products with SQL generate_series
# in a throwaway PostgreSQL cluster (cmd/devdb): basket sizes 1 to 5 (3 on average), products
# drawn with a skew to the first ones, and the second line of half the orders the planted
# partner of the first (product p goes with p xor 1). Then times, RUNS times each:
#   - `server complements build`: one snapshot, end to end, and the database CPU it used;
#   - scripts/bench/pairsgo: the same counting done in Go over the lines streamed sorted by
#     order, the alternative to counting in SQL;
#   - `analyze complements --evaluate` once, with the default grid.
# CPU times are read from /proc (the cluster runs on this machine), so that they stand when
# other work shares the cores; wall times do not. The cluster is removed at the end.
#
#   scripts/bench/complements.sh        # RUNS=3 by default
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -z "${XSELL_BENCH_INNER:-}" ]; then
	# A fresh cluster even if DATABASE_URL is set: this script fills the database with 3M rows.
	exec env -u DATABASE_URL XSELL_BENCH_INNER=1 go run ./cmd/devdb exec -- bash "$0" "$@"
fi

RUNS=${RUNS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/" ./cmd/analyze ./cmd/server ./scripts/bench/pairsgo
export XSELL_LOG_LEVEL=info
"$work/server" migrate >/dev/null
psql=(psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1)

now() { date +%s.%N; }
# The CPU seconds the cluster has used: the postmaster's own and its reaped children's, plus
# its live children's.
postmaster=$(head -1 "$("${psql[@]}" -At -c 'SHOW data_directory')/postmaster.pid")
cluster_cpu() {
	{
		awk '{print $14 + $15 + $16 + $17}' "/proc/$postmaster/stat"
		for c in $(pgrep -P "$postmaster"); do awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null || true; done
	} | awk -v hz="$(getconf CLK_TCK)" '{s += $1} END {printf "%.1f", s / hz}'
}
# settled_cpu is cluster_cpu once it stops moving: a backend whose client has just gone is
# counted neither among the live children nor in the postmaster's reaped total until the
# postmaster reaps it, a moment later.
settled_cpu() {
	local a b
	a=$(cluster_cpu)
	while sleep 1; b=$(cluster_cpu); [ "$a" != "$b" ]; do a=$b; done
	echo "$b"
}

echo "generating 1,000,000 orders with 3,000,000 lines..."
t0=$(now)
"${psql[@]}" <<'SQL'
SET synchronous_commit = off;
INSERT INTO order_items (event_id, line, occurred_at, order_id, shopper_id, sku, quantity, unit_price)
SELECT 'e' || o, l, at, 'o' || o, 's' || (o % 300000),
       'sku-' || CASE WHEN l = 1 THEN p WHEN l = 2 AND r2 < 0.5 THEN (p # 1) ELSE floor(10000 * r ^ 2)::int END,
       1, 1000
FROM (SELECT o, now() - random() * interval '89 days' AS at, floor(10000 * random() ^ 2)::int AS p
      FROM generate_series(1, 1000000) o) orders,
     LATERAL (SELECT l, random() AS r, random() AS r2 FROM generate_series(1, 1 + o % 5) l) lines;
VACUUM ANALYZE order_items;
SQL
t1=$(now)
printf 'generated in %.0f s: ' "$(echo "$t1 - $t0" | bc)"
"${psql[@]}" -At -F ' ' -c "SELECT count(*) || ' lines,', count(DISTINCT order_id) || ' orders,', count(DISTINCT sku) || ' products' FROM order_items"

echo
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); $(psql --version); $(go version | cut -d' ' -f3); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$RUNS"); do
	c0=$(settled_cpu); s=$(now)
	line=$("$work/server" complements build | grep 'snapshot built')
	e=$(now); c1=$(settled_cpu)
	printf 'server complements build: wall %.1f s, database CPU %.1f s; %s\n' "$(echo "$e - $s" | bc)" "$(echo "$c1 - $c0" | bc)" \
		"$(echo "$line" | grep -o '"orders".*' | tr -d '{}"')"
	c0=$(settled_cpu)
	out=$("$work/pairsgo")
	c1=$(settled_cpu)
	printf 'counting in Go (pairsgo):  %s; database CPU %.1f s\n' "$out" "$(echo "$c1 - $c0" | bc)"
done
echo
s=$(now)
"$work/analyze" complements --evaluate 2>/dev/null
e=$(now)
printf 'analyze complements --evaluate: %.0f s\n' "$(echo "$e - $s" | bc)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
