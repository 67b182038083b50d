#!/usr/bin/env bash
# Builds librdkafka from Debian's source package (unstable's version) into a
# cache prefix, for kafka_txn_commit_bench against a newer client than
# bookworm's 2.0.2. Prints the wall and CPU seconds of each step.
#
#   bench/build-librdkafka.sh [VERSION [DEBIAN_REVISION]]   default 2.14.2 1
#
# Needs: curl, dpkg-source, a C compiler, and the -dev packages of what it
# links: libssl-dev libsasl2-dev libzstd-dev liblz4-dev zlib1g-dev
# libcurl4-openssl-dev.
# OUTBOX_CACHE: cache root, default ~/.cache/outbox-relay; the library goes to
# $OUTBOX_CACHE/librdkafka-VERSION, the sources to $OUTBOX_CACHE/src.
# JOBS: make -j, default 2.
set -euo pipefail

VERSION="${1:-2.14.2}"
REVISION="${2:-1}"
CACHE="${OUTBOX_CACHE:-$HOME/.cache/outbox-relay}"
PREFIX="$CACHE/librdkafka-$VERSION"
WORK="$CACHE/src/librdkafka-$VERSION"
POOL="https://deb.debian.org/debian/pool/main/libr/librdkafka"
JOBS="${JOBS:-2}"
DSC="librdkafka_${VERSION}-${REVISION}.dsc"

timed() {
  local label="$1"
  shift
  /usr/bin/time -o "$WORK/times.txt" -a -f "$label: wall %e s, user %U s, sys %S s" "$@"
}

mkdir -p "$WORK"
cd "$WORK"
[[ -f $DSC ]] || curl -fsS -m 120 -O "$POOL/$DSC"
# The files and their SHA-256 from the .dsc's Checksums-Sha256 section.
mapfile -t files < <(awk '/^Checksums-Sha256:/{s=1;next} /^[^ ]/{s=0} s&&NF==3{print $1" "$3}' "$DSC")
((${#files[@]} > 0)) || { echo "no checksums in $DSC" >&2; exit 1; }
for entry in "${files[@]}"; do
  name="${entry#* }"
  [[ -f $name ]] || curl -fsS -m 600 -O "$POOL/$name"
  echo "${entry%% *}  $name" | sha256sum -c --quiet -
done

rm -rf build times.txt
dpkg-source -x --no-check "$DSC" build >/dev/null
cd build
# debian/rules regenerates the OpenTelemetry sources with nanopb from
# opentelemetry-proto, which bookworm lacks: the vendored ones are used here
# (and the vendored cJSON), at the paths upstream gives them.
patch -R -p1 -s <debian/patches/Use-nanopb-generated-header-paths-for-opentelemetry.patch

# Otherwise as debian/rules: C11 threads, and Debian's dpkg-buildflags
# (-g -O2, hardening, bindnow); SSL, SASL, zstd, lz4, zlib and curl from
# the system. Without -g (CFLAGS=-O2 and --disable-debug-symbols) the make
# step takes a quarter less CPU.
for flags in CFLAGS CPPFLAGS LDFLAGS; do
  value="$(DEB_BUILD_MAINT_OPTIONS=hardening=+bindnow dpkg-buildflags --get "$flags")"
  export "$flags=$value"
done
# Logs go outside the tree: mklove takes any ./configure.NAME file for a
# module of its own.
timed configure ./configure --prefix="$PREFIX" --enable-c11threads \
  --enable-ssl --enable-gssapi --enable-zstd --enable-lz4-ext --enable-zlib --enable-curl \
  --disable-cjson-ext --disable-nanopb-ext >../configure-output.txt 2>&1 ||
  { tail -n 30 ../configure-output.txt >&2; exit 1; }
# The C library only: the relay and the benchmark use the C API.
timed "make (C library)" make -C src -j"$JOBS" >../make-output.txt 2>&1 ||
  { tail -n 30 ../make-output.txt >&2; exit 1; }
rm -rf "$PREFIX"
timed install make -C src install >../install-output.txt 2>&1 ||
  { tail -n 30 ../install-output.txt >&2; exit 1; }
cat "$WORK/times.txt"
echo "$PREFIX"
