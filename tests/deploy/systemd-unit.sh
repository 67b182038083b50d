#!/usr/bin/env bash
# Checks the systemd unit: `systemd-analyze verify` reports nothing, and
# `systemd-analyze security` rates it OK or better. Exits 77 (skipped) where
# systemd-analyze is missing.
#
#   usage: tests/deploy/systemd-unit.sh UNIT_FILE RELAY_BINARY
set -euo pipefail

unit="$1"
binary="$(realpath "$2")"
if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze not installed: skipped"
  exit 77
fi

# verify insists that ExecStart= names an existing executable: check a copy
# that points at the binary under test instead of the installed path.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
copy="$work/$(basename "$unit")"
sed "s#/usr/bin/outbox-relay#$binary#g" "$unit" >"$copy"

status=0
out="$(systemd-analyze verify "$copy" 2>&1)" || status=$?
if [[ $status -ne 0 || -n $out ]]; then
  echo "systemd-analyze verify: exit $status"
  echo "$out"
  exit 1
fi
echo "systemd-analyze verify: clean"

report="$(systemd-analyze security --offline=true "$copy" 2>&1)"
overall="$(grep -E 'Overall exposure level' <<<"$report" || true)"
echo "$overall"
if ! grep -Eq ': [0-9.]+ (PERFECT|SAFE|OK)' <<<"$overall"; then
  echo "$report"
  echo "the unit is rated worse than OK"
  exit 1
fi
