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
# The VM's speed drifts from one run to the next, so HTTP and the raw COPY alternate ROUNDS
# times on emptied tables, and each round's ratio compares two loads made seconds apart.
rounds=${ROUNDS:-3}
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
