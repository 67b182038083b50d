#!/usr/bin/env python3
"""Drain-rate benchmark: outbox-relay against the decoding ceiling and peers.

Driven by bench/run.sh (which builds first); see README.md, "Benchmarks".

For every workload it creates one logical slot per slot-based contender, and
only then inserts the backlog, so each contender decodes the identical
transactions from the same start. Then it runs the contenders one at a time:

  ceiling-text / ceiling-binary
      pg_recvlogical --endpos=<backlog end> -f /dev/null with pgoutput
      (proto_version 1, publication outbox_pub; the second adds binary true).
      Seconds: process start to exit. CPU and peak RSS from wait4().
  outbox-relay
      Seconds: process start until the topic holds every row (sum of high
      watermarks) AND the slot's confirmed_flush_lsn has reached the backlog
      end. CPU: utime+stime from /proc/<pid>/stat, peak RSS: VmHWM, both read
      just before SIGTERM.
  debezium-server-*, go-pq-cdc-kafka-*, gox-* (peers, not in --quick): see
      peer_runners.py and bench/peers/. Also timed from process start to the
      first record in the topic (start-up) and from the first record to the
      last (the steady-state rate), as is outbox-relay.

"all CPU" adds the walsender serving the contender and the Kafka broker's JVM
over the same interval, so a contender that moves work to the database or
the broker does not look cheaper than it is.
"""

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

import common
from peer_runners import PEER_CONTENDERS, PEER_GROUPS, PEER_SLOT_CONTENDERS
from common import (PARTITIONS, PG_BINDIR, ROOT, TOPIC, Servers, Workload, drop_slots, fmt, log,
                    machine_busy_seconds, md_table, new_work_dir, proc_cpu_seconds, proc_hwm_mb,
                    raise_on_sigterm, slug, stop_process, use_build_dir, wait_drained,
                    walsender_pid)

PERF_OUT = None
REPEAT = 1

# name, payload bytes, rows per transaction, rows (full run), rows (--quick)
WORKLOADS = [
    # One commit per row makes the load itself slow (plpgsql COMMIT per row):
    # a fifth of the others' rows.
    ("256B x1", 256, 1, 200_000, None),
    ("256B x100", 256, 100, 1_000_000, 20_000),
    ("256B x1000", 256, 1000, 1_000_000, None),
    ("4KiB x100", 4096, 100, 250_000, None),
    ("256B x1M (one txn)", 256, 0, 1_000_000, None),
]


class Result:
    def __init__(self, contender, workload, rows):
        self.contender = contender
        self.workload = workload
        self.rows = rows
        self.seconds = None
        self.cpu = None          # contender process, seconds
        self.cpu_walsender = None
        self.cpu_broker = None
        self.rss_mb = None
        self.kafka_seconds = None  # relay/peers: until every record was in the topic
        # relay/peers: the first sample of the topic that held a record
        self.first_record_seconds = None
        self.first_record_count = None
        self.cpu_at_first_record = None  # peers: their CPU seconds at that sample
        self.error = None
        self.ratio = None
        self.cpu_machine = None  # every process on the machine over the run
        self.load_before = None

    @property
    def rate(self):
        return self.rows / self.seconds if self.seconds else None

    @property
    def steady_rate(self):
        """Rows/s from the first record in the topic to the last: the rows
        not yet there at the first sample over the time between."""
        if self.first_record_seconds is None or self.kafka_seconds is None:
            return None
        span = self.kafka_seconds - self.first_record_seconds
        rows = self.rows - self.first_record_count
        return rows / span if span > 0 and rows > 0 else None

    @property
    def steady_cpu(self):
        """The contender's CPU seconds per row over the steady state."""
        if self.cpu_at_first_record is None or self.cpu is None:
            return None
        rows = self.rows - self.first_record_count
        return (self.cpu - self.cpu_at_first_record) / rows if rows > 0 else None

    def to_dict(self):
        d = dict(self.__dict__)
        d["rate"] = self.rate
        d["steady_rate"] = self.steady_rate
        return d


def run_ceiling(servers, wl, slot, binary, timeout, result, messages=False):
    cmd = [os.path.join(PG_BINDIR, "pg_recvlogical"), "-d", servers.dsn(), "--slot", slot,
           "--start", f"--endpos={wl.end_lsn}", "-F", "0", "-f", "/dev/null",
           "-o", "proto_version=1", "-o", "publication_names=outbox_pub"]
    if binary:
        cmd += ["-o", "binary=true"]
    # Logical decoding messages, as the relay asks for them.
    if messages:
        cmd += ["-o", "messages=true"]
    broker0 = proc_cpu_seconds(servers.kafka_pid)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ws_pid = None
    ws_cpu = None
    status = rusage = None
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        if time.monotonic() - t0 > timeout:
            proc.kill()
            _, status, rusage = os.wait4(proc.pid, 0)
            result.error = "timeout"
            break
        if ws_pid is None:
            ws_pid = servers.psql(
                f"SELECT active_pid FROM pg_replication_slots WHERE slot_name = '{slot}'") or None
        if ws_pid is not None:
            ws_cpu = proc_cpu_seconds(int(ws_pid)) or ws_cpu
        time.sleep(0.05)
    t1 = time.monotonic()
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0 and not result.error:
        result.error = f"pg_recvlogical exited {proc.returncode}: {stderr.strip()[:300]}"
    result.seconds = t1 - t0
    result.cpu = rusage.ru_utime + rusage.ru_stime
    result.rss_mb = rusage.ru_maxrss / 1024
    result.cpu_walsender = ws_cpu
    b1 = proc_cpu_seconds(servers.kafka_pid)
    result.cpu_broker = b1 - broker0 if b1 is not None and broker0 is not None else None


# Experiments with the relay's configuration and environment only (no code
# change): contenders "outbox-relay+<variant>", selected with --contenders.
# "kafka" adds kafka.properties, "kafka_keys" adds keys of the kafka section,
# "outbox_keys" adds keys of the outbox section, "limits" replaces limits,
# "env" is added to the relay's environment, "bin" runs another build of the
# relay (a path, or the name of an environment variable holding one, for
# side-by-side runs against an earlier build).
RELAY_VARIANTS = {
    # The delivery guarantee: exactly_once is the default.
    "alo": {"kafka_keys": {"delivery": "at_least_once"}},
    # The peers' own settings: at least once, no compression (Kafka's
    # producer default, which Debezium Server and go-pq-cdc-kafka keep).
    "alo-nolz4": {"kafka_keys": {"delivery": "at_least_once"},
                  "kafka": {"compression.type": "none"}},
    # How often exactly_once commits its Kafka transaction, and its size bound.
    "txn100ms": {"kafka_keys": {"transaction_interval": "100ms",
                                "transaction_max_records": 10000}},
    "txn250ms": {"kafka_keys": {"transaction_interval": "250ms",
                                "transaction_max_records": 50000}},
    "txn500ms": {"kafka_keys": {"transaction_interval": "500ms",
                                "transaction_max_records": 100000}},
    "txn1s": {"kafka_keys": {"transaction_interval": "1s",
                             "transaction_max_records": 200000}},
    # The build named by OUTBOX_BENCH_PREV_RELAY, with its own defaults.
    "prev": {"bin": "OUTBOX_BENCH_PREV_RELAY"},
    # The payloads are incompressible; lz4 (the relay's default) costs the
    # relay and the broker CPU for nothing here.
    "nolz4": {"kafka": {"compression.type": "none"}},
    "zstd": {"kafka": {"compression.type": "zstd"}},
    # The in-flight window (default 20,000): memory held by librdkafka, and
    # how far apart in time a record is written and read again.
    # Exactly once: how soon a caught-up stream commits again (default
    # 20 ms), against the broker's cost of each commit.
    "mingap0": {"kafka_keys": {"transaction_min_interval": "0ms"}},
    "mingap50": {"kafka_keys": {"transaction_min_interval": "50ms"}},
    "inflight5k": {"limits": {"max_inflight_messages": 5000}},
    "inflight10k": {"limits": {"max_inflight_messages": 10000}},
    "inflight50k": {"limits": {"max_inflight_messages": 50000}},
    "inflight100k": {"limits": {"max_inflight_messages": 100000}},
    # jemalloc's default arenas (four per CPU) instead of the relay's one.
    "arenas8": {"env": {"MALLOC_CONF": "narenas:8"}},
    # Freed pages returned to the kernel at once.
    "decay0": {"env": {"MALLOC_CONF": "dirty_decay_ms:0,muzzy_decay_ms:0"}},
    # Batching: linger.ms (default 5) trades latency for fewer, larger requests.
    "linger1": {"kafka": {"linger.ms": "1"}},
    "linger2": {"kafka": {"linger.ms": "2"}},
    "linger50": {"kafka": {"linger.ms": "50"}},
    # Payloads referenced from the request instead of copied into it.
    "nocopy": {"kafka": {"message.copy.max.bytes": "0"}},
    "nolz4-nocopy": {"kafka": {"compression.type": "none", "message.copy.max.bytes": "0"}},
    # The in-flight bytes (default 4 MiB; 16 MiB before, 256 MiB before that).
    "bytes4m": {"limits": {"max_inflight_bytes": "4MiB"}},
    "bytes8m": {"limits": {"max_inflight_bytes": "8MiB"}},
    "bytes16m": {"limits": {"max_inflight_bytes": "16MiB"}},
    "bytes32m": {"limits": {"max_inflight_bytes": "32MiB"}},
    "bytes256m": {"limits": {"max_inflight_bytes": "256MiB"}},
    "alo-bytes256m": {"kafka_keys": {"delivery": "at_least_once"},
                      "limits": {"max_inflight_bytes": "256MiB"}},
    # The relay under callgrind: OUTBOX_BENCH_CALLGRIND names a script that
    # runs `valgrind --tool=callgrind ... <relay> "$@"` (instruction counts
    # per row, unaffected by the machine's load; see bench/PROFILE.md).
    "cg": {"bin": "OUTBOX_BENCH_CALLGRIND"},
    "cg-nolz4": {"bin": "OUTBOX_BENCH_CALLGRIND", "kafka": {"compression.type": "none"}},
}


def relay_variant(contender):
    name = contender.split("#")[0]
    if "+" not in name:
        return {}
    variant = name.split("+", 1)[1]
    if variant not in RELAY_VARIANTS:
        raise RuntimeError(f"unknown relay variant {variant!r}: {', '.join(RELAY_VARIANTS)}")
    binary = RELAY_VARIANTS[variant].get("bin")
    if binary and not os.path.exists(os.environ.get(binary, binary)):
        raise RuntimeError(f"relay variant {variant!r}: set {binary} to a relay executable")
    preload = RELAY_VARIANTS[variant].get("env", {}).get("LD_PRELOAD")
    # The dynamic loader only warns about a missing preload and runs the
    # relay as it is: the variant would silently measure the default.
    if preload and not os.path.exists(preload):
        raise RuntimeError(f"{preload} is missing (apt-get install libjemalloc2)")
    return RELAY_VARIANTS[variant]


def relay_config(servers, slot, topic_prefix, path, variant=None):
    variant = variant or {}
    kafka_props = "".join(f"\n    {k}: \"{v}\"" for k, v in variant.get("kafka", {}).items())
    limits = "".join(f"\n  {k}: {v}" for k, v in variant.get("limits", {}).items())
    kafka_keys = "".join(f"\n  {k}: {v}" for k, v in variant.get("kafka_keys", {}).items())
    outbox_keys = "".join(f"\n  {k}: {v}" for k, v in variant.get("outbox_keys", {}).items())
    with open(path, "w") as f:
        f.write(f"""postgres:
  dsn: "{servers.dsn('outbox_relay')}"
  slot: {slot}
  publication: outbox_pub
  create_slot: false
  create_publication: false
  # The slot position is part of the drain condition: confirm it often
  # enough that the 1 s default does not add up to a second per run.
  status_interval: 100ms
kafka:
  brokers: "{servers.brokers}"
  create_topics: true{kafka_keys}
  properties:{kafka_props or " {}"}
outbox:
  table: public.outbox
  topic_template: "{topic_prefix}.${{topic}}"{outbox_keys}
http:
  listen: "127.0.0.1:0"
log:
  level: info
""")
        if limits:
            f.write("limits:" + limits + "\n")


def start_perf(pid, out):
    """Samples the running relay with call graphs (DWARF unwinding: the
    RelWithDebInfo build keeps no frame pointers)."""
    return subprocess.Popen(["perf", "record", "-F", "499", "--call-graph", "dwarf,16384",
                             "-p", str(pid), "-o", out], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


class RelayRun:
    """One relay run: its topic (created with `topic_configs`, CONFIG=VALUE
    topic settings), its config file and its log, <work>/<run_id>.{yaml,log}."""

    def __init__(self, servers, slot, run_id, work, variant=None, topic_configs=()):
        self.variant = variant or {}
        self.topic = f"{run_id}.{TOPIC}"
        servers.kafka_admin("create-topic", self.topic, str(PARTITIONS), *topic_configs)
        self.cfg = os.path.join(work, f"{run_id}.yaml")
        relay_config(servers, slot, run_id, self.cfg, self.variant)
        self.log_path = os.path.join(work, f"{run_id}.log")
        self.logf = open(self.log_path, "w")

    def start(self):
        binary = self.variant.get("bin")
        relay = os.environ.get(binary, binary) if binary else common.RELAY
        return subprocess.Popen([relay, "run", "--config", self.cfg], stdout=self.logf,
                                stderr=subprocess.STDOUT,
                                env=dict(os.environ, **self.variant.get("env", {})))


def run_relay(servers, wl, slot, timeout, result, work, run=None):
    """Drains `wl` with the relay; `run` is one already made (its topic named
    in the backlog), by default one for the result's contender."""
    if run is None:
        run_id = slug(f"{result.contender}_{wl.name}").replace("_", "-")
        run = RelayRun(servers, slot, run_id, work, relay_variant(result.contender))
    topic, logf = run.topic, run.logf
    broker0 = proc_cpu_seconds(servers.kafka_pid)
    t0 = time.monotonic()
    proc = run.start()
    perf = start_perf(proc.pid, f"{PERF_OUT}.{run_id}") if PERF_OUT else None
    try:
        ws_pid = walsender_pid(servers, slot, lambda: proc.poll() is None)
        if wait_drained(servers, wl, slot, topic, proc, timeout, result, t0):
            result.seconds = time.monotonic() - t0
        result.cpu = proc_cpu_seconds(proc.pid)
        result.rss_mb = proc_hwm_mb(proc.pid)
        result.cpu_walsender = proc_cpu_seconds(ws_pid) if ws_pid else None
        b1 = proc_cpu_seconds(servers.kafka_pid)
        result.cpu_broker = b1 - broker0 if b1 is not None and broker0 is not None else None
    finally:
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait(120)
        stop_process(proc)
        logf.close()
    if proc.returncode not in (0, None) and not result.error:
        result.error = f"relay exited {proc.returncode} at SIGTERM"
    servers.kafka_admin("delete-topic", topic, check=False)


def warm_up(servers, records):
    """A fresh broker answers the first idempotent producer with "coordinator
    load in progress" until its transaction-state partition is loaded; let
    that happen before anything is timed."""
    servers.kafka_admin("create-topic", "bench.warmup", "1")
    deadline = time.monotonic() + 60
    while True:
        r = subprocess.run(["kcat", "-P", "-b", servers.brokers, "-t", "bench.warmup",
                            "-X", "enable.idempotence=true", "-X", "message.timeout.ms=5000"],
                           input=b"warm-up\n", capture_output=True)
        if r.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    warm_up_broker_jit(servers, records)


def warm_up_broker_jit(servers, records):
    """The broker's produce path runs interpreted until HotSpot compiles it:
    the first contender after a fresh start measured up to twice the broker
    CPU of the same run repeated. Records shaped like the relay's (key, five
    headers, 256-byte value, lz4, idempotent, six partitions) go to a
    throwaway topic first, so that no contender pays for the warm-up."""
    if records <= 0:
        return
    servers.kafka_admin("create-topic", "bench.warmup-jit", str(PARTITIONS))
    headers = []
    for h in ("type=Warmup", "seq=1", "outbox-id=1", "outbox-lsn=0/16B3748", "outbox-xid=750"):
        headers += ["-H", h]
    kcat = subprocess.Popen(["kcat", "-P", "-b", servers.brokers, "-t", "bench.warmup-jit",
                             "-K", ":", "-z", "lz4", "-X", "enable.idempotence=true",
                             "-X", "linger.ms=5", *headers],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    # Written in chunks: a child forked later inherits this process's peak
    # RSS into its own ru_maxrss (pg_recvlogical's figure comes from there).
    value = "w" * 256
    chunk = 10_000
    for start in range(0, records, chunk):
        kcat.stdin.write("".join(f"{i}:{value}\n"
                                 for i in range(start, min(records, start + chunk))).encode())
    kcat.stdin.close()
    err = kcat.stderr.read()
    if kcat.wait(300) != 0:
        raise RuntimeError(f"broker warm-up failed: {err.decode(errors='replace').strip()}")
    servers.kafka_admin("delete-topic", "bench.warmup-jit", check=False)


def load_backlog(servers, wl, slots):
    servers.psql("TRUNCATE public.outbox")
    for s in slots:
        servers.psql(f"SELECT pg_create_logical_replication_slot('{s}', 'pgoutput')")
    log(f"{wl.name}: loading {wl.rows} rows ({wl.payload} B payloads, {wl.per_txn} per txn)")
    t0 = time.monotonic()
    # The load's own commits need not wait for the WAL flush; the contenders
    # only start after the CHECKPOINT below has flushed everything.
    servers.psql(f"CALL bench_load({wl.rows}, {wl.per_txn}, {wl.payload}, '{TOPIC}')",
                 env_extra={"PGOPTIONS": "-c synchronous_commit=off"})
    wl.end_lsn = servers.psql("SELECT pg_current_wal_insert_lsn()")
    servers.psql("CHECKPOINT")
    wl.load_seconds = time.monotonic() - t0
    wal = servers.psql(f"SELECT pg_size_pretty(pg_current_wal_insert_lsn() - "
                       f"(SELECT min(restart_lsn) FROM pg_replication_slots))")
    log(f"{wl.name}: loaded in {wl.load_seconds:.1f} s, end lsn {wl.end_lsn}, backlog WAL {wal}")


RELAY_WARMED_UP = False


def warm_up_relay(servers, wl, slot, timeout, work):
    """One unreported relay run before the measured ones: with the broker
    warmed by kcat alone, the first relay run of a session still measured
    up to 1.5x the CPU (relay and broker) of the runs after it."""
    global RELAY_WARMED_UP
    r = Result("outbox-relay (warm-up, not reported)", wl.name, wl.rows)
    log(f"{wl.name}: warm-up run of outbox-relay")
    try:
        run_relay(servers, wl, slot, timeout, r, work)
    except Exception as e:
        r.error = f"{type(e).__name__}: {e}"
    log(f"{wl.name}: warm-up run " +
        (f"FAILED: {r.error}" if r.error else f"{r.seconds:.2f} s, cpu {r.cpu:.2f} s"))
    drop_slots(servers, [slot])
    RELAY_WARMED_UP = True


def run_workload(servers, wl, contenders, timeout, work, peers, peer_workloads):
    if wl.name not in peer_workloads:
        contenders = [c for c in contenders if c not in PEER_CONTENDERS]
    # Repetitions of the cheap contenders, each on its own slot over the same
    # backlog, interleaved so that a burst of load from elsewhere on the
    # machine does not hit every run of one contender; every other round
    # runs the relay's contenders in reverse order, since a run tends to be
    # faster the later it comes in a round.
    base = [c for c in contenders if c.split("+")[0] in BASE_CONTENDERS]

    def round_order(i):
        first = [c for c in base if not c.startswith("outbox-relay")]
        relays = [c for c in base if c.startswith("outbox-relay")]
        return first + (relays[::-1] if i % 2 else relays)
    contenders = [f"{c}#{i + 1}" if i else c for i in range(REPEAT) for c in round_order(i)] + \
        [c for c in contenders if c not in base]
    slots = {c: f"bench_{slug(c)}" for c in contenders
             if c.split("#")[0].split("+")[0] in SLOT_CONTENDERS}
    warm_up_slot = None
    if not RELAY_WARMED_UP and any(c.startswith("outbox-relay") for c in contenders):
        warm_up_slot = "bench_relay_warm_up"
    load_backlog(servers, wl, [*slots.values(), *([warm_up_slot] if warm_up_slot else [])])
    if warm_up_slot:
        warm_up_relay(servers, wl, warm_up_slot, timeout, work)
    results = []
    for c in contenders:
        r = Result(c, wl.name, wl.rows)
        log(f"{wl.name}: running {c}")
        r.load_before = float(open("/proc/loadavg").read().split()[0])
        busy0 = machine_busy_seconds()
        try:
            kind = c.split("#")[0]
            if kind == "ceiling-text":
                run_ceiling(servers, wl, slots[c], False, timeout, r)
            elif kind == "ceiling-binary":
                run_ceiling(servers, wl, slots[c], True, timeout, r)
            elif kind.startswith("outbox-relay"):
                run_relay(servers, wl, slots[c], timeout, r, work)
            else:
                peers.run(c, servers, wl, slots.get(c), timeout, r, work)
        except Exception as e:  # one contender's failure must not hide the others' figures
            r.error = f"{type(e).__name__}: {e}"
        r.cpu_machine = machine_busy_seconds() - busy0
        if r.error:
            log(f"{wl.name}: {c} FAILED: {r.error}")
        else:
            log(f"{wl.name}: {c} {r.seconds:.2f} s, {r.rate:,.0f} rows/s, cpu {r.cpu:.2f} s, "
                f"rss {r.rss_mb:.1f} MB")
        results.append(r)
        if c in slots:
            drop_slots(servers, [slots[c]])
    ceilings = [r.rate for r in results if r.contender.startswith("ceiling") and r.rate
                and not r.error]
    best = max(ceilings) if ceilings else None
    for r in results:
        if best and r.rate and not r.error:
            r.ratio = r.rate / best
    drop_slots(servers, slots.values())
    servers.psql("TRUNCATE public.outbox")
    servers.psql("CHECKPOINT")
    return results


def per_m(r, v):
    return v / r.rows * 1e6 if v is not None and r.rows else None


def table(results):
    head = ["contender", "workload", "rows", "seconds", "rows/s", "ratio to ceiling",
            "CPU s per M rows", "all CPU s per M rows", "peak RSS MB"]
    rows = []
    for r in results:
        if r.error:
            rows.append([r.contender, r.workload, f"{r.rows:,}", "FAILED", r.error[:60], "", "",
                         "", ""])
            continue
        parts = [r.cpu, r.cpu_walsender, r.cpu_broker]
        total = sum(p for p in parts if p is not None)
        rows.append([r.contender, r.workload, f"{r.rows:,}", fmt(r.seconds, ".2f"),
                     fmt(r.rate, ",.0f"), fmt(r.ratio, ".2f" if r.ratio is None or r.ratio >= 0.1 else ".4f"),
                     fmt(per_m(r, r.cpu), ".2f"),
                     fmt(per_m(r, total), ".2f"), fmt(r.rss_mb, ".1f")])
    return md_table(head, rows)


def best_ceilings(results):
    """Per workload, the faster pg_recvlogical rate of the run."""
    best = {}
    for r in results:
        if r.contender.startswith("ceiling") and r.rate and not r.error:
            best[r.workload] = max(best.get(r.workload, 0), r.rate)
    return best


def is_relay(r):
    """The relay at its defaults (repeats included, variants not)."""
    return r.contender.split("#")[0] == "outbox-relay"


def steady_table(results):
    """Start-up and steady state of every contender that writes to Kafka."""
    best = best_ceilings(results)
    head = ["contender", "workload", "rows", "start-up s", "rows at first sample",
            "steady s", "steady rows/s", "steady ratio to ceiling", "steady CPU s per M rows",
            "CPU s per M rows", "peak RSS MB"]
    rows = []
    for r in results:
        if r.error or r.first_record_seconds is None:
            continue
        ceiling = best.get(r.workload)
        steady = r.steady_rate
        rows.append([r.contender, r.workload, f"{r.rows:,}", fmt(r.first_record_seconds, ".2f"),
                     f"{r.first_record_count:,}",
                     fmt(r.kafka_seconds - r.first_record_seconds, ".2f"), fmt(steady, ",.0f"),
                     fmt(steady / ceiling if steady and ceiling else None, ".2f"),
                     fmt(r.steady_cpu * 1e6 if r.steady_cpu is not None else None, ".2f"),
                     fmt(per_m(r, r.cpu), ".2f"), fmt(r.rss_mb, ".1f")])
    return md_table(head, rows) if rows else ""


def versus_peers_table(results):
    """Per workload, the relay against the fastest peer's steady state: the
    relay's slowest run, timed from its process start, over the peer's best
    run, timed from its first record (the peer's best day)."""
    head = ["workload", "relay rows/s", "relay steady rows/s", "fastest peer",
            "peer steady rows/s", "relay / peer", "2x goal"]
    rows = []
    for wl in dict.fromkeys(r.workload for r in results):
        ok = [r for r in results if r.workload == wl and not r.error and r.rate]
        relay = [r for r in ok if is_relay(r)]
        peers = [r for r in ok if r.contender in PEER_CONTENDERS and r.steady_rate]
        if not relay or not peers:
            continue
        slowest = min(relay, key=lambda r: r.rate)
        steady = [r.steady_rate for r in relay if r.steady_rate]
        fastest = max(peers, key=lambda r: r.steady_rate)
        ratio = slowest.rate / fastest.steady_rate
        rows.append([wl, f"{slowest.rate:,.0f}", fmt(min(steady) if steady else None, ",.0f"),
                     fastest.contender, f"{fastest.steady_rate:,.0f}", f"{ratio:.1f}",
                     "met" if ratio >= 2 else "NOT met"])
    return md_table(head, rows) if rows else ""


def peer_sections(results, level="##"):
    """The start-up / steady-state table and the relay against the fastest
    peer, as markdown sections; empty when the run had neither."""
    out = ""
    steady = steady_table(results)
    if steady:
        out += (f"{level} Start-up and steady state\n\n"
                "Start-up: process start until the first sample of the topic (every 20 ms) that "
                "held a record. Steady: from that sample to the one that held every row; steady "
                "rows/s counts the rows not yet in the topic at the first sample. Steady CPU: the "
                "contender's CPU over the same span (peers only; sampled at the first record).\n\n"
                + steady + "\n\n")
    versus = versus_peers_table(results)
    if versus:
        out += (f"{level} The relay against the fastest peer\n\n"
                "Relay rows/s: its slowest run, timed from process start; the peer: its fastest "
                "steady-state rate (default or tuned), start-up excluded. Goal: at least 2x.\n\n"
                + versus + "\n\n")
    return out


def detail_table(results, workloads):
    head = ("| contender | workload | records in Kafka at (s) | drained at (s) | contender CPU s "
            "| walsender CPU s | broker CPU s | whole machine CPU s | load avg before |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.contender} | {r.workload} | {fmt(r.kafka_seconds, '.2f')} | "
                     f"{fmt(r.seconds, '.2f')} | {fmt(r.cpu, '.2f')} | "
                     f"{fmt(r.cpu_walsender, '.2f')} | {fmt(r.cpu_broker, '.2f')} | "
                     f"{fmt(r.cpu_machine, '.2f')} | {fmt(r.load_before, '.2f')} |")
    lines += ["", "| workload | rows | rows per txn | payload B | load s | backlog end LSN |",
              "|---|---|---|---|---|---|"]
    for wl in workloads:
        lines.append(f"| {wl.name} | {wl.rows:,} | {wl.per_txn:,} | {wl.payload} | "
                     f"{fmt(wl.load_seconds, '.1f')} | {wl.end_lsn} |")
    return "\n".join(lines)


def cmd_out(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, shell=isinstance(cmd, str))
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def machine(peers):
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    libs = os.environ.get("OUTBOX_KAFKA_LIBS", os.path.join(
        os.environ.get("OUTBOX_CACHE", os.path.expanduser("~/.cache/outbox-relay")),
        "kafka-3.9.1", "libs"))
    kafka_jar = next((j for j in sorted(os.listdir(libs)) if j.startswith("kafka_2.13-")),
                     "unknown") if os.path.isdir(libs) else "unknown"
    info = [
        ("nproc", str(os.cpu_count())),
        ("CPU", cpu),
        ("memory", f"{mem_kb / 1024 / 1024:.1f} GiB"),
        ("kernel", platform.release()),
        ("OS", cmd_out(". /etc/os-release && echo $PRETTY_NAME")),
        ("load average at start", " ".join(open("/proc/loadavg").read().split()[:3])),
        ("PostgreSQL", cmd_out([os.path.join(PG_BINDIR, "postgres"), "--version"])),
        ("Kafka", kafka_jar.replace(".jar", "") + " (single KRaft node, tests/harness)"),
        ("Java", cmd_out(["java", "-version"])),
        ("librdkafka", cmd_out(["pkg-config", "--modversion", "rdkafka"])),
        ("outbox-relay", cmd_out(["git", "-C", ROOT, "describe", "--always", "--dirty"]) +
         " (RelWithDebInfo)"),
    ]
    return info + peers.versions()


# bench/run.sh --live writes this section at the end of the results file; a
# drain run rewrites everything before it and keeps it.
LIVE_SECTION = "## Live latency"


def split_results(path):
    """The results file's text before the live section, and the section."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return "", ""
    at = text.find("\n" + LIVE_SECTION + "\n")
    return (text, "") if at < 0 else (text[:at + 1], text[at + 1:])


def written_by(args, started, heading):
    """The run's command line and date, then the machine description."""
    return (f"Written by `bench/run.sh {shlex.join(args)}` on {started} "
            "(see README.md, \"Benchmarks\", for what each figure means).\n\n"
            f"{heading}\n\n")


def machine_list(info):
    return "".join(f"- {k}: {v}\n" for k, v in info)


def write_results(path, results, workloads, info, args, started):
    live = split_results(path)[1]
    with open(path, "w") as f:
        f.write("# Benchmark results\n\n")
        f.write(written_by(args, started, "## Machine"))
        f.write(machine_list(info))
        f.write("\n## Drain rate\n\n")
        f.write("Ratio: rows/s over the faster pg_recvlogical run (text or binary) on the same "
                "backlog in the same run. CPU: the contender's own processes; \"all CPU\" adds "
                "the walsender that served it and the Kafka broker over the same interval. "
                "Peak RSS: the contender's VmHWM (pg_recvlogical: ru_maxrss).\n\n")
        f.write(table(results) + "\n\n")
        f.write(peer_sections(results))
        f.write("## Details\n\n")
        f.write(detail_table(results, workloads) + "\n")
        if live:
            f.write("\n" + live)


def prepare_servers(servers, quick):
    """The outbox table, publication and relay role, the backlog generator,
    the dead-letter topic, and a broker past its first-producer hiccup and
    warmed up (--quick: lightly)."""
    for f in sorted(os.listdir(os.path.join(ROOT, "sql"))):
        if re.match(r"0[12]-.*\.sql$", f):
            servers.psql_file(os.path.join(ROOT, "sql", f))
    servers.psql_file(os.path.join(ROOT, "bench", "load.sql"))
    servers.kafka_admin("create-topic", "outbox.dead-letter", "1")
    warm_up(servers, 20_000 if quick else 1_000_000)


class NoPeers:
    def versions(self):
        return []

    def run(self, name, *args):
        raise RuntimeError(f"unknown contender {name}")


SLOT_CONTENDERS = {"ceiling-text", "ceiling-binary", "outbox-relay", *PEER_SLOT_CONTENDERS}
BASE_CONTENDERS = ["ceiling-text", "ceiling-binary", "outbox-relay"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="small backlog, one workload, no peers (CI smoke run)")
    ap.add_argument("--workloads", help="comma-separated subset of: " +
                    ", ".join(w[0] for w in WORKLOADS))
    ap.add_argument("--contenders", help="comma-separated subset of: " +
                    ", ".join(BASE_CONTENDERS + PEER_CONTENDERS) + "; " +
                    ", ".join(PEER_GROUPS) + " stand for a peer's default and tuned runs")
    ap.add_argument("--rows", type=int, help="override every workload's row count")
    ap.add_argument("--no-peers", action="store_true", help="ceiling and outbox-relay only")
    ap.add_argument("--peer-workloads",
                    help="workloads the peers run on, or 'all' (default: every workload when "
                         "--contenders names a peer, else '256B x100')")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of each of pg_recvlogical and outbox-relay per workload "
                         "(peers run once)")
    ap.add_argument("--timeout", type=float, default=900, help="per contender run, seconds")
    ap.add_argument("--out", help="results file (default bench/RESULTS.md; --quick: none)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--perf", metavar="PREFIX",
                    help="record the relay with perf into PREFIX.<run> (distorts its figures)")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()

    global PERF_OUT, REPEAT
    PERF_OUT = args.perf
    REPEAT = max(1, args.repeat)
    use_build_dir(args.build_dir)

    wls = []
    for name, payload, per_txn, rows, quick_rows in WORKLOADS:
        if args.quick and quick_rows is None:
            continue
        n = args.rows or (quick_rows if args.quick else rows)
        wls.append(Workload(name, payload, per_txn, n))
    if args.workloads:
        wanted = [w.strip() for w in args.workloads.split(",")]
        unknown = set(wanted) - {w.name for w in wls}
        if unknown:
            ap.error(f"unknown workloads: {', '.join(sorted(unknown))}")
        wls = [w for w in wls if w.name in wanted]

    contenders = list(BASE_CONTENDERS)
    if not args.quick and not args.no_peers:
        contenders += PEER_CONTENDERS
    if args.contenders:
        contenders = [x for c in args.contenders.split(",")
                      for x in PEER_GROUPS.get(c.strip(), [c.strip()])]
    peer_workloads = args.peer_workloads or ("all" if args.contenders else "256B x100")
    peers = NoPeers()
    if any(c in PEER_CONTENDERS for c in contenders):
        import peer_runners  # fetches and builds the peers
        peers = peer_runners.Peers(ROOT, log)
        contenders = peers.prepare(contenders)

    out = args.out or (None if args.quick else os.path.join(ROOT, "bench", "RESULTS.md"))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    info = machine(peers)
    work = new_work_dir()
    servers = None
    results = []
    raise_on_sigterm()
    try:
        servers = Servers(work)
        prepare_servers(servers, args.quick)
        for wl in wls:
            peer_wls = ({w.name for w in wls} if peer_workloads == "all" else
                        {w.strip() for w in peer_workloads.split(",")})
            results += run_workload(servers, wl, contenders, args.timeout, work, peers, peer_wls)
            print(table(results), file=sys.stderr, flush=True)
    finally:
        if servers:
            servers.destroy()
        peers.cleanup() if hasattr(peers, "cleanup") else None
        if args.keep:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print(table(results))
    extra = peer_sections(results)
    if extra:
        print("\n" + extra.rstrip())
    with open(os.path.join(ROOT, "build", "bench-results.json") if os.path.isdir(
            os.path.join(ROOT, "build")) else os.devnull, "w") as f:
        json.dump({"machine": info, "results": [r.to_dict() for r in results],
                   "workloads": [w.__dict__ for w in wls]}, f, indent=1)
    if out:
        write_results(out, results, wls, info, sys.argv[1:], started)
        log(f"wrote {out}")
    failed = [r for r in results if r.error]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
