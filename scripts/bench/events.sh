#!/usr/bin/env bash
# Events ingestion benchmark: 16 clients post batches of 100 events to POST /v1/events, then the
# same rows are loaded with psql \copy into the same (emptied) tables, and both rates printed.
#
# It starts its own server on its own durable PostgreSQL cluster (fsync and synchronous_commit
# on, as in production: a 200 means committed) in a temporary directory, and removes both.
#
#   scripts/bench/events.sh [CLIENTS [BATCH [BATCHES_PER_CLIENT]]]     defaults 16 100 100
#   ROUNDS=3 (HTTP and the raw COPY alternate this many times)
#   LOYALTY_JOBS=on (the server also credits the orders as they arrive; default off)
#
# With LOYALTY_JOBS=on the rounds are HTTP loads only (no COPY yardstick: its rows would be
# credited too), each with new order ids, against a running loyalty_points experiment whose
# 50,000 exposed shoppers are the load's (half of them in the bonus arm, whose product every
# order holds). During each load the crediting cursor and the rollup job's cursor are sampled
# twice a second against the newest order event, and the script prints each one's lag (how
# long ago the oldest order or refund it has not read was received), when it caught up after
# the load, and its rate. Round 0 warms up; a last round, "backlog", keeps both consumers
# waiting until the load is over, then times how fast they read it. Run it under the bench
# lock: LOYALTY_JOBS=on flock /work/wt/bench.lock scripts/bench/events.sh 16 100 300
#
# PROFILE=on (with LOYALTY_JOBS=on) loads pg_stat_statements and auto_explain into the
# server's cluster and prints, after each round, the statements that took the most time in it
# (then resets them), and at the end the plans of the statements that took over a second
# (auto_explain, with their timings). It costs some time of its own: its figures are a
# profile, not the benchmark's.
set -euo pipefail
cd "$(dirname "$0")/../.."

clients=${1:-16}
batch=${2:-100}
batches=${3:-100}

tmp=$(mktemp -d /tmp/xsell-bench-events.XXXXXX)
chmod 755 "$tmp" # the cluster runs as the postgres user when we are root: keep it in $tmp/pg
pid=""
cleanup() {
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null || true # the server stops its cluster on the way out
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/server" ./cmd/server
go build -o "$tmp/eventsload" ./scripts/bench/eventsload
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

if [ "${PROFILE:-off}" = on ]; then
	# The cluster made (and migrated) first, so that the libraries are loaded at its start.
	XSELL_DATA_DIR="$tmp/pg" XSELL_LOG_LEVEL=warn "$tmp/server" migrate >/dev/null
	cat >>"$tmp/pg/data/postgresql.auto.conf" <<'CONF'
shared_preload_libraries = 'pg_stat_statements, auto_explain'
pg_stat_statements.track = 'all'
auto_explain.log_min_duration = '1s'
auto_explain.log_analyze = on
auto_explain.log_buffers = on
auto_explain.log_nested_statements = on
CONF
fi
# Loyalty jobs off by default: the server then does what psql does, ingestion alone, as an
# ingestion instance of a fleet whose crediting runs on a worker. LOYALTY_JOBS=on measures the
# all-in-one server, whose crediting job reads and credits the orders during the load.
XSELL_DATA_DIR="$tmp/pg" XSELL_ADDR="127.0.0.1:$port" XSELL_API_KEYS="checkout:bench-key-0123456789abcdef0123456789ab" \
	XSELL_LOYALTY_JOBS="${LOYALTY_JOBS:-off}" XSELL_LOG_LEVEL=warn "$tmp/server" >"$tmp/server.log" 2>&1 &
pid=$!
for _ in $(seq 600); do
	curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
	kill -0 "$pid" 2>/dev/null || { cat "$tmp/server.log"; exit 1; }
	sleep 0.1
done
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { echo "server not ready"; cat "$tmp/server.log"; exit 1; }

echo "machine: nproc=$(nproc), $(lscpu | sed -n 's/^Model name: *//p'), load average before: $(cut -d' ' -f1-3 /proc/loadavg); loyalty jobs ${LOYALTY_JOBS:-off}"
psql_() { psql -X -q -v ON_ERROR_STOP=1 "host=$tmp/pg/socket port=5432 user=postgres dbname=postgres password=$(cat "$tmp/pg/password")" "$@"; }
# lags ROUNDS: HTTP loads with the loyalty jobs on, each sampled by sampler (below) until both
# consumers have read every order event of the load, then summarised by lag.py.
lags() {
	for r in $(seq 0 "$1") backlog; do
		local start
		start=$(psql_ -At -c 'SELECT COALESCE(max(seq), 0) FROM events')
		echo "round $r: load average before $(cut -d' ' -f1-3 /proc/loadavg)"
		sampler "$start" >"$tmp/lag.$r" &
		local spid=$! released=""
		if [ "$r" = backlog ]; then hold; fi
		out=$("$tmp/eventsload" -url "http://127.0.0.1:$port" -key bench-key-0123456789abcdef0123456789ab -prefix "r$r" \
			-clients "$clients" -batch "$batch" -batches "$batches")
		echo "$out" | sed 's/^/  /'
		if [ "$r" = backlog ]; then released=$(release); fi
		local total last
		total=$(psql_ -At -c "SELECT count(*) FROM events WHERE seq > $start AND type IN ('order_completed', 'order_refunded')")
		last=$(psql_ -At -c "SELECT COALESCE(max(seq), $start) FROM events WHERE seq > $start AND type IN ('order_completed', 'order_refunded')")
		for _ in $(seq 1200); do # until both have read it all, at most 10 minutes
			[ "$(tail -1 "$tmp/lag.$r" | cut -d'|' -f3,4)" = "$last|$last" ] && break
			sleep 0.5
		done
		kill "$spid"; wait "$spid" 2>/dev/null || true
		python3 scripts/bench/lag.py "$tmp/lag.$r" "$total" "$last" $(sed -n 's/^window: //p' <<<"$out") $released
		echo "  load average after $(cut -d' ' -f1-3 /proc/loadavg)"
		# Round 0 warms up: the server's tables then hold a load's rows with their planner
		# statistics, as on a server that has been running (autovacuum's analyze comes a
		# minute or more after a table's first rows, and the plans before it are no guide).
		[ "${PROFILE:-off}" = on ] && profile
		[ "$r" = 0 ] && { echo "  (round 0 warms up; analysing)"; psql_ -c ANALYZE; }
	done
	curl -s "http://127.0.0.1:$port/metrics" | grep -E '^xsell_(quarantined_total|analysis_rollup_events_total)' | sed 's/^/  /' || true
	if [ -s "$tmp/server.log" ]; then echo "server log (warnings and errors):"; tail -5 "$tmp/server.log"; fi
	if [ "${PROFILE:-off}" = on ]; then
		echo "statements over a second (auto_explain; the whole server log copied to ${PROFILE_LOG:=/tmp/xsell-events-profile.log}):"
		cp "$tmp/pg/postgres.log" "$PROFILE_LOG"
		grep -A200 'duration: [0-9.]* ms  plan:' "$tmp/pg/postgres.log" | cut -c1-240 | head -${PROFILE_LINES:-400} || true
	fi
}

# profile prints the statements that took the most time since the last call, and resets them.
profile() {
	echo "  statements by total time (pg_stat_statements):"
	psql_ -c "SELECT calls, round(total_exec_time) AS total_ms, round(mean_exec_time::numeric, 2) AS mean_ms, rows,
			round((jit_generation_time + jit_inlining_time + jit_optimization_time + jit_emission_time)::numeric) AS jit_ms,
			left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS query
		FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 25" | sed 's/^/    /'
	psql_ -Atc 'SELECT pg_stat_statements_reset()' >/dev/null
}

# hold keeps both consumers' cursor rows locked (they wait on them) until release, which
# prints when it let go: the backlog round measures how fast each one reads a load's orders
# once they are all there, with the machine no longer busy ingesting.
hold() {
	mkfifo "$tmp/hold"
	psql_ <"$tmp/hold" >/dev/null &
	exec 8>"$tmp/hold"
	echo "BEGIN; SELECT FROM loyalty_event_cursor FOR UPDATE; SELECT FROM analysis_rollup_state FOR UPDATE;" >&8
}
release() {
	echo "COMMIT;" >&8
	exec 8>&-
	wait %?hold 2>/dev/null || true
	rm -f "$tmp/hold"
	python3 -c 'import time; print("%.3f" % time.time())'
}

# sampler START: twice a second, the time, the seq of the newest order event after seq START,
# how far crediting (loyalty_event_cursor) and the rollup job (analysis_rollup_state) have read
# (at most that seq), and each one's lag: how long ago the oldest order event it has not read
# was received (0 if none). Each figure is an index probe: counting the load's events at every
# sample, as this did before, cost a third of a core by the end of a round.
sampler() {
	while :; do
		# jit off: the cursor tables have no statistics, and compiling took seconds under load.
		PGOPTIONS='-c jit=off' psql_ -At -c "SELECT round(extract(epoch FROM clock_timestamp())::numeric, 3), l.seq,
				LEAST(c.seq, l.seq), LEAST(r.seq, l.seq),
				round(COALESCE(extract(epoch FROM clock_timestamp() - (SELECT received_at FROM events
					WHERE seq > GREATEST(c.seq, $1) AND type IN ('order_completed', 'order_refunded') ORDER BY seq LIMIT 1)), 0)::numeric, 3),
				round(COALESCE(extract(epoch FROM clock_timestamp() - (SELECT received_at FROM events
					WHERE seq > GREATEST(r.seq, $1) AND type IN ('order_completed', 'order_refunded') ORDER BY seq LIMIT 1)), 0)::numeric, 3)
			FROM (SELECT COALESCE(max(seq), $1) AS seq FROM events WHERE seq > $1 AND type IN ('order_completed', 'order_refunded')) l,
				loyalty_event_cursor c, analysis_rollup_state r" || true
		sleep 0.5
	done
}

rounds=${ROUNDS:-3}
if [ "${LOYALTY_JOBS:-off}" = on ]; then
	# The load's shoppers in a running loyalty_points experiment, and one event so that the
	# rollup job's first pass (a rebuild from scratch) is done before the load.
	[ "${PROFILE:-off}" = on ] && psql_ -c 'CREATE EXTENSION pg_stat_statements'
	psql_ <<'SQL'
INSERT INTO experiments (key, name, status, phase, seed, hash_attribute, coverage, variants, target_products, metrics, started_at)
VALUES ('pdp-bundle', 'Benchmark', 'running', 1, 'bench', 'shopper_id', 1,
  '[{"key":"control","name":"c","weight":0.5,"control":true,"strategy":{"type":"none"}},
    {"key":"points200","name":"p","weight":0.5,"strategy":{"type":"loyalty_points","products":["sku-conditioner"],"bonus_points":200,"timing":"checkout"}}]',
  '["sku-conditioner"]', '{"primary":"cross_sell_rate","secondary":["net_revenue"],"guardrails":["refund_rate"]}', now() - interval '1 day');
INSERT INTO experiment_phases (experiment_key, phase, seed, coverage, variants, started_at)
SELECT key, 1, seed, coverage, variants, started_at FROM experiments WHERE key = 'pdp-bundle';
INSERT INTO exposures (experiment_key, phase, shopper_id, variant, attributes, first_seen, multiple_variants)
SELECT 'pdp-bundle', 1, 's-' || g, (ARRAY['control','points200'])[1 + g % 2], '{}', now() - interval '1 day', false
FROM generate_series(0, 49999) g;
INSERT INTO events (id, type, shopper_id, occurred_at, experiment) VALUES ('warm-up', 'offer_viewed', 's-0', now(), 'pdp-bundle');
-- As autovacuum would have by then on a server whose shoppers arrived over days.
ANALYZE experiments, experiment_phases, exposures, events;
SQL
	for _ in $(seq 600); do
		[ "$(psql_ -At -c 'SELECT (SELECT seq FROM analysis_rollup_state) > 0 AND NOT EXISTS (SELECT FROM analysis_rollup_queue)')" = t ] && break
		sleep 0.5
	done
	lags "$rounds"
	exit
fi
# The VM's speed drifts from one run to the next, so HTTP and the raw COPY alternate ROUNDS
# times on emptied tables, and each round's ratio compares two loads made seconds apart.
summary=()
for r in $(seq "$rounds"); do
	psql_ -c 'TRUNCATE event_ids, events, order_items' -c CHECKPOINT
	out=$("$tmp/eventsload" -url "http://127.0.0.1:$port" -key bench-key-0123456789abcdef0123456789ab -clients "$clients" -batch "$batch" \
		-batches "$batches" -csv "$tmp")
	echo "round $r $out"
	http=$(sed -n 's/.* \([0-9]*\) events\/s.*/\1/p' <<<"$out")

	# The raw COPY: the same rows into the same tables with their indexes, in one transaction.
	psql_ -c 'TRUNCATE event_ids, events, order_items' -c CHECKPOINT
	rows=$(wc -l <"$tmp/events.csv")
	t0=$(date +%s.%N)
	psql_ -1 <<EOF
\copy event_ids (id, occurred_at) FROM '$tmp/event_ids.csv' WITH (FORMAT csv)
\copy events (id, type, shopper_id, occurred_at, experiment, order_id, amount, discount, currency) FROM '$tmp/events.csv' WITH (FORMAT csv)
\copy order_items (event_id, line, occurred_at, order_id, shopper_id, sku, quantity, unit_price) FROM '$tmp/order_items.csv' WITH (FORMAT csv)
EOF
	t1=$(date +%s.%N)
	copy=$(python3 -c "print(round($rows / ($t1 - $t0)))")
	echo "round $r psql \\copy: $rows events in $(python3 -c "print(f'{$t1 - $t0:.2f}')") s, $copy events/s"
	summary+=("  round $r  HTTP $http events/s, psql \\copy $copy events/s, HTTP/COPY $(python3 -c "print(f'{$http / $copy:.2f}')")")
done
curl -s "http://127.0.0.1:$port/metrics" | awk '
	/^xsell_events_group_events_sum/ {es=$2} /^xsell_events_group_events_count/ {ec=$2}
	/^xsell_events_commit_seconds_sum/ {cs=$2}
	/^process_cpu_seconds_total/ {cpu=$2}
	END {printf "server process CPU: %.1f s over all rounds\n", cpu; printf "group commit: %d transactions, %.0f events each on average, %.1f ms each on average\n", ec, es/ec, 1000*cs/ec}'
echo "summary (load average after: $(cut -d' ' -f1-3 /proc/loadavg)):"
printf '%s\n' "${summary[@]}"
if [ -s "$tmp/server.log" ]; then echo "server log (warnings and errors):"; tail -5 "$tmp/server.log"; fi
