#!/usr/bin/env bash
# Builds kafka_txn_commit_bench against each librdkafka given, starts a
# throwaway single-node Kafka on loopback (tests/harness/kafka-broker.sh),
# runs the matrix of bench/RESULTS-txn-commit.md, stops the broker.
#
#   bench/txn-commit.sh [OUT_DIR]
#
# RDKAFKA_PREFIXES: space-separated install prefixes of librdkafka; "system"
#   is the one pkg-config finds (bookworm: 2.0.2). Default: "system", plus
#   ~/.cache/outbox-relay/librdkafka-2.14.2 if bench/build-librdkafka.sh
#   installed it.
# CYCLES, WARMUP: per run (300, 30).
# Needs the broker's jars (scripts/install-deps.sh) and g++.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/build-bench/txn-commit-$(date +%Y%m%d-%H%M%S)}"
CYCLES="${CYCLES:-300}"
WARMUP="${WARMUP:-30}"
CACHE="${OUTBOX_CACHE:-$HOME/.cache/outbox-relay}"
if [[ -z ${RDKAFKA_PREFIXES:-} ]]; then
  RDKAFKA_PREFIXES="system"
  [[ -f $CACHE/librdkafka-2.14.2/lib/librdkafka.so ]] && RDKAFKA_PREFIXES+=" $CACHE/librdkafka-2.14.2"
fi
mkdir -p "$OUT"
BROKER="$OUT/broker"

cleanup() { "$ROOT/tests/harness/kafka-broker.sh" destroy "$BROKER" || true; }
trap cleanup EXIT
# The broker's watchdog takes it down if this script is killed outright.
export HARNESS_OWNER_PID=$$

binaries=()
for prefix in $RDKAFKA_PREFIXES; do
  flags=(-O2 -std=c++20 -Wall -Wextra -Werror -Wno-missing-field-initializers)
  if [[ $prefix == system ]]; then
    bin="$OUT/kafka_txn_commit_bench-system"
    g++ "${flags[@]}" "$ROOT/bench/kafka_txn_commit_bench.cpp" -lrdkafka -o "$bin"
  else
    bin="$OUT/kafka_txn_commit_bench-$(basename "$prefix")"
    # -isystem: 2.14's rdkafka.h does not build under -Werror=ignored-qualifiers.
    g++ "${flags[@]}" -isystem "$prefix/include" "$ROOT/bench/kafka_txn_commit_bench.cpp" \
      -L"$prefix/lib" -Wl,-rpath,"$prefix/lib" -lrdkafka -o "$bin"
  fi
  binaries+=("$bin")
done

"$ROOT/tests/harness/kafka-broker.sh" start "$BROKER" >/dev/null
BOOTSTRAP="$(cat "$BROKER/bootstrap")"
echo "broker $BOOTSTRAP, Kafka $(basename "$(ls "${OUTBOX_KAFKA_LIBS:-$CACHE/kafka-3.9.1/libs}"/kafka_2.13-*.jar)" .jar)" |
  tee "$OUT/summary.txt"

n=0
run() {
  local bin="$1" name
  shift
  n=$((n + 1))
  name="$(printf '%03d' "$n")"
  {
    echo "# $(basename "$bin") $*"
    echo "# loadavg before: $(cat /proc/loadavg)"
    "$bin" --brokers "$BOOTSTRAP" --cycles "$CYCLES" --warmup "$WARMUP" --count-retries "$@" 2>&1 |
      grep -v '^librdkafka GETPID' || echo "# failed: $?"
    echo "# loadavg after: $(cat /proc/loadavg)"
  } >"$OUT/$name.log"
  grep -h '^ROW\|^CONCURRENT\|^# failed' "$OUT/$name.log" | sed "s/^/$name /" |
    tee -a "$OUT/summary.txt" || true
}

for bin in "${binaries[@]}"; do
  # Back to back, phases apart (records acknowledged before the checkpoint).
  for k in 1 100; do
    for mode in alo none offsets record; do run "$bin" --mode "$mode" --records "$k"; done
  done
  # Visibility to a read_committed consumer (its wait separates the cycles).
  for k in 1 100; do
    for mode in alo none offsets record; do run "$bin" --mode "$mode" --records "$k" --visible; done
  done
  # As the relay can: the checkpoint sent while the records may be in flight.
  for mode in none offsets record; do run "$bin" --mode "$mode" --records 100 --flush-first 0; done
  run "$bin" --mode offsets --records 100 --flush-first 0 --retry-backoff-ms 10
  # Back to back against a pause after each commit, retry.backoff.ms 10 and
  # librdkafka's default.
  for mode in offsets record; do
    for gap in 0 50; do
      for backoff in 10 default; do
        args=(--mode "$mode" --records 1 --gap-ms "$gap")
        [[ $backoff != default ]] && args+=(--retry-backoff-ms "$backoff")
        [[ $gap == 0 && $backoff == default ]] && continue # the first block has it
        run "$bin" "${args[@]}"
      done
    done
  done
  # linger.ms 0 and 1 (5, the relay's, is in the first block).
  for mode in offsets record; do
    for k in 1 100; do
      for linger in 0 1; do run "$bin" --mode "$mode" --records "$k" --linger-ms "$linger"; done
    done
  done
  # Whether group.protocol=consumer joins a group on this broker.
  "$bin" --brokers "$BOOTSTRAP" --mode none --warmup 0 --cycles 1 --consumer-protocol consumer 2>&1 |
    grep '^group.protocol' | tee -a "$OUT/summary.txt" || true
done

# How long send_offsets_to_transaction blocks when the coordinator does not
# answer. Last: a broker frozen for longer than broker.session.timeout.ms is
# fenced by its own controller, and creating topics fails for a while after.
H="$ROOT/tests/harness/kafka-broker.sh"
for bin in "${binaries[@]}"; do
  for _ in $(seq 1 60); do
    "$bin" --brokers "$BOOTSTRAP" --mode none --warmup 0 --cycles 1 >/dev/null 2>&1 && break
    sleep 2
  done
  "$bin" --brokers "$BOOTSTRAP" --mode offsets --warmup 5 --stall-freeze "$H freeze $BROKER" \
    --stall-thaw "$H thaw $BROKER" --stall-timeout-ms 1000 --stall-socket-timeout-ms 10000 2>&1 |
    grep '^stall' | tee -a "$OUT/summary.txt" || true
done
echo "logs in $OUT"
