#!/usr/bin/env bash
# Builds gox (module github.com/angusgyoung/gox, a polling outbox relay in Go)
# into the benchmark cache with `go install`, once per version; prints the
# path of the binary. Nothing of it is committed to this repository.
#
#   usage: bench/peers/fetch-gox.sh [VERSION]     (default: latest)
#
# GOX_SRC: a clone of the gox repository (work tree or bare git directory).
# Used when the module proxy will not serve the module itself (its
# dependencies still come from the proxy): `go install` then builds the
# clone's HEAD, with the same module path.
set -euo pipefail

VERSION="${1:-${GOX_VERSION:-latest}}"
CACHE="${OUTBOX_CACHE:-$HOME/.cache/outbox-relay}/bench/gox-$VERSION"
BIN="$CACHE/bin/gox"
[[ -x $BIN ]] && { echo "$BIN"; exit 0; }
command -v go >/dev/null || { echo "fetch-gox.sh: no Go toolchain on PATH" >&2; exit 1; }
mkdir -p "$CACHE"
# confluent-kafka-go links its bundled static librdkafka through cgo.
export CGO_ENABLED=1 GOBIN="$CACHE/bin" GOFLAGS=-buildvcs=false
if go install "github.com/angusgyoung/gox@$VERSION" >&2; then
  echo "$BIN"
  exit 0
fi
if [[ -z ${GOX_SRC:-} ]]; then
  echo "fetch-gox.sh: the module proxy did not serve gox@$VERSION; set GOX_SRC to a clone" >&2
  exit 1
fi
src="$CACHE/src"
rm -rf "$src"
mkdir -p "$src"
if git --git-dir="$GOX_SRC" rev-parse HEAD >/dev/null 2>&1; then
  git --git-dir="$GOX_SRC" archive HEAD | tar -x -C "$src"
  git --git-dir="$GOX_SRC" rev-parse HEAD >"$CACHE/commit"
else
  cp -a "$GOX_SRC/." "$src/"
  git -C "$GOX_SRC" rev-parse HEAD >"$CACHE/commit" 2>/dev/null || true
fi
(cd "$src" && go install . >&2)
echo "$BIN"
