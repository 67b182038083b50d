#!/usr/bin/env bash
# Builds go-pq-cdc-kafka (module github.com/Trendyol/go-pq-cdc-kafka, a Go
# library streaming pgoutput to Kafka) with the benchmark's glue program
# (bench/peers/go-pq-cdc-kafka/main.go) into the benchmark cache, once per
# version; prints the path of the binary. Nothing of the library is
# committed to this repository.
#
#   usage: bench/peers/fetch-go-pq-cdc-kafka.sh [VERSION]     (default v1.3.1)
#
# The library comes from the Go module proxy where it serves it. Where it
# refuses it (it answered 403 for every github.com/Trendyol module when this
# was written), set GO_PQ_CDC_KAFKA_SRC to a clone of Trendyol/go-pq-cdc-kafka
# and GO_PQ_CDC_SRC to a clone of Trendyol/go-pq-cdc (work trees or bare git
# directories): the tag VERSION of the first, and the tag of the second that
# its go.mod requires, are built through `replace` directives, with the same
# module paths; every other dependency still comes from the proxy. The module
# needs Go 1.25 (go.mod `go 1.25.0`).
set -euo pipefail

VERSION="${1:-${GO_PQ_CDC_KAFKA_VERSION:-v1.3.1}}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${OUTBOX_CACHE:-$HOME/.cache/outbox-relay}/bench/go-pq-cdc-kafka-$VERSION"
BIN="$CACHE/bin/go-pq-cdc-kafka-bench"
# Rebuilt when the glue program changed since the cached build.
if [[ -x $BIN && $BIN -nt $HERE/go-pq-cdc-kafka/main.go ]]; then
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || { echo "fetch-go-pq-cdc-kafka.sh: no Go toolchain on PATH" >&2; exit 1; }

mod="$CACHE/glue"
rm -rf "$mod"
mkdir -p "$mod" "$CACHE/bin"
cp "$HERE/go-pq-cdc-kafka/main.go" "$mod/"
export GOFLAGS=-buildvcs=false CGO_ENABLED=0

# The Go sources and go.mod of REF from SRC (a bare git directory or a work
# tree) into DEST; prints the commit. Only those: a shallow or partial clone
# may lack the repository's other blobs (a committed benchmark binary, images).
export_tree() {
  local src=$1 ref=$2 dest=$3 git_args
  if git --git-dir="$src" rev-parse --verify -q "$ref^{commit}" >/dev/null; then
    git_args=(--git-dir="$src")
  elif git -C "$src" rev-parse --verify -q "$ref^{commit}" >/dev/null; then
    git_args=(-C "$src")
  else
    echo "fetch-go-pq-cdc-kafka.sh: no $ref in $src" >&2
    return 1
  fi
  mkdir -p "$dest"
  git "${git_args[@]}" archive "$ref" -- go.mod go.sum '*.go' | tar -x -C "$dest"
  git "${git_args[@]}" rev-parse "$ref^{commit}"
}

cat >"$mod/go.mod" <<MOD
module outbox-relay.bench/go-pq-cdc-kafka-bench

go 1.25.0

require github.com/Trendyol/go-pq-cdc-kafka $VERSION
MOD

if (cd "$mod" && go mod download github.com/Trendyol/go-pq-cdc-kafka@"$VERSION") >/dev/null 2>&1; then
  echo "github.com/Trendyol/go-pq-cdc-kafka $VERSION (module proxy)" >"$CACHE/source"
else
  if [[ -z ${GO_PQ_CDC_KAFKA_SRC:-} || -z ${GO_PQ_CDC_SRC:-} ]]; then
    echo "fetch-go-pq-cdc-kafka.sh: the module proxy did not serve go-pq-cdc-kafka@$VERSION;" \
         "set GO_PQ_CDC_KAFKA_SRC and GO_PQ_CDC_SRC to clones of Trendyol/go-pq-cdc-kafka" \
         "and Trendyol/go-pq-cdc" >&2
    exit 1
  fi
  kafka_commit=$(export_tree "$GO_PQ_CDC_KAFKA_SRC" "$VERSION" "$mod/src/go-pq-cdc-kafka")
  core_version=$(awk '$1 == "github.com/Trendyol/go-pq-cdc" { print $2; exit }' \
                   "$mod/src/go-pq-cdc-kafka/go.mod")
  [[ -n $core_version ]] || { echo "fetch-go-pq-cdc-kafka.sh: no go-pq-cdc in go.mod" >&2; exit 1; }
  core_commit=$(export_tree "$GO_PQ_CDC_SRC" "$core_version" "$mod/src/go-pq-cdc")
  cat >>"$mod/go.mod" <<MOD

replace github.com/Trendyol/go-pq-cdc-kafka => ./src/go-pq-cdc-kafka

replace github.com/Trendyol/go-pq-cdc => ./src/go-pq-cdc
MOD
  echo "github.com/Trendyol/go-pq-cdc-kafka $VERSION (commit ${kafka_commit:0:12})" \
       "with github.com/Trendyol/go-pq-cdc $core_version (commit ${core_commit:0:12}), built from clones" \
       >"$CACHE/source"
fi
(cd "$mod" && go mod tidy >&2 && go build -trimpath -o "$BIN" . >&2)
echo "$BIN"
