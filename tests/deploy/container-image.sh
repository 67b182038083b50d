#!/usr/bin/env bash
# Builds the container image from the Dockerfile and runs it the way the Helm
# chart does, without Docker and without a registry:
#   1. debian:12 and debian:12-slim are made from Debian packages with
#      mmdebstrap and imported under the names the Dockerfile uses (once; they
#      stay in the cache until BASE_VERSION changes);
#   2. `buildah bud --pull=never --layers` builds the Dockerfile; unchanged
#      steps come from the layer cache and the compile step from its ccache
#      mount, so a rebuild after a source change compiles only what changed;
#   3. podman runs the image: --version, its user, the entry point, command
#      and port against the chart's deployment, check-config on the example
#      it ships; then, with the chart's rendered config.yaml mounted where the
#      chart mounts it, as the chart's user, with a read-only root and no
#      capabilities, the relay streams an outbox row from PostgreSQL to Kafka
#      (both on loopback; the container uses the host's network) and stops
#      cleanly on SIGTERM.
# Container storage, the ccache and the base images live under
# ${OUTBOX_CACHE:-$HOME/.cache/outbox-relay}/containers. Needs root (rootful
# buildah and podman, mmdebstrap --mode=root) and the tools that
# scripts/install-deps.sh installs; exits 77 (skipped) without them.
#
#   usage: tests/deploy/container-image.sh SOURCE_DIR
set -euo pipefail

src="$(realpath "$1")"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
harness="$(realpath "$here/../harness")"
cache="${OUTBOX_CACHE:-$HOME/.cache/outbox-relay}"
tools="$cache/tools"
store="$cache/containers"
chart="$src/deploy/helm/outbox-relay"
# Bump to make the base images again (e.g. for a newer point release).
BASE_VERSION=1
MIRROR="${OUTBOX_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${OUTBOX_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
IMAGE=localhost/outbox-relay:test
BUILD_IMAGE=localhost/outbox-relay-build:test

log() { echo "container-image: $*"; }
t0=$SECONDS
stage() { log "$* (at $((SECONDS - t0)) s)"; }
fail() {
  log "FAIL: $*"
  exit 1
}

if [[ $EUID -ne 0 ]]; then
  echo "needs root (rootful buildah and podman): skipped"
  exit 77
fi
PATH="$tools/bin:$PATH"
for t in buildah podman runc mmdebstrap helm kcat psql; do
  if ! command -v "$t" >/dev/null; then
    echo "$t not installed (scripts/install-deps.sh): skipped"
    exit 77
  fi
done
# kubernetes-validate's virtualenv, for its PyYAML.
py="$tools/venv/bin/python"
if ! [[ -x $py ]]; then
  echo "$py missing (scripts/install-deps.sh): skipped"
  exit 77
fi

# Storage of our own, so that the test neither sees nor touches other images.
mkdir -p "$store/storage" "$store/tmp"
cat >"$store/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$store/storage"
runroot = "/run/outbox-relay-containers"
EOF
export CONTAINERS_STORAGE_CONF="$store/storage.conf"
# buildah keeps the RUN --mount=type=cache directories (the ccache) in
# $TMPDIR/buildah-cache.
export TMPDIR="$store/tmp"
# runc, not crun: crun refuses hybrid cgroup v1/v2 hosts.
podman() { command podman --runtime runc "$@"; }
# One run at a time in this storage: another run's prune must not remove
# layers that this one is building on.
exec 9>"$store/lock"
flock 9

# --- 1. base images -------------------------------------------------------

if [[ "$(cat "$store/base.version" 2>/dev/null)" != "$BASE_VERSION" ]]; then
  podman rmi -f docker.io/library/debian:12 docker.io/library/debian:12-slim >/dev/null 2>&1 || true
fi
# Like Docker's debian:12-slim: dpkg leaves out documentation and translations.
slim_cfg="$store/slim.dpkg.cfg"
printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
  'path-exclude /usr/share/man/*' 'path-exclude /usr/share/groff/*' \
  'path-exclude /usr/share/info/*' 'path-exclude /usr/share/lintian/*' \
  'path-exclude /usr/share/linda/*' 'path-exclude /usr/share/locale/*' >"$slim_cfg"
make_base() {
  local ref="$1" start=$SECONDS
  shift
  if podman image exists "$ref"; then return; fi
  stage "making $ref with mmdebstrap"
  mmdebstrap --quiet --mode=root --variant=minbase --format=tar "$@" bookworm - \
    "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" \
    "deb $SECURITY_MIRROR bookworm-security main" |
    podman import --quiet --change 'CMD ["bash"]' - "$ref" >/dev/null
  log "$ref: made in $((SECONDS - start)) s"
}
# Both at once: mmdebstrap mostly waits for the mirror.
make_base docker.io/library/debian:12 &
make_base docker.io/library/debian:12-slim --dpkgopt="$slim_cfg" &
wait -n && wait -n || fail "making the base images failed"
echo "$BASE_VERSION" >"$store/base.version"

# --- 2. build -------------------------------------------------------------

stage "buildah bud"
bud=(buildah bud --pull=never --layers --network host --runtime runc --quiet)
# The build stage gets a name of its own, so that pruning the images of
# earlier builds keeps its cached layers.
"${bud[@]}" --target build -t "$BUILD_IMAGE" "$src" >/dev/null
"${bud[@]}" -t "$IMAGE" "$src" >/dev/null
podman image prune -f >/dev/null
stage "built $IMAGE ($(podman image inspect --format '{{.Size}}' "$IMAGE") bytes)"

# --- 3. run ---------------------------------------------------------------

work="$(mktemp -d /tmp/container-image.XXXXXX)"
# The PostgreSQL server and the container's user must reach files in it.
chmod 755 "$work"
container="outbox-relay-test-$$"
cleanup() {
  podman rm -f -t 0 "$container" >/dev/null 2>&1 || true
  "$harness/kafka-broker.sh" destroy "$work/kafka" >/dev/null 2>&1 || true
  "$harness/pg-server.sh" destroy "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# podman asks for RLIMIT_NOFILE and RLIMIT_NPROC above the current hard
# limits, which fails without CAP_SYS_RESOURCE: ask for what there is.
nofile="$(ulimit -Hn)"
[[ $nofile == unlimited || $nofile -gt 65536 ]] && nofile=65536
limits=(--ulimit "nofile=$nofile:$nofile" --ulimit nproc=4096:4096)
run=(podman run --rm --network host "${limits[@]}")

# The image's configuration against the chart: entry point and command as
# the chart runs it, the port it names, a numeric non-root user.
podman image inspect --format '{{json .Config}}' "$IMAGE" >"$work/config.json"
helm template relay "$chart" >"$work/chart.yaml"
"$py" - "$work/config.json" "$work/chart.yaml" <<'PY' || fail "image and chart disagree"
import json, sys, yaml
config = json.load(open(sys.argv[1]))
docs = [d for d in yaml.safe_load_all(open(sys.argv[2])) if d]
deployment = next(d for d in docs if d["kind"] == "Deployment")
pod = deployment["spec"]["template"]["spec"]
c = pod["containers"][0]
problems = []
def want(what, got, expected):
    if got != expected:
        problems.append(f"{what}: image has {got!r}, chart wants {expected!r}")
want("entrypoint", config.get("Entrypoint"), c.get("command", ["/usr/bin/outbox-relay"]))
want("command (the chart's args)", config.get("Cmd"), c["args"])
ports = sorted(config.get("ExposedPorts", {}))
want("exposed ports", ports, [f'{p["containerPort"]}/{p["protocol"].lower()}' for p in c["ports"]])
sc = pod["securityContext"]
want("user", config.get("User"), f'{sc["runAsUser"]}:{sc["runAsGroup"]}')
mounts = {m["mountPath"] for m in c["volumeMounts"]}
config_path = c["args"][c["args"].index("--config") + 1]
if not any(config_path.startswith(m + "/") for m in mounts):
    problems.append(f"{config_path} is not on a volume the chart mounts ({sorted(mounts)})")
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
PY
log "entry point, command, port and user match the chart"

want_version="$(sed -n 's/^project(outbox-relay VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")"
got="$("${run[@]}" "$IMAGE" --version)"
[[ $got == *"$want_version"* ]] || fail "--version says '$got', expected $want_version"
log "--version: $got"

uid="$("${run[@]}" --entrypoint /usr/bin/id "$IMAGE" -u)"
[[ $uid =~ ^[0-9]+$ && $uid -ne 0 ]] || fail "runs as uid '$uid'"
log "runs as uid $uid"

"${run[@]}" --read-only -e PG_PASSWORD=x -e KAFKA_PASSWORD=x "$IMAGE" check-config \
  /usr/share/doc/outbox-relay/examples/outbox-relay.example.yaml >/dev/null ||
  fail "check-config on the shipped example"
"${run[@]}" --entrypoint /bin/ls "$IMAGE" /usr/share/outbox-relay/sql/01-outbox-table.sql >/dev/null ||
  fail "the SQL files are missing"
log "check-config on the shipped example: ok"

# --- 4. end to end, as the chart runs it ----------------------------------

stage "starting PostgreSQL and Kafka"
export HARNESS_OWNER_PID=$$
pg_port="$("$harness/pg-server.sh" start "$work/pg" | tail -1)"
bootstrap="$(KAFKA_EXTRA_PROPS=auto.create.topics.enable=true \
  "$harness/kafka-broker.sh" start "$work/kafka" | tail -1)"
sql() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres "$@"; }
sql -d postgres -c 'CREATE DATABASE app' >/dev/null
sql -d app -f "$src/sql/01-outbox-table.sql" -f "$src/sql/02-relay-role.sql" >/dev/null

# shellcheck source=tests/harness/lib.sh
. "$harness/lib.sh"
http_port="$(free_port)"
helm template relay "$chart" \
  --set-string "config.postgres.dsn=host=127.0.0.1 port=$pg_port dbname=app user=outbox_relay password=\${PG_PASSWORD}" \
  --set-string "config.kafka.brokers=$bootstrap" --set config.kafka.create_topics=true \
  --set "http.port=$http_port" --set drainTimeoutSeconds=10 >"$work/chart-e2e.yaml"
mkdir -p "$work/etc"
# Mounts, user and security settings from the rendered Deployment, turned
# into podman options; the ConfigMap's files go where its volume is mounted.
"$py" - "$work/chart-e2e.yaml" "$work/etc" >"$work/podman-args" <<'PY'
import sys, yaml, os
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
dep = next(d for d in docs if d["kind"] == "Deployment")
pod = dep["spec"]["template"]["spec"]
c = pod["containers"][0]
volumes = {v["name"]: v for v in pod["volumes"]}
args = []
for m in c["volumeMounts"]:
    v = volumes[m["name"]]
    if "configMap" in v:
        cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == v["configMap"]["name"])
        for name, text in cm["data"].items():
            with open(os.path.join(sys.argv[2], name), "w") as f:
                f.write(text)
            os.chmod(os.path.join(sys.argv[2], name), 0o644)
        args += ["--volume", f'{sys.argv[2]}:{m["mountPath"]}:ro']
    elif "emptyDir" in v:
        args += ["--tmpfs", f'{m["mountPath"]}:rw,size={v["emptyDir"].get("sizeLimit", "16Mi").replace("Mi", "m")}']
    else:
        sys.exit(f"volume {m['name']}: unexpected kind")
psc, sc = pod["securityContext"], c["securityContext"]
args += ["--user", f'{psc["runAsUser"]}:{psc["runAsGroup"]}']
if sc.get("readOnlyRootFilesystem"):
    args.append("--read-only")
if not sc.get("allowPrivilegeEscalation", True):
    args += ["--security-opt", "no-new-privileges"]
for cap in sc.get("capabilities", {}).get("drop", []):
    args += ["--cap-drop", cap]
print("\n".join(args))
print("--")
print("\n".join(c["args"]))
PY
mapfile -t lines <"$work/podman-args"
sep=0
while [[ ${lines[$sep]} != -- ]]; do sep=$((sep + 1)); done
opts=("${lines[@]:0:$sep}")
args=("${lines[@]:$((sep + 1))}")
chmod 755 "$work/etc"

stage "running the relay as the chart does: ${opts[*]} $IMAGE ${args[*]}"
podman run -d --network host "${limits[@]}" --name "$container" -e PG_PASSWORD=unused "${opts[@]}" "$IMAGE" "${args[@]}" >/dev/null

http_get() {
  "$py" - "$1" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        sys.stdout.write(r.read().decode())
except Exception:
    sys.exit(1)
PY
}
ready=0
for _ in $(seq 1 60); do
  if http_get "http://127.0.0.1:$http_port/readyz" >/dev/null; then
    ready=1
    break
  fi
  [[ "$(podman inspect --format '{{.State.Running}}' "$container")" == true ]] || break
  sleep 1
done
if [[ $ready -ne 1 ]]; then
  podman logs "$container" | tail -40
  fail "the relay did not become ready"
fi
log "/readyz: ready"

sql -d app -f "$src/sql/03-example-usage.sql" >/dev/null
got=""
for _ in $(seq 1 30); do
  got="$(timeout 20 kcat -C -b "$bootstrap" -t orders -o beginning -c 1 -e -q -f '%k %s\n' 2>/dev/null || true)"
  [[ -n $got ]] && break
  sleep 1
done
want_record='42 {"order_id": 42}'
if [[ $got != "$want_record" ]]; then
  podman logs "$container" | tail -40
  fail "topic orders has '$got', expected '$want_record'"
fi
log "Kafka topic orders: $got"
metrics="$(http_get "http://127.0.0.1:$http_port/metrics")" || fail "GET /metrics failed"
published="$(grep -E '^outbox_relay_records_published_total.*orders' <<<"$metrics" || true)"
[[ $published =~ \ 1$ ]] || fail "/metrics: expected one record published to orders, got '$published'"
log "/metrics: $published"

podman stop -t 30 "$container" >/dev/null
status="$(podman inspect --format '{{.State.ExitCode}}' "$container")"
if [[ $status -ne 0 ]]; then
  podman logs "$container" | tail -40
  fail "exit status $status after SIGTERM"
fi
log "stopped on SIGTERM with exit status 0"
stage "ok"
