#!/usr/bin/env python3
"""Sources benchmark: what writing an event costs the application, and what
draining it costs the relay, for the three ways to write one.

Driven by `bench/run.sh --sources` (which builds first); results go to
bench/RESULTS-sources.md. One PostgreSQL 15 and one Kafka (common.Servers),
and for each source in turn, one event per transaction (256 incompressible
payload bytes from live.py's table, a small jsonb header, keys key-0 …
key-999):

  insert         INSERT INTO public.outbox …; the row is kept
  insert+delete  INSERT … RETURNING id, then DELETE it, in one transaction
  emit           SELECT outbox.emit(…) (sql/04-outbox-emit.sql): a
                 transactional logical decoding message, no table

Each source runs three phases:

  fixed rate   pgbench --rate=R for S seconds with the relay streaming
               (outbox.source table or messages): the application's tps and
               latency (pgbench's per-transaction log), and every event
               read back from Kafka.
  full speed   pgbench as fast as it goes for S seconds, the relay stopped,
               two slots created before it: the application's tps and
               latency, the WAL written per event (pg_current_wal_insert_lsn
               before and after, over the transactions pgbench ran), and
               the table's size after it. What it wrote is the backlog of
               the next phase.
  drain        pg_recvlogical (pgoutput, binary, messages) to the backlog's
               end on one slot: the decoding ceiling; then the relay on the
               other, until the topic holds every event and the slot is
               confirmed at the end: its rate against the ceiling.

A CHECKPOINT precedes every phase, so each starts with the same full-page
image debt. Run it alone if you can: it measures rates on a machine it
assumes is otherwise idle (the load average at the start of each phase is
recorded).
"""

import argparse
import glob
import math
import os
import shutil
import subprocess
import sys
import time

import bench
import common
import live
from common import PG_BINDIR, ROOT, Workload, fmt, log

SOURCES = ["insert", "insert+delete", "emit"]

# pgbench scripts, one event per transaction, written inside an explicit
# transaction as an application writes it beside its own change (so each
# source pays the same BEGIN and COMMIT round trips; insert+delete pays one
# more statement). {topic} is the row's topic column (the relay's
# topic_template prefixes it) or the message's topic.
SCRIPTS = {
    "insert": """\\set k random(0, 999)
BEGIN;
INSERT INTO public.outbox (topic, key, headers, payload)
SELECT '{topic}', 'key-' || :k, '{{"type": "BenchEvent"}}', payload
FROM bench_live_payloads WHERE k = :k;
END;
""",
    "insert+delete": """\\set k random(0, 999)
BEGIN;
INSERT INTO public.outbox (topic, key, headers, payload)
SELECT '{topic}', 'key-' || :k, '{{"type": "BenchEvent"}}', payload
FROM bench_live_payloads WHERE k = :k RETURNING id \\gset
DELETE FROM public.outbox WHERE id = :id;
END;
""",
    "emit": """\\set k random(0, 999)
BEGIN;
SELECT outbox.emit('{topic}', 'key-' || :k, payload, '{{"type": "BenchEvent"}}')
FROM bench_live_payloads WHERE k = :k;
END;
""",
}


class Phase:
    def __init__(self, source, name):
        self.source = source
        self.name = name
        self.txns = None
        self.tps = None
        self.latency = {}       # avg, p50, p99, max (ms), from pgbench's log
        self.lag_avg_ms = None  # fixed rate: schedule lag
        self.skipped = None
        self.wal_bytes = None
        self.table_bytes = None
        self.records = None     # fixed rate: read back from Kafka
        self.load_before = None
        self.error = None


class Drain:
    def __init__(self, source):
        self.source = source
        self.events = None
        self.ceiling = bench.Result("ceiling", source, 0)
        self.relay = bench.Result("outbox-relay", source, 0)
        self.error = None


def relay_variant(source):
    # Messages name their own topic; rows get the run's prefix from
    # bench.relay_config's topic_template.
    return {"outbox_keys": {"source": "messages"}} if source == "emit" else {}


def topic_of(source, run):
    return run.topic if source == "emit" else common.TOPIC


def pgbench(servers, work, source, topic, seconds, clients, threads, rate=None):
    """Runs pgbench with `source`'s script; returns (stdout, per-transaction
    latencies in ms)."""
    script = os.path.join(work, f"{common.slug(source)}.sql")
    with open(script, "w") as f:
        f.write(SCRIPTS[source].format(topic=topic))
    prefix = os.path.join(work, f"pgbench-{common.slug(source)}-{rate or 'full'}")
    for old in glob.glob(prefix + ".*"):
        os.unlink(old)
    cmd = [os.path.join(PG_BINDIR, "pgbench"), "-n", "-M", "prepared", "-f", script,
           "-T", str(seconds), "-c", str(clients), "-j", str(threads), "-l",
           f"--log-prefix={prefix}", "-h", "127.0.0.1", "-p", servers.pg_port, "-U", "postgres",
           "postgres"]
    if rate:
        cmd[1:1] = [f"--rate={rate}", "--latency-limit=100"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=work)
    if r.returncode != 0:
        raise RuntimeError(f"pgbench exited {r.returncode}: {r.stderr.strip()[-500:]}")
    latencies = []
    for path in glob.glob(prefix + ".*"):
        with open(path) as f:
            for line in f:
                fields = line.split()
                # client transaction_no time script_no epoch us [lag]; a
                # skipped transaction logs "skipped" as its time.
                if len(fields) >= 6 and fields[2].isdigit():
                    latencies.append(int(fields[2]) / 1000)
    return r.stdout, sorted(latencies)


def read_pgbench(out, latencies, p):
    live.parse_pgbench(out, p)
    if latencies:
        p.latency = {"avg": sum(latencies) / len(latencies),
                     "p50": live.percentile(latencies, 0.50),
                     "p99": live.percentile(latencies, 0.99),
                     "max": latencies[-1]}


def committed_records(servers, topic):
    """Records a read_committed reader reads in `topic` (the offsets also
    count the transaction markers)."""
    out = subprocess.run(["kcat", "-C", "-b", servers.brokers, "-t", topic, "-o", "beginning",
                          "-e", "-q", "-X", "isolation.level=read_committed", "-f", "x\\n"],
                         capture_output=True, text=True, check=True).stdout
    return out.count("x")


def wal_lsn(servers):
    return servers.psql("SELECT pg_current_wal_insert_lsn()")


def wal_diff(servers, a, b):
    return int(servers.psql(f"SELECT '{b}'::pg_lsn - '{a}'::pg_lsn"))


def fresh_state(servers):
    servers.psql("TRUNCATE public.outbox")
    servers.psql("VACUUM public.outbox")
    servers.psql("CHECKPOINT")


def run_fixed(servers, source, work, rate, seconds, clients):
    p = Phase(source, f"fixed {rate}/s")
    slot = f"src_live_{common.slug(source)}"
    fresh_state(servers)
    servers.psql(f"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')")
    run = bench.RelayRun(servers, slot, f"live-{common.slug(source)}", work,
                         variant=relay_variant(source))
    proc = run.start()
    try:
        live.wait_streaming(run.log_path, proc)
        p.load_before = float(open("/proc/loadavg").read().split()[0])
        log(f"{source}: pgbench at {rate}/s for {seconds} s, relay streaming")
        out, latencies = pgbench(servers, work, source, topic_of(source, run), seconds, clients,
                                 min(2, clients), rate)
        read_pgbench(out, latencies, p)
        # Exactly once, the slot is confirmed only once the Kafka
        # transaction holding the events committed.
        end = wal_lsn(servers)
        deadline = time.monotonic() + 120
        while not common.slot_reached(servers, slot, end) and time.monotonic() < deadline:
            time.sleep(0.1)
        p.records = committed_records(servers, run.topic)
        if p.records != p.txns:
            p.error = f"{run.topic} holds {p.records} of {p.txns} events"
    finally:
        common.stop_process(proc)
        run.logf.close()
    servers.kafka_admin("delete-topic", run.topic, check=False)
    common.drop_slots(servers, [slot])
    return p


def run_full_and_drain(servers, source, work, seconds, clients, timeout):
    p = Phase(source, "full speed")
    d = Drain(source)
    ceiling_slot = f"src_ceiling_{common.slug(source)}"
    relay_slot = f"src_relay_{common.slug(source)}"
    fresh_state(servers)
    for s in (ceiling_slot, relay_slot):
        servers.psql(f"SELECT pg_create_logical_replication_slot('{s}', 'pgoutput')")
    run = bench.RelayRun(servers, relay_slot, f"drain-{common.slug(source)}", work,
                         variant=relay_variant(source))
    try:
        p.load_before = float(open("/proc/loadavg").read().split()[0])
        before = wal_lsn(servers)
        log(f"{source}: pgbench at full speed for {seconds} s, relay stopped")
        out, latencies = pgbench(servers, work, source, topic_of(source, run), seconds, clients,
                                 min(2, clients))
        after = wal_lsn(servers)
        read_pgbench(out, latencies, p)
        p.wal_bytes = wal_diff(servers, before, after) / p.txns
        p.table_bytes = int(servers.psql("SELECT pg_total_relation_size('public.outbox')"))

        wl = Workload(source, 256, 1, p.txns)
        wl.end_lsn = after
        d.events = p.txns
        servers.psql("CHECKPOINT")
        d.ceiling.rows = d.relay.rows = p.txns
        log(f"{source}: draining {p.txns:,} events: pg_recvlogical")
        d.ceiling.load_before = float(open("/proc/loadavg").read().split()[0])
        bench.run_ceiling(servers, wl, ceiling_slot, True, timeout, d.ceiling, messages=True)
        log(f"{source}: draining {p.txns:,} events: outbox-relay")
        d.relay.load_before = float(open("/proc/loadavg").read().split()[0])
        bench.run_relay(servers, wl, relay_slot, timeout, d.relay, work, run)
        if d.ceiling.rate and d.relay.rate:
            d.relay.ratio = d.relay.rate / d.ceiling.rate
    finally:
        run.logf.close()  # bench.run_relay closed it if it ran
        servers.kafka_admin("delete-topic", run.topic, check=False)
        common.drop_slots(servers, [ceiling_slot, relay_slot])
    return p, d


def app_table(phases):
    head = ["source", "phase", "transactions", "tps", "latency avg ms", "p50 ms", "p99 ms",
            "max ms", "schedule lag avg ms", "skipped", "WAL bytes per event",
            "table size after", "events in Kafka", "load avg before"]
    rows = []
    for p in phases:
        if p.error and p.txns is None:
            rows.append([p.source, p.name, "FAILED", p.error[:60]] + [""] * 10)
            continue
        lat = p.latency
        rows.append([p.source, p.name, fmt(p.txns, ","), fmt(p.tps, ",.0f"),
                     fmt(lat.get("avg"), ".2f"), fmt(lat.get("p50"), ".2f"),
                     fmt(lat.get("p99"), ".2f"), fmt(lat.get("max"), ".1f"),
                     fmt(p.lag_avg_ms, ".2f"), fmt(p.skipped, ","),
                     fmt(p.wal_bytes, ",.0f"),
                     "-" if p.table_bytes is None else f"{p.table_bytes / 1048576:.1f} MiB",
                     ("FAILED: " + p.error[:40]) if p.error else fmt(p.records, ","),
                     fmt(p.load_before, ".2f")])
    return common.md_table(head, rows)


def drain_table(drains):
    head = ["source", "events", "ceiling s", "ceiling events/s", "relay s", "relay events/s",
            "ratio to ceiling", "relay CPU s", "walsender CPU s (relay)", "load avg before"]
    rows = []
    for d in drains:
        c, r = d.ceiling, d.relay
        err = c.error or r.error or d.error
        rows.append([d.source, fmt(d.events, ","), fmt(c.seconds, ".2f"), fmt(c.rate, ",.0f"),
                     fmt(r.seconds, ".2f"), fmt(r.rate, ",.0f"),
                     ("FAILED: " + err[:40]) if err else fmt(r.ratio, ".2f"),
                     fmt(r.cpu, ".2f"), fmt(r.cpu_walsender, ".2f"),
                     fmt(r.load_before, ".2f")])
    return common.md_table(head, rows)


def write_results(path, phases, drains, info, args, started, settings):
    with open(path, "w") as f:
        f.write("# Sources: insert, insert-then-delete, emit\n\n")
        f.write(f"Written by `bench/run.sh {' '.join(args)}` on {started}; "
                "bench/sources.py describes each phase.\n\n")
        f.write(settings + "\n\n## Machine\n\n")
        f.write(bench.machine_list(info))
        f.write("\n## The application\n\n")
        f.write("One event per transaction. Latency: pgbench's per-transaction log (from the "
                "scheduled start at a fixed rate). WAL bytes per event: WAL written over the "
                "full-speed run divided by its transactions (row, index entry, delete, "
                "full-page images after the CHECKPOINT before it, commit record). Table size: "
                "`pg_total_relation_size('public.outbox')` after the full-speed run.\n\n")
        f.write(app_table(phases) + "\n\n")
        f.write("## The relay's drain of the full-speed backlog\n\n")
        f.write("Ceiling: pg_recvlogical (pgoutput, proto 1, binary, messages) to the backlog's "
                "end. Relay: start until the topic holds every event and the slot is "
                "confirmed at the end (exactly once).\n\n")
        f.write(drain_table(drains) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sources", action="store_true", help="(bench/run.sh's mode switch)")
    ap.add_argument("--quick", action="store_true",
                    help="5 s phases at 200/s, no results file (smoke run)")
    ap.add_argument("--only", help="comma-separated subset of: " + ", ".join(SOURCES))
    ap.add_argument("--rate", type=int, default=1000, help="fixed rate, events/s")
    ap.add_argument("--seconds", type=int, default=20, help="pgbench -T of each phase")
    ap.add_argument("--clients", type=int, default=4, help="pgbench -c at full speed")
    ap.add_argument("--timeout", type=float, default=300, help="per drain, seconds")
    ap.add_argument("--out", help="results file (default bench/RESULTS-sources.md; "
                                  "--quick: none)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()
    if args.quick:
        args.rate, args.seconds = 200, 5
    sources = [s.strip() for s in args.only.split(",")] if args.only else SOURCES
    unknown = set(sources) - set(SOURCES)
    if unknown:
        ap.error(f"unknown sources: {', '.join(sorted(unknown))}")

    common.use_build_dir(args.build_dir)
    out = args.out or (None if args.quick else os.path.join(ROOT, "bench",
                                                            "RESULTS-sources.md"))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    info = bench.machine(bench.NoPeers())
    fixed_clients = max(2, math.ceil(args.rate / 1000))
    settings = (f"Fixed rate: {args.rate:,} events/s for {args.seconds} s, {fixed_clients} "
                f"clients. Full speed: {args.seconds} s, {args.clients} clients, 2 threads. "
                "The relay at its defaults (exactly once), `source: table` for the two "
                "insert sources and `source: messages` for emit.")
    work = common.new_work_dir()
    servers = None
    phases, drains = [], []
    common.raise_on_sigterm()
    try:
        servers = common.Servers(work)
        bench.prepare_servers(servers, quick=True)
        servers.psql_file(os.path.join(ROOT, "sql", "04-outbox-emit.sql"))
        servers.psql(live.PAYLOADS_SQL)
        for source in sources:
            for attempt in (run_fixed, run_full_and_drain):
                try:
                    if attempt is run_fixed:
                        phases.append(run_fixed(servers, source, work, args.rate, args.seconds,
                                                fixed_clients))
                    else:
                        p, d = run_full_and_drain(servers, source, work, args.seconds,
                                                  args.clients, args.timeout)
                        phases.append(p)
                        drains.append(d)
                except Exception as e:  # one phase's failure must not hide the others
                    p = Phase(source, "fixed rate" if attempt is run_fixed else "full speed")
                    p.error = f"{type(e).__name__}: {e}"
                    log(f"{source}: FAILED: {p.error}")
                    phases.append(p)
            print(app_table(phases), file=sys.stderr, flush=True)
    finally:
        if servers:
            servers.destroy()
        if args.keep:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print(settings + "\n")
    print(app_table(phases) + "\n")
    print(drain_table(drains))
    if out:
        write_results(out, phases, drains, info, sys.argv[1:], started, settings)
        log(f"wrote {out}")
    failed = [p for p in phases if p.error] + [d for d in drains
                                               if d.ceiling.error or d.relay.error]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
