#!/usr/bin/env bash
# Configures the fuzz build (clang, ASan + UBSan, libFuzzer) and builds the
# given targets; compiles go through ccache when it is installed.
#
#   usage: tests/fuzz/build.sh <target>_fuzz...
#
# Environment: OUTBOX_FUZZ_BUILD_DIR (default <repo>/build-fuzz),
# OUTBOX_FUZZ_CXX (default clang++-14), OUTBOX_FUZZ_JOBS (default 2).
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 <target>_fuzz..." >&2
  exit 2
fi
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${OUTBOX_FUZZ_BUILD_DIR:-$repo/build-fuzz}
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi

cmake -S "$repo" -B "$build" -G Ninja \
  -DCMAKE_CXX_COMPILER="${OUTBOX_FUZZ_CXX:-clang++-14}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" \
  -DOUTBOX_FUZZ=ON -DOUTBOX_TESTS=OFF >/dev/null
cmake --build "$build" --target "$@" -j "${OUTBOX_FUZZ_JOBS:-2}"
