#!/usr/bin/env bash
# Fetches Debezium Server (the distribution tarball, from Maven Central) into
# the benchmark cache and unpacks it once per version; prints the directory
# holding run.sh. Nothing of it is committed to this repository.
#
#   usage: bench/peers/fetch-debezium.sh [VERSION]
#
# Default 2.7.3.Final: the 2.7 line runs on Java 17 (3.x needs 21), and
# 2.7.4.Final's tarball was not on the Maven Central this was written against.
set -euo pipefail

VERSION="${1:-${DEBEZIUM_VERSION:-2.7.3.Final}}"
CACHE="${OUTBOX_CACHE:-$HOME/.cache/outbox-relay}/bench/debezium-server-$VERSION"
DIST="$CACHE/debezium-server"
if [[ ! -x $DIST/run.sh ]]; then
  mkdir -p "$CACHE"
  mvn -B -q -Dstyle.color=never \
    org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy \
    "-Dartifact=io.debezium:debezium-server-dist:$VERSION:tar.gz" \
    "-DoutputDirectory=$CACHE" >&2
  rm -rf "$DIST"
  tar -xzf "$CACHE/debezium-server-dist-$VERSION.tar.gz" -C "$CACHE"
  [[ -x $DIST/run.sh ]] || { echo "fetch-debezium.sh: no run.sh in $DIST" >&2; exit 1; }
fi
echo "$DIST"
