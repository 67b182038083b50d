#!/usr/bin/env bash
# Checks the Helm chart: `helm lint --strict`, `helm template` with the
# default values and each ci/*-values.yaml variant, and every rendered
# manifest against the Kubernetes schemas offline (kubernetes-validate, whose
# wheel carries them). Both tools come from scripts/install-deps.sh under
# ~/.cache/outbox-relay/tools; exits 77 (skipped) without them.
#
# With RELAY_BINARY, every rendered config.yaml must also pass its
# check-config.
#
#   usage: tests/deploy/helm-chart.sh CHART_DIR [RELAY_BINARY]
set -euo pipefail

chart="$(realpath "$1")"
relay="${2:-}"
tools="${OUTBOX_CACHE:-$HOME/.cache/outbox-relay}/tools"
PATH="$tools/bin:$tools/venv/bin:$PATH"
for t in helm kubernetes-validate; do
  if ! command -v "$t" >/dev/null; then
    echo "$t not installed (scripts/install-deps.sh): skipped"
    exit 77
  fi
done
# Helm must not read or write a real user's configuration or cluster.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export HELM_CACHE_HOME="$work/cache" HELM_CONFIG_HOME="$work/config" HELM_DATA_HOME="$work/data"
export KUBECONFIG="$work/no-kubeconfig"

# The Kubernetes version whose schemas the manifests must satisfy.
k8s_version="${OUTBOX_K8S_VERSION:-1.30}"

variants=(default)
for f in "$chart"/ci/*-values.yaml; do variants+=("$f"); done

failed=0
for v in "${variants[@]}"; do
  args=()
  name=default
  if [[ $v != default ]]; then
    args=(-f "$v")
    name="$(basename "$v" -values.yaml)"
  fi
  echo "== $name"
  if ! helm lint --strict "$chart" "${args[@]}"; then failed=1; continue; fi
  out="$work/$name.yaml"
  if ! helm template relay "$chart" "${args[@]}" --kube-version "$k8s_version" >"$out"; then
    failed=1
    continue
  fi
  grep -E '^kind: ' "$out" | sort | uniq -c
  # CRDs (ServiceMonitor) have no built-in schema; the rest must validate.
  if ! kubernetes-validate --strict --kubernetes-version "$k8s_version" "$out"; then
    failed=1
  fi
  if [[ -n $relay ]]; then
    mkdir -p "$work/$name"
    "$tools/venv/bin/python" - "$out" "$work/$name" <<'PY'
import sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    # The relay's configs, not the Grafana dashboard's ConfigMap.
    if doc and doc["kind"] == "ConfigMap" and "config.yaml" in doc["data"]:
        open(f"{sys.argv[2]}/{doc['metadata']['name']}.yaml", "w").write(doc["data"]["config.yaml"])
PY
    for cfg in "$work/$name"/*.yaml; do
      if ! PG_PASSWORD=x KAFKA_PASSWORD=x "$relay" check-config "$cfg" >/dev/null; then
        echo "rendered $(basename "$cfg") fails check-config"
        failed=1
      fi
    done
  fi
done

# A grace period shorter than the drain must be refused at render time.
if helm template relay "$chart" --set drainTimeoutSeconds=120 >/dev/null 2>&1; then
  echo "a grace period shorter than the drain timeout rendered"
  failed=1
fi
# Values that break the schema must be refused too.
if helm template relay "$chart" --set replicaCount=0 >/dev/null 2>&1; then
  echo "replicaCount=0 passed values.schema.json"
  failed=1
fi
exit "$failed"
