#!/usr/bin/env python3
"""Scaling past one walsender: aggregate drain rate of N slots.

One outbox per slot, each in a database of its own on one PostgreSQL 15,
each database loaded with the same deterministic backlog (bench/load.sql).
For each layout, in the same run:

  ceiling xN     N pg_recvlogical (binary), one per slot, started together
  relay 1xN      one outbox-relay instance streaming the N slots (group mode,
                 the only member of its group)
  relay 2xN/2    two instances of one group, N/2 slots each

A layout's time runs from the first process start until every slot has
confirmed the backlog end (relays: and the topic holds every row); its rate
is all rows over that time. "steady" is the rate from the first record in
Kafka to the last (group join and start-up excluded). CPU is the sum over
the contender's processes, per million rows.

    bench/run.sh --scale [--slots 1,2,4] [--rows N] [--workload "256B x100"]
                 [--out FILE] [--keep]
"""

import argparse
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import (PARTITIONS, PG_BINDIR, ROOT, TOPIC, KafkaProgress, Servers, fmt, log,  # noqa: E402
                    md_table, new_work_dir, proc_cpu_seconds, proc_hwm_mb, raise_on_sigterm,
                    stop_process, use_build_dir)

WORKLOADS = {"256B x100": (256, 100), "256B x1": (256, 1), "4KiB x100": (4096, 100)}


class Scene:
    """N databases, each with the outbox, its publication and a slot per run."""

    def __init__(self, servers, n):
        self.servers = servers
        self.dbs = [f"scale_{i + 1}" for i in range(n)]

    def psql(self, db, sql, env_extra=None):
        env = dict(os.environ, **(env_extra or {}))
        r = subprocess.run(
            ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
             self.servers.pg_port, "-U", "postgres", "-d", db, "-c", sql],
            capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"psql {db} failed: {sql[:200]}\n{r.stderr}")
        return r.stdout.strip()

    def prepare(self):
        for db in self.dbs:
            if self.servers.psql(f"SELECT 1 FROM pg_database WHERE datname = '{db}'") != "1":
                self.servers.psql(f"CREATE DATABASE {db}")
            for f in ("sql/01-outbox-table.sql", "sql/02-relay-role.sql", "bench/load.sql"):
                subprocess.run(
                    ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                     self.servers.pg_port, "-U", "postgres", "-d", db, "-f",
                     os.path.join(ROOT, f)], check=True)

    def load(self, rows, payload, per_txn, slots):
        """Loads every database and creates `slots` (names per database)
        before it, so that each slot holds its database's whole backlog."""
        for db in self.dbs:
            self.psql(db, "TRUNCATE public.outbox")
        for db, names in slots.items():
            for s in names:
                self.psql(db, f"SELECT pg_create_logical_replication_slot('{s}', 'pgoutput')")
        t0 = time.monotonic()
        for db in self.dbs:
            self.psql(db, f"CALL bench_load({rows}, {per_txn}, {payload}, '{TOPIC}')",
                      env_extra={"PGOPTIONS": "-c synchronous_commit=off"})
        end = self.servers.psql("SELECT pg_current_wal_insert_lsn()")
        self.servers.psql("CHECKPOINT")
        log(f"loaded {rows} rows into each of {len(self.dbs)} databases in "
            f"{time.monotonic() - t0:.1f} s, end lsn {end}")
        return end

    def drop_slots(self, names):
        for db in self.dbs:
            for s in names:
                if not s.startswith(db + "_"):
                    continue
                self.psql(db, "SELECT pg_drop_replication_slot(slot_name) FROM "
                              f"pg_replication_slots WHERE slot_name = '{s}' AND NOT active")

    def confirmed(self, slot_db_pairs, lsn):
        for slot, db in slot_db_pairs:
            if self.psql(db, "SELECT confirmed_flush_lsn >= '" + lsn + "'::pg_lsn FROM "
                             f"pg_replication_slots WHERE slot_name = '{slot}'") != "t":
                return False
        return True


class Result:
    def __init__(self, layout, slots, instances, rows):
        self.layout = layout
        self.slots = slots
        self.instances = instances
        self.rows = rows
        self.seconds = None
        self.steady_seconds = None
        self.cpu = None
        self.rss_mb = None
        self.error = None

    @property
    def rate(self):
        return self.rows / self.seconds if self.seconds else None

    @property
    def steady_rate(self):
        return self.rows / self.steady_seconds if self.steady_seconds else None


def slot_name(db, run):
    """Slot names are cluster-wide: one per database and run."""
    return f"{db}_{run}"


def run_ceiling(scene, run, end_lsn, timeout, result):
    servers = scene.servers
    procs = []
    t0 = time.monotonic()
    for db in scene.dbs:
        dsn = f"host=127.0.0.1 port={servers.pg_port} dbname={db} user=postgres"
        procs.append(subprocess.Popen(
            [os.path.join(PG_BINDIR, "pg_recvlogical"), "-d", dsn, "--slot", slot_name(db, run),
             "--start",
             f"--endpos={end_lsn}", "-F", "0", "-f", "/dev/null", "-o", "proto_version=1",
             "-o", "publication_names=outbox_pub", "-o", "binary=true"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    cpu = 0.0
    running = list(procs)
    while running:
        for p in list(running):
            pid, status, rusage = os.wait4(p.pid, os.WNOHANG)
            if pid != p.pid:
                continue
            running.remove(p)
            cpu += rusage.ru_utime + rusage.ru_stime
            code = os.waitstatus_to_exitcode(status)
            if code != 0 and not result.error:
                result.error = f"pg_recvlogical exited {code}: " + \
                    p.stderr.read().decode(errors="replace").strip()[:200]
        if running and time.monotonic() - t0 > timeout:
            for p in running:
                p.kill()
            result.error = "timeout"
            break
        time.sleep(0.02)
    result.seconds = time.monotonic() - t0
    result.cpu = cpu


def relay_config(servers, scene, group, run, http_port, path):
    body = [f"group:\n  id: {group}\n  session_timeout: 6s\nslots:\n"]
    for db in scene.dbs:
        body.append(f"""  - postgres:
      dsn: "host=127.0.0.1 port={servers.pg_port} dbname={db} user=outbox_relay"
      slot: {slot_name(db, run)}
      publication: outbox_pub
      create_slot: false
      create_publication: false
      status_interval: 100ms
    outbox:
      table: public.outbox
      topic_template: "{group}.${{topic}}"
""")
    body.append(f"""kafka:
  brokers: "{servers.brokers}"
  create_topics: true
http:
  listen: "127.0.0.1:{http_port}"
log:
  level: info
""")
    with open(path, "w") as f:
        f.write("".join(body))


def run_relays(scene, run, end_lsn, instances, timeout, work, result, run_id):
    servers = scene.servers
    group = f"scale-{run_id}"
    topic = f"{group}.{TOPIC}"
    servers.kafka_admin("create-topic", topic, str(PARTITIONS))
    procs, logs = [], []
    t0 = time.monotonic()
    for i in range(instances):
        cfg = os.path.join(work, f"{group}-{i}.yaml")
        relay_config(servers, scene, group, run, common.free_port(), cfg)
        logf = open(os.path.join(work, f"{group}-{i}.log"), "w")
        logs.append(logf)
        procs.append(subprocess.Popen([common.RELAY, "run", "--config", cfg], stdout=logf,
                                      stderr=subprocess.STDOUT))
    total = result.rows
    counter = subprocess.Popen(
        [common.KAFKA_ADMIN, servers.brokers, "count", topic, "--until", str(total),
         "--timeout", str(timeout), "--progress"], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    progress = KafkaProgress(counter.stdout)
    cpu_last = [0.0] * instances
    try:
        while counter.poll() is None:
            for i, p in enumerate(procs):
                if p.poll() is not None:
                    raise RuntimeError(f"relay {i} exited {p.returncode} before draining")
                cpu_last[i] = proc_cpu_seconds(p.pid) or cpu_last[i]
            time.sleep(0.05)
        progress.thread.join(5)
        if counter.returncode != 0:
            raise RuntimeError(f"count of {topic}: exit {counter.returncode}")
        pairs = [(slot_name(db, run), db) for db in scene.dbs]
        while not scene.confirmed(pairs, end_lsn):
            if time.monotonic() - t0 > timeout:
                raise RuntimeError("timeout waiting for confirmed_flush_lsn")
            time.sleep(0.02)
        result.seconds = time.monotonic() - t0
        if progress.first and progress.last and progress.last[0] > progress.first[0]:
            result.steady_seconds = (progress.last[0] - progress.first[0]) * total / \
                max(1, total - progress.first[1])
        result.cpu = sum(proc_cpu_seconds(p.pid) or c for p, c in zip(procs, cpu_last))
        result.rss_mb = max(proc_hwm_mb(p.pid) or 0 for p in procs)
    except Exception as e:
        result.error = f"{type(e).__name__}: {e}"
    finally:
        for p in procs:
            stop_process(p)
        for f in logs:
            f.close()
        servers.kafka_admin("delete-topic", topic, check=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", action="store_true", help="(selects this script in run.sh)")
    ap.add_argument("--slots", default="1,2,4", help="slot counts to measure")
    ap.add_argument("--rows", type=int, default=250_000, help="rows per slot")
    ap.add_argument("--workload", default="256B x100", choices=sorted(WORKLOADS))
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--out", help="results file (markdown)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()
    use_build_dir(args.build_dir)
    payload, per_txn = WORKLOADS[args.workload]
    counts = [int(x) for x in args.slots.split(",")]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    work = new_work_dir()
    servers = None
    results = []
    raise_on_sigterm()
    try:
        servers = Servers(work)
        for n in counts:
            scene = Scene(servers, n)
            scene.prepare()
            layouts = [("ceiling", 1), ("relay", 1)]
            if n >= 2:
                layouts.append(("relay", 2))
            runs = [f"{kind}_{inst}" for kind, inst in layouts]
            slots = {db: [slot_name(db, run) for run in runs] for db in scene.dbs}
            end = scene.load(args.rows, payload, per_txn, slots)
            for kind, inst in layouts:
                run = f"{kind}_{inst}"
                name = (f"ceiling x{n}" if kind == "ceiling" else
                        f"relay {inst} instance{'s' if inst > 1 else ''} x {n // inst} slot"
                        f"{'s' if n // inst > 1 else ''}")
                r = Result(name, n, inst, args.rows * n)
                log(f"{n} slots: running {name}")
                if kind == "ceiling":
                    run_ceiling(scene, run, end, args.timeout, r)
                else:
                    run_relays(scene, run, end, inst, args.timeout, work, r,
                               f"{n}s{inst}i-{int(time.time())}")
                log(f"{n} slots: {name}: " + (f"FAILED {r.error}" if r.error else
                                              f"{r.seconds:.2f} s, {r.rate:,.0f} rows/s"))
                results.append(r)
                scene.drop_slots([slot_name(db, run) for db in scene.dbs])
    finally:
        if servers:
            servers.destroy()
        if args.keep:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    ceilings = {r.slots: r.rate for r in results if r.layout.startswith("ceiling") and r.rate}
    single = ceilings.get(1)
    rows = []
    for r in results:
        ceiling = ceilings.get(r.slots)
        rows.append([str(r.slots), r.layout, f"{r.rows:,}", fmt(r.seconds, ".2f"),
                     fmt(r.rate, ",.0f"), fmt(r.steady_rate, ",.0f"),
                     fmt(r.rate / ceiling if r.rate and ceiling else None, ".2f"),
                     fmt(r.rate / single if r.rate and single else None, ".2f"),
                     fmt(r.cpu / r.rows * 1e6 if r.cpu else None, ".2f"),
                     fmt(r.rss_mb, ".1f"), r.error or ""])
    text = md_table(["slots", "layout", "rows", "seconds", "rows/s", "steady rows/s",
                     "ratio to ceiling xN", "ratio to one slot's ceiling", "CPU s per M rows",
                     "peak RSS MB (per instance)", "error"], rows)
    print(text)
    if args.out:
        load = open("/proc/loadavg").read().split()[:3]
        with open(args.out, "w") as f:
            f.write(f"# Scaling past one walsender\n\nWritten by `bench/run.sh {' '.join(sys.argv[1:])}`"
                    f" on {started} (`{args.workload}`, {args.rows:,} rows per slot, one database "
                    f"per slot; nproc {os.cpu_count()}; load average after the run "
                    f"{' '.join(load)}).\n\n{text}\n")
        log(f"wrote {args.out}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
