#!/usr/bin/env bash
# Assignment throughput, latency and exposure loss: wrk against POST /v1/assign with 20 running
# experiments (targeting, half of them layered) for three workloads — returning shoppers (a pool
# of 10,000 whose exposures are already written), a mix of 80% returning and 20% new shoppers,
# and a new shopper on every request — each right after a run of a bare Gin handler that returns
# a fixed body of the same size, so that each workload is judged against the yardstick measured
# a few seconds before it. The server runs with its default settings (log level info).
# Starts its own throwaway PostgreSQL; needs wrk (apt-get install wrk).
#
#   scripts/bench/assign.sh [DURATION] [CONNECTIONS]      # defaults: 15s, 32
#   PIN=1 scripts/bench/assign.sh                          # wrk on CPU 0, servers on CPU 1
#   ROUNDS=3 (each round: bare, returning, bare, mixed, bare, all-new), WRK_THREADS=2,
#   WORKLOADS="returning mixed new" (a subset runs only those)
#   PACE_MS=2: each connection waits 2 ms between an answer and its next request (bare and
#   xsell alike), to compare the tails below saturation (~12,000 requests a second at 32)
#   XSELL_LOG_LEVEL, XSELL_ASSIGN_LOG_SAMPLE, XSELL_EXPOSURE_QUEUE pass through to the server.
#   LOGCOST=1: instead, what the access log costs: returning shoppers on this server (log level
#   info, as by default) and on a second one at warn (no access log), alternating ROUNDS times.
#   LEARNED=1: instead, what learned strategies cost (issue 18): returning shoppers on this
#   server (20 fixed experiments, no context: "fixed") against a second server, on a database
#   of its own, where 5 of the 20 are learned bundles ("source": "complements") over a model
#   built from seeded orders, every body carrying a 3-product context ("learned"); each
#   learned run right after a fixed one, ROUNDS times, for LEARNED_WORKLOADS of "carts" (each
#   shopper's own cart, one of 1,000), "new" (a cart never seen on every request), "same"
#   (one cart for all) and "mixed" (own carts, a never-seen one on a share NEW_CARTS of
#   requests, default 0.2); default "carts new". Prints the ratios learned/fixed of req/s and
#   of the server's CPU per request.
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
XSELL_ADDR=127.0.0.1:$xport "${srvcpu[@]}" "$work/server" >"$work/server.log" 2>&1 &
xpid=$!
for _ in $(seq 100); do curl -sf "127.0.0.1:$xport/readyz" >/dev/null && break; sleep 0.1; done

admin=(-H 'Authorization: Bearer dev-admin' -H 'Content-Type: application/json')
# experiments PORT LEARNED: the 20 running experiments, of which the first LEARNED have a
# learned bundle (its products chosen per request from the complements model) instead of a
# fixed one.
experiments() {
  local i layer bundle
  for i in $(seq -w 1 20); do
    layer=''
    if [ $((10#$i % 2)) -eq 0 ]; then layer=', "layer": {"name": "checkout", "range": [0, 0.8]}'; fi
    bundle='"products": ["sku-2"]'
    if [ $((10#$i)) -le "$2" ]; then bundle='"source": "complements"'; fi
    curl -sf "${admin[@]}" -X POST "127.0.0.1:$1/v1/experiments" -d '{
      "key": "bench-'"$i"'", "name": "bench", "coverage": 0.9,
      "targeting": {"country": {"$in": ["IT", "FR", "DE"]}, "device": "mobile", "visits": {"$gt": 2}},
      "variants": [
        {"key": "control", "name": "C", "weight": 0.34, "strategy": {"type": "none"}},
        {"key": "bundle", "name": "B", "weight": 0.33, "strategy": {"type": "bundle", '"$bundle"', "discount_percent": 10, "timing": "cart"}},
        {"key": "points", "name": "P", "weight": 0.33, "strategy": {"type": "loyalty_points", "products": ["sku-2"], "bonus_points": 100, "timing": "checkout"}}
      ]'"$layer"'}' >/dev/null
    curl -sf "${admin[@]}" -X POST "127.0.0.1:$1/v1/experiments/bench-$i/start" >/dev/null
  done
}
experiments "$xport" 0
# The bare handler answers with a real answer's bytes.
curl -sf -H 'Authorization: Bearer dev-checkout' -H 'Content-Type: application/json' -X POST "127.0.0.1:$xport/v1/assign" \
  -d '{"shopper_id":"shopper-1-1","attributes":{"country":"IT","device":"mobile","visits":5}}' >"$work/body.json"
"${srvcpu[@]}" "$work/bare" "127.0.0.1:$bport" "$work/body.json" &
bpid=$!
for _ in $(seq 100); do curl -sf -X POST "127.0.0.1:$bport/v1/assign" >/dev/null && break; sleep 0.1; done

psqlq() { psql "$DATABASE_URL" -Atc "$1"; }
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "answer size: $(wc -c <"$work/body.json") bytes, $(grep -o '"experiment"' "$work/body.json" | wc -l) assignments"
# CPU time (user + system, in clock ticks) a process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# CPU time the PostgreSQL cluster has used so far: the postmaster, its living children, and
# (cutime, cstime) the children it has reaped.
pgdir=$(psql "$DATABASE_URL" -Atc 'show data_directory')
pgticks() {
  local pm; pm=$(head -1 "$pgdir/postmaster.pid")
  for p in $pm $(pgrep -P "$pm"); do cat "/proc/$p/stat" 2>/dev/null || true; done |
    awk '{s += $14 + $15 + $16 + $17} END {print s}'
}
# run PORT NAME SHOPPERS NEW PID [CART]: one wrk run, its output in $work/NAME.txt, the CPU it
# cost PID; CART is assign.lua's (a context in every body).
run() {
  local before pgbefore; before=$(ticks "$5"); pgbefore=$(pgticks)
  CART=${6:-} SHOPPERS=$3 NEW=$4 PREFIX=$2 "${wrkcpu[@]}" wrk -t"${WRK_THREADS:-2}" -c"$conns" -d"$duration" --latency -s scripts/bench/assign.lua "http://127.0.0.1:$1/v1/assign" >"$work/$2.txt"
  echo $(( $(ticks "$5") - before )) >"$work/$2.ticks"
  echo $(( $(pgticks) - pgbefore )) >"$work/$2.pgticks"
  # Figures of error answers would say nothing of assignment (a script wrk could not load, say,
  # sends GET /v1/assign to every request): stop rather than print them.
  if grep -q 'Non-2xx' "$work/$2.txt"; then
    echo "wrk run $2 got error answers, its figures are not assignment's:" >&2; cat "$work/$2.txt" >&2; exit 1
  fi
}
# Server CPU per request, in microseconds: steadier than req/s on a shared VM.
cpu() { python3 -c "print(round($(cat "$work/$1.ticks") * 1e6 / $(getconf CLK_TCK) / $(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$work/$1.txt"), 1))"; }
# PostgreSQL's CPU per request over the same run (both servers' databases share the cluster;
# one server runs at a time).
pgcpu() { python3 -c "print(round($(cat "$work/$1.pgticks") * 1e6 / $(getconf CLK_TCK) / $(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$work/$1.txt"), 1))"; }
rps() { sed -n 's/^Requests\/sec: *//p' "$work/$1.txt"; }
p99() { awk '$1=="99%"{print $2}' "$work/$1.txt"; }
errors() { grep -E 'Non-2xx|Socket errors' "$work/$1.txt" || true; }
# The server metrics and settle read: $xport's, or $sport's when set.
metrics() { curl -s "127.0.0.1:${sport:-$xport}/metrics"; }
# sum NAME: a metric summed over its labels.
sum() { metrics | awk -v m="$1" 'index($0, m) == 1 && ($0 ~ "^" m "[ {]") {s += $NF} END {printf "%d\n", s}'; }
# The server's own latency histogram for /v1/assign (le and cumulative count per line), and the
# bucket its 99th percentile falls in over a run: the time from Gin's first middleware to the
# last byte handed to the kernel, without the time a request waits to be read or scheduled.
buckets() { metrics | sed -n 's/^xsell_http_request_duration_seconds_bucket{method="POST",route="\/v1\/assign",le="\([^"]*\)"} \(.*\)/\1 \2/p'; }
server_p99() {
  python3 - "$work/$1.before" "$work/$1.after" <<'PY'
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
# settle: wait until the recorder's queue is empty and every staged row is merged; prints the
# seconds it took (the merge's lag behind the load).
settle() {
  local t0; t0=$(date +%s.%N)
  for _ in $(seq 3600); do
    [ "$(sum xsell_exposures_queued)" = 0 ] && [ "$(psql "${sdb:-$DATABASE_URL}" -Atc 'select count(*) from exposure_log')" = 0 ] && break
    sleep 0.5
  done
  python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')"
}
# xsell NAME SHOPPERS NEW: one xsell run with the server's histogram, CPU, exposures generated
# (queued + lost) and lost, and the time the merge then took to catch up.
xsell() {
  local rec0 lost0; rec0=$(sum xsell_exposures_recorded_total); lost0=$(sum xsell_exposures_lost_total)
  buckets >"$work/$1.before"
  run "$xport" "$1" "$2" "$3" "$xpid"
  buckets >"$work/$1.after"
  local rec lost; rec=$(( $(sum xsell_exposures_recorded_total) - rec0 )); lost=$(( $(sum xsell_exposures_lost_total) - lost0 ))
  echo "$(( rec + lost )) $lost" >"$work/$1.exposures"
  settle >"$work/$1.settle"
}
# A new shopper's exposures, end to end: rows merged for the run's shoppers against the
# exposures it generated.
stored() { psqlq "select count(*) from exposures where shopper_id like '$1-%'"; }

# Warm-up, not counted: every pool shopper is assigned, so that their exposures are written
# once, as for shoppers seen before; until the pool's 10,000 are all stored.
pooled() { psqlq "select count(distinct shopper_id) from exposures where shopper_id like 'shopper-%'"; }
# warm DURATION [CART]: on $xport, or $sport when set.
warm() {
  CART=${2:-} SHOPPERS=10000 WARM=${WRK_THREADS:-2} "${wrkcpu[@]}" wrk -t"${WRK_THREADS:-2}" -c"$conns" -d"$1" -s scripts/bench/assign.lua "http://127.0.0.1:${sport:-$xport}/v1/assign" >/dev/null
  settle >/dev/null
}
for round in 1 2 3 4 5; do
  warm 5s
  [ "$(pooled)" -ge 10000 ] && break
done
echo "warm-up: $round round(s) of 5 s; pool shoppers stored $(pooled), exposures $(psqlq 'select count(*) from exposures'), lost $(sum xsell_exposures_lost_total)"
if [ "${LEARNED:-0}" = 1 ]; then
  # The learned server's database, in the same cluster: 100,000 orders of 1–5 lines over 1,000
  # products in 100 families of 10 (sku-0…9, sku-10…19, …), every line of an order from its
  # family, so that each product has complements (about 9, at most the model's 10).
  lurl=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/learned")))' "$DATABASE_URL")
  psqlq "CREATE DATABASE learned" >/dev/null
  DATABASE_URL=$lurl "$work/server" migrate >/dev/null 2>&1
  psql "$lurl" -X -q -v ON_ERROR_STOP=1 <<'SQL'
INSERT INTO order_items (event_id, line, occurred_at, order_id, shopper_id, sku, quantity, unit_price)
SELECT 'e' || o, l, at, 'o' || o, 's' || (o % 50000), 'sku-' || (f * 10 + floor(10 * random())::int), 1, 1000
FROM (SELECT o, now() - random() * interval '80 days' AS at, floor(100 * random())::int AS f
      FROM generate_series(1, 100000) o) orders,
     LATERAL (SELECT l FROM generate_series(1, 1 + o % 5) l) lines;
ANALYZE order_items;
SQL
  DATABASE_URL=$lurl "$work/server" complements build >"$work/complements.log" 2>&1
  lq() { psql "$lurl" -Atc "$1"; }
  echo "complements model: $(lq 'select count(distinct sku) from complements') products with complements, $(lq 'select count(*) from complements') complements"
  lport=$(port)
  DATABASE_URL=$lurl XSELL_ADDR=127.0.0.1:$lport "${srvcpu[@]}" "$work/server" >"$work/server-learned.log" 2>&1 &
  lpid=$!
  for _ in $(seq 100); do curl -sf "127.0.0.1:$lport/readyz" >/dev/null && break; sleep 0.1; done
  experiments "$lport" 5
  # Its answer to one cart, to check that learned bundles do offer products.
  curl -sf -H 'Authorization: Bearer dev-checkout' -H 'Content-Type: application/json' -X POST "127.0.0.1:$lport/v1/assign" \
    -d '{"shopper_id":"shopper-1-1","attributes":{"country":"IT","device":"mobile","visits":5},"context":{"products":["sku-17","sku-311","sku-743"]}}' >"$work/learned.json"
  echo "learned answer: $(wc -c <"$work/learned.json") bytes (fixed $(wc -c <"$work/body.json")), $(grep -o '"source":"complements"' "$work/learned.json" | wc -l) learned, $(grep -o 'no_complements' "$work/learned.json" | wc -l) no_complements"
  # Its pool shoppers' exposures and carts' offers stored, as on the fixed server.
  for round in 1 2 3 4 5; do
    sport=$lport sdb=$lurl warm 5s shopper
    [ "$(lq "select count(distinct shopper_id) from exposures where shopper_id like 'shopper-%'")" -ge 10000 ] && break
  done
  echo "learned warm-up: $round round(s) of 5 s; offers stored for $(lq 'select count(distinct shopper_id) from exposure_offers') shoppers"
  lworkloads=${LEARNED_WORKLOADS:-carts new}
  cart() { case $1 in carts) echo shopper ;; *) echo "$1" ;; esac; }
  for r in $(seq "${ROUNDS:-3}"); do
    for w in $lworkloads; do
      echo "== round $r: fixed, then learned ($w carts)"
      run "$xport" "fixed-$w$r" 10000 0 "$xpid"
      run "$lport" "learned-$w$r" 10000 0 "$lpid" "$(cart "$w")"
      errors "fixed-$w$r"; errors "learned-$w$r"
      sport=$lport sdb=$lurl settle >/dev/null
    done
  done
  ratio3() { python3 -c "print(f'{$1/$2:.3f}')"; }
  echo
  echo "summary (machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); server log level ${XSELL_LOG_LEVEL:-info}):"
  for r in $(seq "${ROUNDS:-3}"); do
    for w in $lworkloads; do
      echo "  round $r $w: learned $(rps "learned-$w$r") req/s vs fixed $(rps "fixed-$w$r") = $(ratio3 "$(rps "learned-$w$r")" "$(rps "fixed-$w$r")"); CPU $(cpu "learned-$w$r") vs $(cpu "fixed-$w$r") µs/req = $(ratio3 "$(cpu "learned-$w$r")" "$(cpu "fixed-$w$r")"); Postgres CPU $(pgcpu "learned-$w$r") vs $(pgcpu "fixed-$w$r") µs/req; p99 $(p99 "learned-$w$r") vs $(p99 "fixed-$w$r")"
    done
  done
  echo "  learned server: exposure rows $(lq 'select count(*) from exposures'), (shopper, experiment) rows of offers $(lq 'select count(*) from exposure_offers'), lost on the record $(lq 'select coalesce(sum(lost), 0) from exposure_losses') exposures and $(lq 'select coalesce(sum(offers_lost), 0) from exposure_losses') offers"
  exit 0
fi
if [ "${LOGCOST:-0}" = 1 ]; then
  wport=$(port)
  XSELL_ADDR=127.0.0.1:$wport XSELL_LOG_LEVEL=warn "${srvcpu[@]}" "$work/server" >"$work/server-warn.log" 2>&1 &
  wpid=$!
  for _ in $(seq 100); do curl -sf "127.0.0.1:$wport/readyz" >/dev/null && break; sleep 0.1; done
  # Its own in-memory de-duplication starts empty: one pass over the pool, so that it too
  # only answers.
  SHOPPERS=10000 WARM=${WRK_THREADS:-2} wrk -t"${WRK_THREADS:-2}" -c"$conns" -d5s -s scripts/bench/assign.lua "http://127.0.0.1:$wport/v1/assign" >/dev/null
  settle >/dev/null
  echo "access log cost, returning shoppers (machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)):"
  for r in $(seq "${ROUNDS:-3}"); do
    run "$xport" "info$r" 10000 0 "$xpid"
    run "$wport" "warn$r" 10000 0 "$wpid"
    echo "  round $r: info (1 in ${XSELL_ASSIGN_LOG_SAMPLE:-100} assign lines) $(rps "info$r") req/s, CPU $(cpu "info$r") µs/req; warn $(rps "warn$r") req/s, CPU $(cpu "warn$r") µs/req; info/warn rate $(python3 -c "print(f'{$(rps "info$r")/$(rps "warn$r"):.2f}')"), CPU $(python3 -c "print(f'{$(cpu "info$r")/$(cpu "warn$r"):.3f}')")"
  done
  echo "  access log lines written at info: $(wc -l <"$work/server.log")"
  exit 0
fi
# The VM's speed drifts between runs, so each workload runs right after the bare handler,
# ROUNDS times, and its ratios compare two runs made seconds apart.
rounds=${ROUNDS:-3}
workloads=${WORKLOADS:-returning mixed new}
for r in $(seq "$rounds"); do
  for w in $workloads; do
    echo "== round $r: bare Gin handler, then xsell with $w shoppers"
    run "$bport" "bare-$w$r" 10000 0 "$bpid"
    case $w in
      # A burst of new shoppers evicts returning ones from the server's in-memory
      # de-duplication (they are then written again, once); walk the pool first, so that
      # every round measures shoppers whose exposures the server remembers.
      returning) warm 3s; xsell "returning$r" 10000 0 ;;
      mixed) xsell "mixed$r" 10000 0.2 ;;
      new) xsell "new$r" 0 1 ;;
    esac
    errors "$w$r"
  done
done
echo
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
ms() { python3 -c "
v='$1'
print(float(v[:-2]) if v.endswith('ms') else float(v[:-2])/1000 if v.endswith('us') else float(v[:-1])*1000)"; }
echo "summary (machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); server log level ${XSELL_LOG_LEVEL:-info}):"
for r in $(seq "$rounds"); do
  for w in $workloads; do
    read -r gen lost <"$work/$w$r.exposures"
    end2end=""
    if [ "$w" = new ]; then end2end=", stored $(stored "new$r") of them"; fi
    if [ "$w" = mixed ]; then end2end=", new shoppers' rows stored $(stored "mixed$r")"; fi
    share=$(python3 -c "print(f'{100*$lost/$gen:.3f}%' if $gen else 'n/a')")
    echo "  round $r $w: $(rps "$w$r") req/s = $(ratio "$(rps "$w$r")" "$(rps "bare-$w$r")") of bare ($(rps "bare-$w$r")); p99 $(p99 "$w$r") vs bare $(p99 "bare-$w$r") = $(ratio "$(ms "$(p99 "$w$r")")" "$(ms "$(p99 "bare-$w$r")")")x; server p99 $(server_p99 "$w$r"); CPU $(cpu "$w$r") vs $(cpu "bare-$w$r") µs/req; exposures $gen, lost $lost ($share)$end2end; merged $(cat "$work/$w$r.settle") s after the run"
  done
done
echo "  exposure rows $(psqlq 'select count(*) from exposures'), lost on the record $(psqlq 'select coalesce(sum(lost), 0) from exposure_losses'), quarantined $(psqlq "select count(*) from quarantine where consumer like 'exposures%'")"
echo "  access log lines written: $(wc -l <"$work/server.log")"
