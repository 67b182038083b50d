#!/usr/bin/env bash
# Fetches Debezium Server (the distribution tarball io.debezium:debezium-server-dist,
# from Maven Central) into the benchmark cache and unpacks it once per
# version; prints two lines: the directory holding run.sh, and the JAVA_HOME
# of a Java runtime new enough to run it. Nothing of it is committed to this
# repository.
#
#   usage: bench/peers/fetch-debezium.sh [VERSION]     (default 3.6.3.Final)
#
# 3.6.3.Final was the newest 3.x tarball Maven Central served when this was
# written (3.6.4 and 3.7.x: not found; its metadata lists only 3.0.0 and
# 3.6.0, but the file of 3.6.3 is there). Debezium 3.x needs Java 21 or newer;
# Debian 12 packages only 17, so the runtime is DEBEZIUM_JAVA_HOME if set,
# else the newest of JAVA_HOME and the JDKs under /usr/lib/jvm (this machine
# image has Temurin 25 there), if it is 21 or newer; refused otherwise.
set -euo pipefail

VERSION="${1:-${DEBEZIUM_VERSION:-3.6.3.Final}}"
CACHE="${OUTBOX_CACHE:-$HOME/.cache/outbox-relay}/bench/debezium-server-$VERSION"
DIST="$CACHE/debezium-server"
TARBALL="debezium-server-dist-$VERSION.tar.gz"
NEED_JAVA=21
[[ $VERSION == [12].* ]] && NEED_JAVA=17

# The feature release of the Java runtime at $1 (its `release` file), or 0.
java_feature() {
  local v
  v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release" 2>/dev/null || true)
  echo "${v:-0}"
}

java_home=""
if [[ -n ${DEBEZIUM_JAVA_HOME:-} ]]; then
  candidates=("$DEBEZIUM_JAVA_HOME")
else
  candidates=(${JAVA_HOME:+"$JAVA_HOME"} /usr/lib/jvm/*)
fi
for candidate in "${candidates[@]}"; do
  [[ -x $candidate/bin/java ]] || continue
  if (( $(java_feature "$candidate") >= NEED_JAVA )) &&
     (( $(java_feature "$candidate") > $(java_feature "${java_home:-/nonexistent}") )); then
    java_home="$candidate"
  fi
done
if [[ -z $java_home ]]; then
  echo "fetch-debezium.sh: Debezium Server $VERSION needs Java $NEED_JAVA or newer;" \
       "none in ${candidates[*]} (set DEBEZIUM_JAVA_HOME)" >&2
  exit 1
fi

if [[ ! -x $DIST/run.sh ]]; then
  mkdir -p "$CACHE"
  # dependency:copy reads the artifact's POM and its parents; Maven Central
  # does not serve io.debezium:debezium-server (the parent) for 3.x, so the
  # file itself is fetched from the same repository by the wagon plugin.
  if ! mvn -B -q -Dstyle.color=never \
      org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy \
      "-Dartifact=io.debezium:debezium-server-dist:$VERSION:tar.gz" \
      "-DoutputDirectory=$CACHE" >&2; then
    echo "fetch-debezium.sh: dependency:copy failed; fetching the file alone" >&2
    mvn -B -q -Dstyle.color=never \
      org.codehaus.mojo:wagon-maven-plugin:2.0.2:download-single \
      -Dwagon.url=https://repo.maven.apache.org/maven2 \
      "-Dwagon.fromFile=io/debezium/debezium-server-dist/$VERSION/$TARBALL" \
      "-Dwagon.toFile=$CACHE/$TARBALL" >&2
  fi
  rm -rf "$DIST"
  tar -xzf "$CACHE/$TARBALL" -C "$CACHE"
  # About 700 MB for 3.x (every connector and sink): the unpacked tree is
  # what is kept.
  rm -f "$CACHE/$TARBALL"
  [[ -x $DIST/run.sh ]] || { echo "fetch-debezium.sh: no run.sh in $DIST" >&2; exit 1; }
fi
echo "$DIST"
echo "$java_home"
