#!/usr/bin/env bash
# Assignment throughput: wrk against POST /v1/assign with 20 running experiments (targeting,
# half of them layered) and, in the same run, against a bare Gin handler that returns a fixed
# body of the same size. Starts its own throwaway PostgreSQL; needs wrk (apt-get install wrk).
#
#   scripts/bench/assign.sh [DURATION] [CONNECTIONS]      # defaults: 15s, 32
#   PIN=1 scripts/bench/assign.sh                          # wrk on CPU 0, servers on CPU 1
#   ROUNDS=3 (bare and xsell alternate this many times), WRK_THREADS=2
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-15s}
conns=${2:-32}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

if [ -z "${DATABASE_URL:-}" ]; then
  exec go run ./cmd/devdb exec -- "$0" "$@"
fi

# PIN=1 puts wrk on CPU 0 and the servers on CPU 1, so that neither preempts the other.
wrkcpu=(); srvcpu=()
if [ "${PIN:-0}" = 1 ]; then wrkcpu=(taskset -c 0); srvcpu=(taskset -c 1); fi
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/server" ./cmd/server
go build -o "$work/bare" ./scripts/bench/bare

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
xport=$(port); bport=$(port)
XSELL_ADDR=127.0.0.1:$xport XSELL_LOG_LEVEL=${XSELL_LOG_LEVEL:-warn} "${srvcpu[@]}" "$work/server" >"$work/server.log" 2>&1 &
xpid=$!
for _ in $(seq 100); do curl -sf "127.0.0.1:$xport/readyz" >/dev/null && break; sleep 0.1; done

admin=(-H 'Authorization: Bearer dev-admin' -H 'Content-Type: application/json')
for i in $(seq -w 1 20); do
  layer=''
  if [ $((10#$i % 2)) -eq 0 ]; then layer=', "layer": {"name": "checkout", "range": [0, 0.8]}'; fi
  curl -sf "${admin[@]}" -X POST "127.0.0.1:$xport/v1/experiments" -d '{
    "key": "bench-'"$i"'", "name": "bench", "coverage": 0.9,
    "targeting": {"country": {"$in": ["IT", "FR", "DE"]}, "device": "mobile", "visits": {"$gt": 2}},
    "variants": [
      {"key": "control", "name": "C", "weight": 0.34, "strategy": {"type": "none"}},
      {"key": "bundle", "name": "B", "weight": 0.33, "strategy": {"type": "bundle", "products": ["sku-2"], "discount_percent": 10, "timing": "cart"}},
      {"key": "points", "name": "P", "weight": 0.33, "strategy": {"type": "loyalty_points", "products": ["sku-2"], "bonus_points": 100, "timing": "checkout"}}
    ]'"$layer"'}' >/dev/null
  curl -sf "${admin[@]}" -X POST "127.0.0.1:$xport/v1/experiments/bench-$i/start" >/dev/null
done
# The bare handler answers with a real answer's bytes.
curl -sf -H 'Authorization: Bearer dev-checkout' -H 'Content-Type: application/json' -X POST "127.0.0.1:$xport/v1/assign" \
  -d '{"shopper_id":"shopper-1-1","attributes":{"country":"IT","device":"mobile","visits":5}}' >"$work/body.json"
"${srvcpu[@]}" "$work/bare" "127.0.0.1:$bport" "$work/body.json" &
bpid=$!
for _ in $(seq 100); do curl -sf -X POST "127.0.0.1:$bport/v1/assign" >/dev/null && break; sleep 0.1; done

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "answer size: $(wc -c <"$work/body.json") bytes, $(grep -o '"experiment"' "$work/body.json" | wc -l) assignments"
# CPU time (user + system, in clock ticks) a process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() {
  local before; before=$(ticks "$4")
  SHOPPERS=$3 "${wrkcpu[@]}" wrk -t"${WRK_THREADS:-2}" -c"$conns" -d"$duration" --latency -s scripts/bench/assign.lua "http://127.0.0.1:$1/v1/assign" | tee "$work/$2.txt"
  echo $(( $(ticks "$4") - before )) >"$work/$2.ticks"
}
# Server CPU per request, in microseconds: steadier than req/s on a shared VM.
cpu() { python3 -c "print(round($(cat "$work/$1.ticks") * 1e6 / $(getconf CLK_TCK) / $(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$work/$1.txt"), 1))"; }
rps() { sed -n 's/^Requests\/sec: *//p' "$work/$1.txt"; }
p99() { awk '$1=="99%"{print $2}' "$work/$1.txt"; }
metric() { curl -s "127.0.0.1:$xport/metrics" | sed -n "s/^$1 //p"; }
# The server's own latency histogram for /v1/assign (le and cumulative count per line), and the
# bucket its 99th percentile falls in over a run: the time from Gin's first middleware to the
# last byte handed to the kernel, without the time a request waits to be read or scheduled.
buckets() { curl -s "127.0.0.1:$xport/metrics" | sed -n 's/^xsell_http_request_duration_seconds_bucket{method="POST",route="\/v1\/assign",le="\([^"]*\)"} \(.*\)/\1 \2/p'; }
server_p99() {
  python3 - "$work/before$1" "$work/after$1" <<'PY'
import sys
def read(f):
    return {le: float(n) for le, n in (l.split() for l in open(f) if l.strip())}
a, b = read(sys.argv[1]), read(sys.argv[2])
delta = sorted(((float('inf') if le == '+Inf' else float(le)), b[le] - a.get(le, 0)) for le in b)
total = delta[-1][1]
le = next(le for le, n in delta if n >= 0.99 * total)
print(f"≤ {le * 1000:g} ms" if le != float('inf') else "> the largest bucket")
PY
}
# Warm-up, not counted: the pool's exposures are written once, as for shoppers seen before.
# The queue holds 100,000 exposures and the pool makes 200,000, so some are dropped at first
# and recorded again on the shopper's next request: warm up until a round drops none, and let
# the recorder empty its queue before measuring.
for round in 1 2 3 4 5; do
  dropped=$(metric xsell_exposures_dropped_total)
  SHOPPERS=10000 "${wrkcpu[@]}" wrk -t"${WRK_THREADS:-2}" -c"$conns" -d5s -s scripts/bench/assign.lua "http://127.0.0.1:$xport/v1/assign" >/dev/null
  # Until the queue is empty and the last batch written (the count stops moving).
  written=-1
  for _ in $(seq 100); do
    now=$(metric xsell_exposures_written_total)
    [ "$(metric xsell_exposures_queued)" = 0 ] && [ "$now" = "$written" ] && break
    written=$now; sleep 0.5
  done
  [ "$(metric xsell_exposures_dropped_total)" = "$dropped" ] && break
done
echo "warm-up: $round round(s) of 5 s; exposures written $(metric xsell_exposures_written_total), dropped $(metric xsell_exposures_dropped_total)"
# The VM's speed drifts between runs, so bare and xsell alternate, ROUNDS times, and each
# round's ratio compares two runs made a few seconds apart.
rounds=${ROUNDS:-3}
for r in $(seq "$rounds"); do
  echo "== round $r: bare Gin handler (fixed body)"; run "$bport" "bare$r" 10000 "$bpid"
  buckets >"$work/before$r"
  echo "== round $r: xsell POST /v1/assign, returning shoppers (pool of 10,000, exposures already written)"; run "$xport" "returning$r" 10000 "$xpid"
  buckets >"$work/after$r"
  echo "exposures written so far: $(metric xsell_exposures_written_total)"
done
echo "exposures written $(metric xsell_exposures_written_total), dropped $(metric xsell_exposures_dropped_total) after the returning runs"
echo "== xsell POST /v1/assign, a new shopper every request (20 exposures each)"; run "$xport" new 0 "$xpid"
echo
ratio() { python3 -c "print(f'{$(rps "$1")/$(rps "$2"):.0%}')"; }
echo "summary (machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)):"
for r in $(seq "$rounds"); do
  echo "  round $r  bare $(rps "bare$r") req/s, p99 $(p99 "bare$r"), CPU $(cpu "bare$r") µs/req | returning $(rps "returning$r") req/s, p99 $(p99 "returning$r") (in the server $(server_p99 "$r")), CPU $(cpu "returning$r") µs/req | $(ratio "returning$r" "bare$r") of bare"
done
echo "  new shoppers  $(rps new) req/s, p99 $(p99 new), $(ratio new "bare$rounds") of the last bare run, server CPU $(cpu new) µs/request"
sleep 1 # let the recorder write its last batch before counting
echo "  exposure rows: $(psql "$DATABASE_URL" -Atc "select count(*) from exposures"), written $(metric xsell_exposures_written_total), dropped $(metric xsell_exposures_dropped_total)"
