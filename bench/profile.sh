#!/usr/bin/env bash
# Profiles outbox-relay draining the 100-row-transaction backlog: runs the
# benchmark for that workload and the relay only, with `perf record` (DWARF
# call graphs) attached to the relay, then prints the hottest symbols (self
# time) and the hottest call chains (children time).
#
#   usage: bench/profile.sh [ROWS]       (default 1000000)
#
# Writes build/bench-profile/perf.data.*, report-self.txt, report-children.txt.
# The relay's figures in this run are distorted by perf; take them from
# bench/run.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${OUTBOX_BUILD_DIR:-$ROOT/build}"
ROWS="${1:-1000000}"
OUT="$BUILD/bench-profile"
command -v perf >/dev/null || { echo "profile.sh: perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
rm -rf "$OUT"
mkdir -p "$OUT"
SKIP_INSTALL="${SKIP_INSTALL:-1}" "$ROOT/bench/run.sh" --workloads "256B x100" \
  --contenders ceiling-binary,outbox-relay --rows "$ROWS" --out "$OUT/RESULTS.md" \
  --perf "$OUT/perf.data"
data="$(ls "$OUT"/perf.data.* | head -n 1)"
perf report -i "$data" --no-children --sort symbol --stdio --percent-limit 0.7 -g none \
  2>/dev/null >"$OUT/report-self.txt"
perf report -i "$data" --children --sort symbol --stdio --percent-limit 3 -g none \
  2>/dev/null >"$OUT/report-children.txt"
perf report -i "$data" --no-children --sort dso --stdio -g none 2>/dev/null >"$OUT/report-dso.txt"
echo "== self time by DSO"; grep -v '^#' "$OUT/report-dso.txt" | sed '/^$/d' | head -n 12
echo "== self time by symbol"; grep -v '^#' "$OUT/report-self.txt" | sed '/^$/d' | head -n 40
echo "== children time by symbol"; grep -v '^#' "$OUT/report-children.txt" | sed '/^$/d' | head -n 40
