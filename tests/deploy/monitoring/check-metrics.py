#!/usr/bin/env python3
"""Checks that the Helm chart's Grafana dashboard and alerting rules use only
what the relay exports.

    check-metrics.py CHART_DIR PAGE...

PAGE: /metrics pages scraped from running relays (the integration suite's
observability_test passes one from a relay in group mode with every family
on). Every outbox_relay_* name in files/dashboard.json and
templates/prometheusrule.yaml must be a sample name on a page; every label a
selector or a `by`/`on` clause uses must be on the page or be one that
Prometheus adds to a target (job, instance, and Kubernetes' namespace, pod
…); and fixed label values (wal_status="lost", le) must be ones the pages
carry. Exits 1 listing what is not, 0 otherwise. Standard library only.
"""
import json
import re
import sys

# Labels the scrape adds (Prometheus, and prometheus-operator's ServiceMonitor).
TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "endpoint", "container"}
# Label values that depend on the installation: not compared with the pages.
FREE_VALUES = {"slot", "topic", "version", "librdkafka_version", "libpq_version"}

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
NAME = re.compile(r"\b(outbox_relay_[a-zA-Z0-9_]+)\b")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def read_pages(paths):
    """{sample name: {label: set of values}} over every page."""
    exported = {}
    for path in paths:
        for line in open(path, encoding="utf-8"):
            if line.startswith("#") or not line.strip():
                continue
            m = SAMPLE.match(line)
            if not m:
                raise SystemExit(f"{path}: not a sample line: {line!r}")
            labels = exported.setdefault(m.group(1), {})
            for name, _, value in LABEL.findall(m.group(3) or ""):
                labels.setdefault(name, set()).add(value)
    return exported


def dashboard_queries(path):
    dash = json.load(open(path, encoding="utf-8"))
    out = []

    def panels(items):
        for p in items:
            yield p
            yield from panels(p.get("panels", []))

    for p in panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            out.append((f"dashboard panel {p.get('id')} ({p.get('title')}) {t.get('refId')}",
                        t.get("expr", "")))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query", "")
        if v.get("type") == "query" and q:
            out.append((f"dashboard variable {v.get('name')}", q))
    return out


def rule_queries(path):
    """The expr: lines of the rules template, with Helm's actions taken out:
    the selector becomes nothing, the grouping labels what the template
    defines, anything else a placeholder."""
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"\{\{-?\s*/\*.*?\*/\s*-?\}\}", "", text, flags=re.S)
    by = re.search(r'\$by\s*:=\s*"([^"]*)"', text)
    text = text.replace("{{ $by }}", by.group(1) if by else "")
    text = re.sub(r"\{\{-?\s*\$sel\s*-?\}\}\s*,?", "", text)
    out = []
    expr, line_no = None, 0
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("expr:"):
            expr, line_no = [stripped[5:].strip().lstrip("|-").strip()], n
        elif expr is not None and stripped and not re.match(r"^[a-z_]+:", stripped) \
                and not stripped.startswith("{{- include") and not stripped.startswith("{{- end"):
            expr.append(stripped)
            continue
        elif expr is not None:
            out.append((f"{path}:{line_no}", " ".join(expr)))
            expr = None
    if expr is not None:
        out.append((f"{path}:{line_no}", " ".join(expr)))
    # Template actions left (thresholds, windows, the chart's slots) are no
    # PromQL of ours.
    return [(w, re.sub(r"\{\{.*?\}\}", "1", e)) for w, e in out]


def selectors(expr):
    """(metric name, [(label, op, value)]) for each outbox_relay_ name."""
    for m in NAME.finditer(expr):
        rest = expr[m.end():]
        matchers = []
        if rest.startswith("{"):
            body = rest[1:rest.find("}")]
            matchers = LABEL.findall(body)
        yield m.group(1), matchers


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    chart, pages = argv[1], argv[2:]
    exported = read_pages(pages)
    all_labels = set(TARGET_LABELS)
    for labels in exported.values():
        all_labels |= set(labels)
    queries = dashboard_queries(f"{chart}/files/dashboard.json") + \
        rule_queries(f"{chart}/templates/prometheusrule.yaml")
    problems, used = [], set()
    for where, expr in queries:
        for name, matchers in selectors(expr):
            used.add(name)
            if name not in exported:
                problems.append(f"{where}: {name} is not exported")
                continue
            for label, op, value in matchers:
                if label == "__name__":
                    problems.append(f"{where}: {name}: match metric names explicitly")
                    continue
                if label in TARGET_LABELS:
                    continue
                if label not in exported[name]:
                    problems.append(f"{where}: {name} has no label {label}")
                    continue
                if label in FREE_VALUES or "$" in value or op.startswith("!"):
                    continue
                alternatives = value.split("|") if op == "=~" else [value]
                for v in alternatives:
                    if re.fullmatch(r"[\w.+-]+", v) and v not in exported[name][label]:
                        problems.append(f"{where}: {name}{{{label}=\"{v}\"}} is never exported")
        for group in GROUPING.findall(expr):
            for label in (s.strip() for s in group.split(",")):
                if label and label not in all_labels:
                    problems.append(f"{where}: grouping by {label}, which no series has")
    if not used:
        problems.append("no outbox_relay_ metric found in the dashboard or the rules")
    for p in problems:
        print(p)
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in exported if n.startswith("outbox_relay_")}
    unused = sorted(f for f in families
                    if not any(u == f or u.startswith(f + "_") for u in used))
    print(f"{len(queries)} queries use {len(used)} metric names, "
          f"{len(problems)} problem(s); exported but not used: {', '.join(unused) or 'none'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
