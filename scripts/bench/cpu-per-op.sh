#!/usr/bin/env bash
# CPU time per operation of Go benchmarks, alternating them ROUNDS times. On this shared VM the
# wall-clock ns/op of `go test -bench` swings by half with other people's load; the CPU the
# benchmark process itself used (user + system) swings far less, so pairs measured this way,
# alternately, can be compared.
#
#   scripts/bench/cpu-per-op.sh PACKAGE N BENCH [BENCH...]
#   e.g. scripts/bench/cpu-per-op.sh ./internal/targeting/ 10000000 'FNV/ascii-path' 'FNV/range-loop'
#   ROUNDS=3 by default. Each BENCH runs exactly N iterations on one CPU (-test.cpu 1); N should
#   make a run last about a second. Figures include the process's start, negligible at that length.
set -euo pipefail
cd "$(dirname "$0")/../.."
pkg=$1; n=$2; shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go test -c -o "$work/bench.test" "$pkg"
TIMEFORMAT='%U %S'
for round in $(seq "${ROUNDS:-3}"); do
  for b in "$@"; do
    t=$( { time "$work/bench.test" -test.run '^$' -test.bench "^Benchmark${b}\$" -test.benchtime "${n}x" -test.cpu 1 >/dev/null; } 2>&1 )
    awk -v r="$round" -v b="$b" -v n="$n" -v t="$t" 'BEGIN { split(t, a, " "); printf "round %d  %-32s %10.1f ns/op (CPU)\n", r, b, (a[1] + a[2]) * 1e9 / n }'
  done
done
