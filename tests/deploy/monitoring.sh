#!/usr/bin/env bash
# Checks what the Helm chart ships for monitoring:
#   1. the PrometheusRule rendered from ci/monitoring-values.yaml passes
#      `promtool check rules`, and `promtool test rules` with
#      monitoring/alerts.test.yaml: every alert fires on the recorded series
#      where it should and stays quiet where it should not; every alert has
#      a scenario where it fires;
#   2. the thresholds and switches in values.yaml reach the rules;
#   3. the Grafana dashboard is valid JSON, every panel and variable queries
#      the dashboard's data source variable, every panel's PromQL parses
#      (promtool, with Grafana's variables substituted), and the ConfigMap
#      carries the file unchanged.
# Which metrics the dashboard and the rules may use is checked against a
# real relay's /metrics by the integration suite (observability_test,
# through monitoring/check-metrics.py).
#
# Needs helm and the virtualenv from scripts/install-deps.sh (for PyYAML),
# and promtool (Debian's prometheus); exits 77 (skipped) without them.
#
#   usage: tests/deploy/monitoring.sh CHART_DIR
set -euo pipefail

chart="$(realpath "$1")"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="${OUTBOX_CACHE:-$HOME/.cache/outbox-relay}/tools"
PATH="$tools/bin:$PATH"
py="$tools/venv/bin/python"
for t in helm promtool "$py"; do
  if ! command -v "$t" >/dev/null; then
    echo "$t not installed (scripts/install-deps.sh): skipped"
    exit 77
  fi
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export HELM_CACHE_HOME="$work/cache" HELM_CONFIG_HOME="$work/config" HELM_DATA_HOME="$work/data"
export KUBECONFIG="$work/no-kubeconfig"

failed=0
fail() {
  echo "FAIL: $*"
  failed=1
}

# render OUT.yaml [helm args...]: the PrometheusRule's spec as a rules file.
render_rules() {
  local out="$1"
  shift
  helm template relay "$chart" -f "$chart/ci/monitoring-values.yaml" "$@" \
    --show-only templates/prometheusrule.yaml >"$work/rule.yaml" || return 1
  "$py" - "$work/rule.yaml" "$out" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
assert doc["kind"] == "PrometheusRule", doc["kind"]
yaml.safe_dump(doc["spec"], open(sys.argv[2], "w"), sort_keys=False, width=1000)
PY
}

echo "== alerting rules"
cp "$here/monitoring/alerts.test.yaml" "$work/"
if render_rules "$work/rules.yaml"; then
  promtool check rules "$work/rules.yaml" || fail "promtool check rules"
  promtool test rules "$work/alerts.test.yaml" || fail "promtool test rules"
  # Each alert of the rules has a test case that expects it to fire.
  "$py" - "$work/rules.yaml" "$work/alerts.test.yaml" <<'PY' || fail "an alert without a firing test"
import sys, yaml
rules = yaml.safe_load(open(sys.argv[1]))
tests = yaml.safe_load(open(sys.argv[2]))
alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
fired = {c["alertname"] for t in tests["tests"] for c in t.get("alert_rule_test", [])
         if c.get("exp_alerts")}
quiet = {c["alertname"] for t in tests["tests"][:1] for c in t.get("alert_rule_test", [])
         if not c.get("exp_alerts")}
bad = False
for a in sorted(alerts):
    if a not in fired:
        print(f"{a}: no test case where it fires"); bad = True
    if a not in quiet:
        print(f"{a}: not checked quiet in the healthy scenario"); bad = True
for a in sorted((fired | quiet) - alerts):
    print(f"{a}: tested but not in the rules"); bad = True
print(f"{len(alerts)} alerts, each fires in a test and is quiet on healthy series")
sys.exit(1 if bad else 0)
PY
else
  fail "helm template (PrometheusRule)"
fi

echo "== thresholds and switches"
if render_rules "$work/tuned.yaml" \
  --set prometheusRule.alerts.retainedWal.bytes=5368709120 \
  --set-json prometheusRule.alerts.lag.seconds=2.5 \
  --set prometheusRule.alerts.slotAtRisk.safeWalBytes=123456789 \
  --set prometheusRule.alerts.stalled.window=30m \
  --set prometheusRule.alerts.notStreaming.for=2m \
  --set prometheusRule.alerts.fenced.enabled=false \
  --set prometheusRule.selector='namespace="payments"' \
  --set prometheusRule.runbookBaseUrl=https://runbooks.example/outbox; then
  "$py" - "$work/tuned.yaml" <<'PY' || fail "values did not reach the rules"
import sys, yaml
rules = {r["alert"]: r for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"]}
checks = [
    ("> 5368709120" in rules["OutboxRelayRetainedWalHigh"]["expr"], "retainedWal.bytes"),
    ("> 2.5" in rules["OutboxRelayLagHigh"]["expr"], "lag.seconds"),
    ("< 123456789" in rules["OutboxRelaySlotAtRisk"]["expr"], "slotAtRisk.safeWalBytes"),
    ("[30m]" in rules["OutboxRelayStalled"]["expr"], "stalled.window"),
    ("30m" in rules["OutboxRelayStalled"]["annotations"]["summary"], "stalled.window in the summary"),
    (rules["OutboxRelayNotStreaming"]["for"] == "2m", "notStreaming.for"),
    ("OutboxRelayFenced" not in rules, "fenced.enabled=false"),
    (all('{namespace="payments"' in r["expr"] and "job=" not in r["expr"] for r in rules.values()),
     "selector"),
    (rules["OutboxRelaySlotLost"]["annotations"]["runbook_url"]
     == "https://runbooks.example/outbox#outboxrelayslotlost", "runbookBaseUrl"),
]
bad = [name for ok, name in checks if not ok]
for name in bad:
    print(f"{name}: not applied")
sys.exit(1 if bad else 0)
PY
  promtool check rules "$work/tuned.yaml" >/dev/null || fail "promtool check rules (tuned values)"
else
  fail "helm template (tuned values)"
fi
# Off by default: neither the rules nor the dashboard render.
if helm template relay "$chart" | grep -Eq '^kind: PrometheusRule|grafana_dashboard'; then
  fail "the default values render a PrometheusRule or the dashboard"
fi

echo "== Grafana dashboard"
if helm template relay "$chart" -f "$chart/ci/monitoring-values.yaml" \
  --show-only templates/dashboard-configmap.yaml >"$work/dashboard-cm.yaml"; then
  "$py" - "$chart/files/dashboard.json" "$work/dashboard-cm.yaml" "$work/panels.yaml" <<'PY' ||
import json, re, sys, yaml
path, cm_path, rules_path = sys.argv[1:4]
text = open(path).read()
dash = json.loads(text)
cm = yaml.safe_load(open(cm_path))
bad = []
if cm["metadata"]["labels"].get("grafana_dashboard") != "1":
    bad.append("ConfigMap without the sidecar's label grafana_dashboard=1")
if json.loads(cm["data"]["outbox-relay.json"]) != dash:
    bad.append("the ConfigMap's JSON differs from files/dashboard.json")
for key in ("uid", "title", "schemaVersion", "panels", "templating"):
    if key not in dash:
        bad.append(f"dashboard has no {key}")
variables = {v["name"]: v for v in dash["templating"]["list"]}
if variables.get("datasource", {}).get("type") != "datasource":
    bad.append("no data source variable named datasource")
ds_ok = lambda d: isinstance(d, dict) and d.get("uid") == "${datasource}"
panels = [p for p in dash["panels"] if p["type"] != "row"]
ids = [p["id"] for p in dash["panels"]]
if len(ids) != len(set(ids)):
    bad.append("panel ids repeat")
exprs = []
for p in panels:
    where = f"panel {p['id']} ({p['title']})"
    if not p.get("targets"):
        bad.append(f"{where}: no query")
    if not ds_ok(p.get("datasource")):
        bad.append(f"{where}: data source is not ${{datasource}}")
    if not p.get("description"):
        bad.append(f"{where}: no description")
    g = p["gridPos"]
    if g["x"] + g["w"] > 24:
        bad.append(f"{where}: wider than the dashboard")
    for t in p.get("targets", []):
        if not ds_ok(t.get("datasource")):
            bad.append(f"{where} {t['refId']}: data source is not ${{datasource}}")
        exprs.append((f"{where} {t['refId']}", t["expr"]))
for name, v in variables.items():
    if v["type"] == "query":
        if not ds_ok(v.get("datasource")):
            bad.append(f"variable {name}: data source is not ${{datasource}}")
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", v["query"]["query"])
        if not m:
            bad.append(f"variable {name}: not label_values(selector, label)")
        else:
            exprs.append((f"variable {name}", m.group(1)))
# Grafana's variables as PromQL would see them once substituted.
subst = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "6h", "$job": ".+",
         "$slot": ".+"}
def concrete(e):
    for k in sorted(subst, key=len, reverse=True):
        e = e.replace(k, subst[k])
    if "$" in e:
        raise ValueError(f"unknown variable in {e}")
    return e
rules = []
for i, (where, e) in enumerate(exprs):
    try:
        rules.append({"record": f"dashboard:query_{i}", "expr": concrete(e),
                      "labels": {"where": where[:60]}})
    except ValueError as err:
        bad.append(f"{where}: {err}")
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(rules_path, "w"),
               width=1000)
for b in bad:
    print(b)
print(f"{len(panels)} panels, {len(exprs)} queries")
sys.exit(1 if bad else 0)
PY
    fail "dashboard"
  # Every query parses: promtool reads them as recording rules.
  promtool check rules "$work/panels.yaml" >/dev/null || {
    promtool check rules "$work/panels.yaml"
    fail "a dashboard query does not parse"
  }
else
  fail "helm template (dashboard)"
fi

exit "$failed"
