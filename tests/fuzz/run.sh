#!/usr/bin/env bash
# Builds one libFuzzer target (tests/fuzz/build.sh) and runs it.
#
#   usage: tests/fuzz/run.sh <target> <seconds> [libFuzzer options...]
#   e.g.   tests/fuzz/run.sh pgoutput 120
#          tests/fuzz/run.sh pgoutput_fuzz 0 crash-1234   (replay one input)
#
# <target> is tests/fuzz/<name>_fuzz.cpp, with or without the _fuzz suffix.
# Seeds come from tests/fuzz/corpus/<name>/ and are never modified; new
# inputs go to <build>/corpus/<name>/, crashes to <build>/artifacts/.
# A crashing input belongs in a unit test once fixed.
#
# Environment: OUTBOX_FUZZ_BUILD_DIR (default <repo>/build-fuzz),
# OUTBOX_FUZZ_CXX (default clang++-14), OUTBOX_FUZZ_JOBS (default 2),
# OUTBOX_FUZZ_PREBUILT=1 (the target is already built: do not configure or
# build, so that several targets can run side by side).
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 <target> <seconds> [libFuzzer options...]" >&2
  exit 2
fi
name=${1%_fuzz}
seconds=$2
shift 2

repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${OUTBOX_FUZZ_BUILD_DIR:-$repo/build-fuzz}
target=${name}_fuzz

if [[ ! -f $repo/tests/fuzz/$target.cpp ]]; then
  echo "no fuzz target tests/fuzz/$target.cpp" >&2
  exit 2
fi

if [[ ${OUTBOX_FUZZ_PREBUILT:-0} != 1 ]]; then
  "$repo/tests/fuzz/build.sh" "$target"
fi

found=$build/corpus/$name
mkdir -p "$found" "$build/artifacts"
options=(-artifact_prefix="$build/artifacts/" -print_final_stats=1)
if [[ $seconds -gt 0 ]]; then
  options+=(-max_total_time="$seconds")
fi
if [[ -f $repo/tests/fuzz/$name.dict ]]; then
  options+=(-dict="$repo/tests/fuzz/$name.dict")
fi

# Explicit input files (a replay) run once; otherwise fuzz the corpora, the
# first directory being where libFuzzer writes what it finds.
inputs=()
for arg in "$@"; do
  [[ $arg == -* ]] || inputs+=("$arg")
done
if [[ ${#inputs[@]} -gt 0 ]]; then
  exec "$build/tests/fuzz/$target" "${options[@]}" "$@"
fi
corpora=("$found")
if [[ -d $repo/tests/fuzz/corpus/$name ]]; then
  corpora+=("$repo/tests/fuzz/corpus/$name")
fi
exec "$build/tests/fuzz/$target" "${options[@]}" "$@" "${corpora[@]}"
