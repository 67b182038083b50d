#!/usr/bin/env bash
# Builds the .deb with CPack, installs it with dpkg, and runs the relay from
# the installed path: --version, check-config on the installed example, and
# the metrics scenario of the integration suite against real servers. The
# package is removed again at the end unless KEEP_PACKAGE=1.
#
#   usage: scripts/test-package.sh [BUILD_DIR]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$(realpath "${1:-$ROOT/build}")"
if [[ $EUID -eq 0 ]]; then SUDO=(); else SUDO=(sudo -n); fi

log() { echo "test-package: $*"; }

cmake --build "$BUILD" -j "${OUTBOX_JOBS:-2}" --target outbox-relay integration_observability_test
rm -f "$BUILD"/outbox-relay_*.deb
(cd "$BUILD" && cpack -G DEB >/dev/null)
deb="$(ls "$BUILD"/outbox-relay_*.deb)"
log "built $deb"
dpkg-deb --field "$deb" Package Version Depends

"${SUDO[@]}" dpkg -i "$deb"
if [[ ${KEEP_PACKAGE:-0} != 1 ]]; then
  trap '"${SUDO[@]}" dpkg -r outbox-relay >/dev/null' EXIT
fi
for f in /usr/bin/outbox-relay /lib/systemd/system/outbox-relay.service \
  /usr/share/doc/outbox-relay/examples/outbox-relay.example.yaml \
  /usr/share/outbox-relay/sql/01-outbox-table.sql; do
  [[ -e $f ]] || { log "missing after install: $f"; exit 1; }
done

want="$(sed -n 's/^project(outbox-relay VERSION \([0-9.]*\).*/\1/p' "$ROOT/CMakeLists.txt")"
got="$(/usr/bin/outbox-relay --version)"
log "installed outbox-relay --version: $got"
[[ $got == *"$want"* ]] || { log "expected version $want"; exit 1; }

PG_PASSWORD=unused KAFKA_PASSWORD=unused /usr/bin/outbox-relay check-config \
  /usr/share/doc/outbox-relay/examples/outbox-relay.example.yaml >/dev/null
log "check-config on the installed example: ok"

OUTBOX_RELAY_BIN=/usr/bin/outbox-relay \
  "$BUILD/tests/integration/integration_observability_test" \
  --gtest_filter='*MetricsCountPublishedRowsPerTopic*'
log "ok"
