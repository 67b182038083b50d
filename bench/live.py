#!/usr/bin/env python3
"""Live latency benchmark: commit-to-Kafka latency of outbox-relay under a
constant insert rate.

Driven by `bench/run.sh --live` (which builds first); see README.md,
"Benchmarks". Reuses bench.py's relay configuration and results file, and the servers
of common.py.

For each rate it truncates the outbox, creates a fresh slot and a fresh topic
with message.timestamp.type=LogAppendTime, starts the relay and waits until it
streams, sends a few warm-up rows through (so the producer has the topic's
metadata; they are not counted), then runs

  pgbench -n -M prepared -f <one INSERT of a 256-byte payload> --rate=R -T S -c C -j J

against PostgreSQL with track_commit_timestamp = on. Once the topic holds
every row, it reads each record's LogAppendTime and `outbox-id` header back
with kcat, joins them on the rows' pg_xact_commit_timestamp(xmin), and
reports latency = LogAppendTime - commit time: p50, p99, p99.9, max over
every row, plus rows missing from the topic (must be 0) and duplicates.

LogAppendTime is when the broker wrote a record, not when a reader can see
it: under exactly_once (the relay's default) a record is visible to a
read_committed consumer only once its Kafka transaction commits. So a
read_committed kcat (fetch.wait.max.ms 5) reads the topic throughout the
run, and the time each row first reached it is reported as well: visible
latency = first read - commit time.
"""

import argparse
import bisect
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
import urllib.request

import bench
import common
from common import fmt, log

RATES = [1000, 5000, 10000]
GOAL_RATE = 5000
GOAL_P99_MS = 10.0
WARM_UP_ROWS = 20
# The broker is started for the run: its JVM compiles its hot paths over the
# first minute of load, on the same two cores as everything measured.
WARM_UP_RATE = 2000
# pgbench skips (and counts) a transaction that could not start within this
# many ms of its schedule: the rate was not kept.
LATENCY_LIMIT_MS = 100
PG_CONF = ["track_commit_timestamp = on"]
TOPIC_CONFIGS = ["message.timestamp.type=LogAppendTime"]

# One row per transaction, as bench/load.sql's "256B x1" writes it: keys
# key-0 … key-999, a small jsonb headers, 256 incompressible payload bytes
# (eight SHA-256 digests of consecutive numbers). The payloads are computed
# once, one per key, so that the server's CPU goes to the inserts and the
# walsender rather than to hashing at 10,000 rows/s on the same cores.
PAYLOADS_SQL = """
CREATE TABLE IF NOT EXISTS bench_live_payloads (k int PRIMARY KEY, payload bytea NOT NULL);
INSERT INTO bench_live_payloads
SELECT k, sha256(int8send(k * 8)) || sha256(int8send(k * 8 + 1)) || sha256(int8send(k * 8 + 2)) ||
          sha256(int8send(k * 8 + 3)) || sha256(int8send(k * 8 + 4)) ||
          sha256(int8send(k * 8 + 5)) || sha256(int8send(k * 8 + 6)) || sha256(int8send(k * 8 + 7))
FROM generate_series(0, 999) AS k
ON CONFLICT (k) DO NOTHING;
"""
PGBENCH_SCRIPT = """\\set k random(0, 999)
INSERT INTO public.outbox (topic, key, headers, payload)
SELECT '{topic}', 'key-' || :k, '{{"type": "BenchEvent"}}', payload
FROM bench_live_payloads WHERE k = :k;
"""


class LiveResult:
    def __init__(self, rate, seconds, clients, threads):
        self.rate = rate
        self.seconds = seconds
        self.clients = clients
        self.threads = threads
        self.txns = None          # pgbench: transactions actually processed
        self.tps = None
        self.skipped = None
        self.failed = None
        self.lag_avg_ms = None    # pgbench: rate limit schedule lag
        self.lag_max_ms = None
        self.pgbench_latency_ms = None
        self.rows = None          # rows in the outbox after the run
        self.records = None       # records read back from the topic
        self.missing = None
        self.duplicates = None
        self.latency = {}         # p50, p99, p99.9, max (ms)
        self.visible = {}         # the same, read by a read_committed consumer
        self.hist = None          # the relay's commit_to_ack histogram
        self.stalls = []          # see stalls()
        self.cpu = {}             # over the pgbench run, seconds
        self.load_before = None
        self.error = None

    @property
    def rate_kept(self):
        if self.tps is None:
            return None
        return self.tps >= 0.97 * self.rate and not self.skipped and not self.failed


def pgbench_clients(rate):
    """Enough connections that a commit's round trip does not cap the rate:
    one per 1,000 rows/s, at least 2."""
    return max(2, math.ceil(rate / 1000))


def parse_pgbench(out, r):
    def num(pattern, conv=float):
        m = re.search(pattern, out, re.M)
        return conv(m.group(1)) if m else None
    r.txns = num(r"^number of transactions actually processed: (\d+)", int)
    r.failed = num(r"^number of failed transactions: (\d+)", int)
    r.skipped = num(r"^number of transactions skipped: (\d+)", int) or 0
    r.tps = num(r"^tps = ([\d.]+)")
    r.pgbench_latency_ms = num(r"^latency average = ([\d.]+) ms")
    m = re.search(r"^rate limit schedule lag: avg ([\d.]+) \(max ([\d.]+)\) ms", out, re.M)
    if m:
        r.lag_avg_ms, r.lag_max_ms = float(m.group(1)), float(m.group(2))


def http_get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except OSError:
        return None, ""


def wait_streaming(log_path, proc, timeout=60):
    """The relay's HTTP port (from its log) once /readyz says it streams."""
    deadline = time.monotonic() + timeout
    port = None
    while time.monotonic() < deadline and proc.poll() is None:
        if port is None:
            with open(log_path) as f:
                m = re.search(r"http listening on [\d.]+:(\d+)", f.read())
            port = int(m.group(1)) if m else None
        if port is not None and http_get(port, "/readyz")[0] == 200:
            return port
        time.sleep(0.05)
    raise RuntimeError(f"relay not streaming after {timeout} s (exit {proc.poll()}), "
                       f"see {log_path}")


def relay_histogram(text):
    """(upper bounds in s, cumulative counts) of outbox_relay_commit_to_ack_seconds."""
    buckets = []
    for m in re.finditer(r'^outbox_relay_commit_to_ack_seconds_bucket\{[^}]*le="([^"]+)"\} (\d+)',
                         text, re.M):
        buckets.append((math.inf if m.group(1) == "+Inf" else float(m.group(1)),
                        int(m.group(2))))
    return buckets


def hist_summary(buckets):
    """Count, share at most 10 ms, and the bucket bound p99 falls under."""
    if not buckets or not buckets[-1][1]:
        return None
    total = buckets[-1][1]
    within_10ms = next((c for b, c in buckets if b >= 0.01), total) / total
    p99 = next(b for b, c in buckets if c >= 0.99 * total)
    return {"count": total, "within_10ms": within_10ms, "p99_le_ms": p99 * 1000}


def wait_in_topic(servers, topic, n, timeout):
    r = subprocess.run([common.KAFKA_ADMIN, servers.brokers, "count", topic, "--until", str(n),
                        "--timeout", str(timeout)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{topic} holds {r.stdout.strip() or '?'} of {n} records after "
                           f"{timeout} s: {r.stderr.strip()}")


def insert_warm_up(servers):
    servers.psql(f"INSERT INTO public.outbox (topic, key, payload) SELECT '{common.TOPIC}', "
                 f"'warm-up', '\\x00' FROM generate_series(1, {WARM_UP_ROWS})")


def topic_records(servers, topic):
    """(LogAppendTime ms, outbox-id) of every record in the topic."""
    probe = subprocess.run(["kcat", "-C", "-b", servers.brokers, "-t", topic, "-o", "beginning",
                            "-c", "1", "-e", "-q", "-J"], capture_output=True, text=True,
                           errors="replace", check=True).stdout
    if '"tstype":"logappend' not in probe.replace(" ", ""):
        raise RuntimeError(f"{topic} does not carry LogAppendTime timestamps: {probe[:200]}")
    out = subprocess.run(["kcat", "-C", "-b", servers.brokers, "-t", topic, "-o", "beginning",
                          "-e", "-q", "-f", "%T %h\\n"], capture_output=True, text=True,
                         check=True).stdout
    records = []
    for line in out.splitlines():
        ts, _, headers = line.partition(" ")
        m = re.search(r"(?:^|,)outbox-id=([0-9a-f-]+)", headers)
        if m:
            records.append((int(ts), m.group(1)))
    return records


class CommittedReader:
    """A read_committed kcat reading the topic while the run goes on: the
    wall-clock time (ms) each record first reached it, by outbox-id."""

    def __init__(self, servers, topic):
        self.first_seen = {}
        self.proc = subprocess.Popen(
            ["kcat", "-C", "-b", servers.brokers, "-t", topic, "-o", "beginning", "-u", "-q",
             "-X", "isolation.level=read_committed", "-X", "fetch.wait.max.ms=5",
             "-f", "%h\\n"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            now_ms = time.time() * 1000
            m = re.search(r"(?:^|,)outbox-id=([0-9a-f-]+)", line)
            if m and m.group(1) not in self.first_seen:
                self.first_seen[m.group(1)] = now_ms

    def wait_for(self, n, timeout):
        deadline = time.time() + timeout
        while len(self.first_seen) < n and time.time() < deadline:
            time.sleep(0.1)
        return len(self.first_seen) >= n

    def stop(self):
        common.stop_process(self.proc)
        self.thread.join(timeout=5)


def commit_times(servers):
    """outbox id -> commit time (µs since the epoch) of the pgbench rows."""
    out = servers.psql(
        "SELECT id, (extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000000)::bigint "
        "FROM public.outbox WHERE key IS DISTINCT FROM 'warm-up'")
    rows = {}
    for line in out.splitlines():
        rid, _, us = line.partition("|")
        rows[rid] = int(us)
    return rows


def percentile(sorted_values, q):
    """Nearest rank."""
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def join_latencies(r, commits, records):
    first = {}
    seen = {}
    for ts, rid in records:
        if rid not in commits:
            continue  # a warm-up row
        seen[rid] = seen.get(rid, 0) + 1
        if rid not in first or ts < first[rid]:
            first[rid] = ts
    r.rows = len(commits)
    r.records = sum(seen.values())
    r.missing = len(commits) - len(first)
    r.duplicates = r.records - len(first)
    r.latency = summary(first[rid] - commits[rid] / 1000 for rid in first)
    r.stalls = stalls({commits[rid]: first[rid] - commits[rid] / 1000 for rid in first})


def stalls(latency_by_commit_us, window_ms=100, over_ms=50.0):
    """The 100 ms windows of commit time whose rows waited more than 50 ms,
    as (seconds into the run, rows in the window, worst ms): whether a tail
    is spread over the run or is a few pauses of everything."""
    if not latency_by_commit_us:
        return []
    start = min(latency_by_commit_us)
    windows = {}
    for us, ms in latency_by_commit_us.items():
        w = int((us - start) / 1000 // window_ms)
        n, worst = windows.get(w, (0, 0.0))
        windows[w] = (n + 1, max(worst, ms))
    return [(w * window_ms / 1000, n, worst) for w, (n, worst) in sorted(windows.items())
            if worst > over_ms]


def summary(latencies):
    lat = sorted(latencies)
    if not lat:
        return {}
    return {"p50": percentile(lat, 0.50), "p99": percentile(lat, 0.99),
            "p99.9": percentile(lat, 0.999), "max": lat[-1],
            "within_10ms": bisect.bisect_right(lat, 10.0) / len(lat)}


def join_visible(r, commits, first_seen):
    r.visible = summary(first_seen[rid] - commits[rid] / 1000 for rid in commits
                        if rid in first_seen)
    r.visible["missing"] = sum(1 for rid in commits if rid not in first_seen)


def run_rate(servers, r, work, pgbench_script, drain_timeout, variant=None):
    slot = f"live_{r.rate}"
    servers.psql("TRUNCATE public.outbox")
    servers.psql(f"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')")
    run = bench.RelayRun(servers, slot, f"live-{r.rate}", work, variant=variant,
                         topic_configs=TOPIC_CONFIGS)
    proc = run.start()
    reader = None
    try:
        port = wait_streaming(run.log_path, proc)
        insert_warm_up(servers)
        wait_in_topic(servers, run.topic, WARM_UP_ROWS, 60)
        reader = CommittedReader(servers, run.topic)
        if not reader.wait_for(WARM_UP_ROWS, 60):
            raise RuntimeError("the read_committed reader did not see the warm-up rows")
        ws_pid = common.walsender_pid(servers, slot, lambda: proc.poll() is None)
        pids = {"relay": proc.pid, "walsender": ws_pid, "broker": servers.kafka_pid}
        cpu0 = {k: common.proc_cpu_seconds(p) for k, p in pids.items() if p}
        busy0 = common.machine_busy_seconds()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        r.load_before = float(open("/proc/loadavg").read().split()[0])
        log(f"{r.rate} rows/s: pgbench for {r.seconds} s, {r.clients} clients, {r.threads} threads")
        pg = subprocess.run(
            [os.path.join(common.PG_BINDIR, "pgbench"), "-n", "-M", "prepared", "-f", pgbench_script,
             f"--rate={r.rate}", f"--latency-limit={LATENCY_LIMIT_MS}", "-T", str(r.seconds),
             "-c", str(r.clients), "-j", str(r.threads), "-h", "127.0.0.1", "-p", servers.pg_port,
             "-U", "postgres", "postgres"], capture_output=True, text=True)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        for k, pid in pids.items():
            cpu1 = common.proc_cpu_seconds(pid) if pid else None
            if cpu1 is not None and cpu0.get(k) is not None:
                r.cpu[k] = cpu1 - cpu0[k]
        r.cpu["pgbench"] = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        r.cpu["machine"] = common.machine_busy_seconds() - busy0
        if pg.returncode != 0:
            raise RuntimeError(f"pgbench exited {pg.returncode}: {pg.stderr.strip()[-500:]}")
        parse_pgbench(pg.stdout, r)
        log(f"{r.rate} rows/s: pgbench ran {r.txns} transactions, {fmt(r.tps, '.0f')} tps, "
            f"schedule lag avg {fmt(r.lag_avg_ms, '.3f')} max {fmt(r.lag_max_ms, '.3f')} ms, "
            f"skipped {r.skipped}")
        rows = int(servers.psql("SELECT count(*) FROM public.outbox"))
        wait_in_topic(servers, run.topic, rows, drain_timeout)
        reader.wait_for(rows, drain_timeout)
        r.hist = hist_summary(relay_histogram(http_get(port, "/metrics")[1]))
    finally:
        if reader:
            reader.stop()
        common.stop_process(proc)
        run.logf.close()
    commits = commit_times(servers)
    join_latencies(r, commits, topic_records(servers, run.topic))
    if reader:
        join_visible(r, commits, reader.first_seen)
    log(f"{r.rate} rows/s: {r.rows} rows, {r.records} records, missing {r.missing}, "
        f"p50 {fmt(r.latency.get('p50'), '.1f')} p99 {fmt(r.latency.get('p99'), '.1f')} ms; "
        f"read_committed p50 {fmt(r.visible.get('p50'), '.1f')} "
        f"p99 {fmt(r.visible.get('p99'), '.1f')} ms, missing {fmt(r.visible.get('missing'), ',')}")
    if r.stalls:
        log(f"{r.rate} rows/s: {len(r.stalls)} windows of 100 ms with a row over 50 ms: " +
            ", ".join(f"{at:.1f}s ({n} rows, {worst:.0f} ms)" for at, n, worst in r.stalls[:20]))
    servers.kafka_admin("delete-topic", run.topic, check=False)
    common.drop_slots(servers, [slot])
    servers.psql("TRUNCATE public.outbox")
    servers.psql("CHECKPOINT")


def latency_table(results):
    head = ["rows/s", "seconds", "pgbench txns", "tps", "rate kept", "rows", "missing",
            "duplicates", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "<= 10 ms",
            "relay histogram p99", "read_committed p50 ms", "read_committed p99 ms",
            "read_committed max ms", "read_committed missing"]
    rows = []
    for r in results:
        if r.error:
            rows.append([f"{r.rate:,}", r.seconds, "FAILED", r.error[:60]] + [""] * 14)
            continue
        vis = r.visible
        lat = r.latency
        kept = None if r.rate_kept is None else ("yes" if r.rate_kept else "NO")
        rows.append([f"{r.rate:,}", r.seconds, fmt(r.txns, ","), fmt(r.tps, ",.0f"), fmt(kept, "s"),
                     fmt(r.rows, ","), fmt(r.missing, ","), fmt(r.duplicates, ","),
                     fmt(lat.get("p50"), ".1f"), fmt(lat.get("p99"), ".1f"),
                     fmt(lat.get("p99.9"), ".1f"), fmt(lat.get("max"), ".1f"),
                     fmt(lat.get("within_10ms"), ".2%"),
                     "-" if not r.hist else f"<= {r.hist['p99_le_ms']:g} ms",
                     fmt(vis.get("p50"), ".1f"), fmt(vis.get("p99"), ".1f"),
                     fmt(vis.get("max"), ".1f"), fmt(vis.get("missing"), ",")])
    return common.md_table(head, rows)


def load_table(results):
    head = ["rows/s", "clients", "threads", "schedule lag avg ms", "schedule lag max ms",
            "skipped", "pgbench latency avg ms", "relay CPU s", "walsender CPU s",
            "broker CPU s", "pgbench CPU s", "whole machine CPU s", "load avg before",
            "relay histogram count", "relay histogram <= 10 ms"]
    rows = []
    for r in results:
        h = r.hist or {}
        rows.append([f"{r.rate:,}", r.clients, r.threads, fmt(r.lag_avg_ms, ".3f"),
                     fmt(r.lag_max_ms, ".3f"), fmt(r.skipped, ","),
                     fmt(r.pgbench_latency_ms, ".3f")] +
                    [fmt(r.cpu.get(k), ".2f") for k in ("relay", "walsender", "broker", "pgbench",
                                                        "machine")] +
                    [fmt(r.load_before, ".2f"), fmt(h.get("count"), ","),
                     fmt(h.get("within_10ms"), ".2%")])
    return common.md_table(head, rows)


def goal_line(results):
    r = next((r for r in results if r.rate == GOAL_RATE and r.latency), None)
    if r is None:
        return None
    met = r.latency["p99"] <= GOAL_P99_MS
    return (f"Goal, p99 commit-to-Kafka at most {GOAL_P99_MS:g} ms at {GOAL_RATE:,} rows/s: "
            f"{'met' if met else 'NOT met'} (p99 {r.latency['p99']:.1f} ms).")


def write_section(path, results, info, args, started):
    """Writes the live section at the end of `path`, keeping what is before it."""
    before, _ = bench.split_results(path)
    if not before:
        before = "# Benchmark results\n\n"
    with open(path, "w") as f:
        f.write(before.rstrip("\n") + "\n\n" + bench.LIVE_SECTION + "\n\n")
        f.write(bench.written_by(args, started, "### Machine"))
        f.write(bench.machine_list(info))
        f.write("\n### Commit-to-Kafka latency\n\n")
        f.write("Latency: the record's LogAppendTime (the broker's clock, whole milliseconds) "
                "minus its row's commit time (`pg_xact_commit_timestamp(xmin)`, microseconds), "
                "over every row pgbench inserted, each matched by its `outbox-id` header. "
                "Rate kept: pgbench's tps at least 97 % of the target and no transaction "
                f"skipped for starting more than {LATENCY_LIMIT_MS} ms behind schedule. "
                "Relay histogram p99: the bucket bound of `outbox_relay_commit_to_ack_seconds` "
                "(commit to the producer's acknowledgement) that holds 99 % of the run's "
                "records. The broker is warmed first by an unmeasured run at "
                f"{WARM_UP_RATE:,} rows/s (`--warm-up` seconds, 30 by default).\n\n")
        f.write(latency_table(results) + "\n\n")
        goal = goal_line(results)
        if goal:
            f.write(goal + "\n\n")
        f.write("### Load and CPU over each pgbench run\n\n")
        f.write(load_table(results) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--live", action="store_true", help="(bench/run.sh's mode switch)")
    ap.add_argument("--quick", action="store_true",
                    help="1,000 rows/s for 5 s, no results file (CI smoke run)")
    ap.add_argument("--rates", help="comma-separated rows/s (default: %s)" %
                    ",".join(map(str, RATES)))
    ap.add_argument("--seconds", type=int, help="pgbench -T per rate (default 30; --quick 5)")
    ap.add_argument("--clients", type=int,
                    help="pgbench -c (default: one per 1,000 rows/s, at least 2)")
    ap.add_argument("--threads", type=int, default=2, help="pgbench -j (default %(default)s)")
    ap.add_argument("--warm-up", type=int,
                    help="seconds of an unmeasured run at %d rows/s before the first rate, so "
                         "that the broker's JIT and caches are warm (default 30; --quick 0)"
                         % WARM_UP_RATE)
    ap.add_argument("--drain-timeout", type=float, default=120,
                    help="seconds after pgbench for every row to reach Kafka")
    ap.add_argument("--out", help="results file whose live section is written "
                                  "(default bench/RESULTS.md; --quick: none)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--variant", help="run the relay as bench.py's outbox-relay+VARIANT "
                                      "(e.g. linger1), not at its defaults")
    ap.add_argument("--build-dir", default=os.path.join(common.ROOT, "build"))
    args = ap.parse_args()

    common.use_build_dir(args.build_dir)
    variant = bench.relay_variant(f"outbox-relay+{args.variant}") if args.variant else None
    rates = [int(x) for x in args.rates.split(",")] if args.rates else \
        ([1000] if args.quick else RATES)
    seconds = args.seconds or (5 if args.quick else 30)
    results = [LiveResult(rate, seconds, args.clients or pgbench_clients(rate),
                          min(args.threads, args.clients or pgbench_clients(rate)))
               for rate in rates]
    out = args.out or (None if args.quick else os.path.join(common.ROOT, "bench", "RESULTS.md"))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    info = bench.machine(bench.NoPeers())
    work = common.new_work_dir()
    script = os.path.join(work, "insert.sql")
    with open(script, "w") as f:
        f.write(PGBENCH_SCRIPT.format(topic=common.TOPIC))
    servers = None
    common.raise_on_sigterm()
    try:
        servers = common.Servers(work, pg_conf=PG_CONF)
        if servers.psql("SHOW track_commit_timestamp") != "on":
            raise RuntimeError("track_commit_timestamp is not on")
        bench.prepare_servers(servers, args.quick)
        servers.psql(PAYLOADS_SQL)
        warm_up = args.warm_up if args.warm_up is not None else (0 if args.quick else 30)
        if warm_up > 0:
            log(f"warm-up: {WARM_UP_RATE} rows/s for {warm_up} s, not measured")
            w = LiveResult(WARM_UP_RATE, warm_up, pgbench_clients(WARM_UP_RATE),
                           min(args.threads, pgbench_clients(WARM_UP_RATE)))
            run_rate(servers, w, work, script, args.drain_timeout, variant)
        for r in results:
            try:
                run_rate(servers, r, work, script, args.drain_timeout, variant)
            except Exception as e:  # one rate's failure must not hide the others' figures
                r.error = f"{type(e).__name__}: {e}"
                log(f"{r.rate} rows/s FAILED: {r.error}")
                common.drop_slots(servers, [f"live_{r.rate}"])
            print(latency_table(results), file=sys.stderr, flush=True)
    finally:
        if servers:
            servers.destroy()
        if args.keep:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print(latency_table(results))
    print()
    print(load_table(results))
    goal = goal_line(results)
    if goal:
        print("\n" + goal)
    if out:
        write_section(out, results, info, sys.argv[1:], started)
        log(f"wrote the live section of {out}")
    bad = [r for r in results if r.error or r.missing]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
