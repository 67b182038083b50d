#!/usr/bin/env bash
# The benchmark in one command: builds the relay, starts a throwaway
# PostgreSQL 15 and Kafka (tests/harness), preloads deterministic backlogs and
# drains each with pg_recvlogical (the decoding ceiling), outbox-relay and the
# peers, one at a time; prints one table and writes bench/RESULTS.md.
#
#   usage: bench/run.sh [--quick] [--no-peers] [--workloads LIST] [--contenders LIST]
#                       [--rows N] [--timeout S] [--out FILE] [--keep]
#          bench/run.sh --live [--quick] [--rates LIST] [--seconds S] [--clients N]
#                       [--out FILE] [--keep]
#          bench/run.sh --scale [--slots 1,2,4] [--rows N] [--workload W] [--out FILE]
#
# --quick: a 20,000-row backlog, ceiling and relay only, no results file (CI).
# --live: commit-to-Kafka latency at a constant pgbench rate (bench/live.py):
#   1k, 5k, 10k rows/s for 30 s each; with --quick 1k rows/s for 5 s.
# --scale: aggregate drain of N slots (one database each) against N
#   pg_recvlogical, one instance and two instances of a group (bench/scale.py).
# Environment: SKIP_INSTALL=1 (dependencies already installed), OUTBOX_BUILD_DIR
# (default build/), OUTBOX_CACHE (where peers are fetched and built, default
# ~/.cache/outbox-relay). Run it alone: it measures CPU time and rates on a
# machine it assumes is otherwise idle.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${OUTBOX_BUILD_DIR:-$ROOT/build}"

for arg in "$@"; do
  if [[ $arg == -h || $arg == --help ]]; then
    sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
  fi
done

if [[ ${SKIP_INSTALL:-0} != 1 ]]; then
  "$ROOT/scripts/install-deps.sh" >/dev/null
fi
generator=()
[[ -f "$BUILD/CMakeCache.txt" ]] || generator=(-G Ninja)
cmake -S "$ROOT" -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "${OUTBOX_JOBS:-2}" --target outbox-relay kafka-admin >/dev/null

script=bench.py
for arg in "$@"; do
  [[ $arg == --live ]] && script=live.py
  [[ $arg == --scale ]] && script=scale.py
done
exec python3 "$ROOT/bench/$script" --build-dir "$BUILD" "$@"
