"""The peers of bench.py: gox and Debezium Server, fetched and configured at
bench time (bench/peers/fetch-*.sh), never committed.

Each runs at its defaults and tuned. A peer's drain ends when its topic holds
every row of the backlog (sum of high watermarks); neither confirms a slot
the way the relay does, so the slot half of the relay's condition does not
apply. CPU and peak RSS are read like the relay's, over the peer's whole
process tree (Debezium's run.sh execs one JVM; gox is one process).
"""

import os
import subprocess
import time

from common import (PARTITIONS, TOPIC, Workload, free_port, proc_cpu_seconds, proc_hwm_mb, slug,
                    stop_process, wait_drained, walsender_pid)

# gox publishes one record at a time and waits for its delivery report
# before the next (internal/operator/operator.go), so it drains a few hundred
# rows per second: a 1,000,000-row backlog would take hours. It gets the
# first rows of the same backlog instead; rows/s stays comparable.
GOX_ROWS = int(os.environ.get("OUTBOX_BENCH_GOX_ROWS", "10000"))

# Debezium Server drains a few hundred to a few thousand rows per second
# here; it is timed over the first rows of the same backlog (its slot holds
# all of it), from process start, JVM start-up included.
DEBEZIUM_ROWS = int(os.environ.get("OUTBOX_BENCH_DEBEZIUM_ROWS", "50000"))

GOX_TUNED = ["--batchSize", "1000", "--pollInterval", "1"]

# Debezium Server's source and sink settings, on top of the shared ones.
# Its Kafka sink (KafkaChangeConsumer.handleBatch in 2.7) sends each record
# and waits on its Future before sending the next, so producer batching
# (linger.ms, batch.size) only adds latency per record: those stay at the
# Kafka client's defaults (linger.ms=0). What can help is the source side.
DEBEZIUM_TUNED = {
    # Bigger batches from the connector's queue to the sink, polled often.
    "debezium.source.max.batch.size": "8192",
    "debezium.source.max.queue.size": "65536",
    "debezium.source.poll.interval.ms": "10",
    # No schema envelope around every key and value.
    "debezium.format.key.schemas.enable": "false",
    "debezium.format.value.schemas.enable": "false",
}


def tree_pids(pid):
    """pid and its descendants (run.sh execs java, but be safe)."""
    out = [pid]
    try:
        children = open(f"/proc/{pid}/task/{pid}/children").read().split()
    except FileNotFoundError:
        return out
    for c in children:
        out += tree_pids(int(c))
    return out


def tree_cpu(pid):
    return sum(proc_cpu_seconds(p) or 0 for p in tree_pids(pid))


def tree_hwm(pid):
    return max((proc_hwm_mb(p) or 0 for p in tree_pids(pid)), default=None)


class Peers:
    def __init__(self, root, log):
        self.root = root
        self.log = log
        self.gox_bin = None
        self.gox_version = None
        self.debezium_dir = None
        self.debezium_version = os.environ.get("DEBEZIUM_VERSION", "2.7.3.Final")
        self.gox_db_ready = False

    # -- fetching -----------------------------------------------------------

    def prepare(self, contenders):
        kept = []
        for c in contenders:
            try:
                if c.startswith("gox") and self.gox_bin is None:
                    self.log("building gox (go install, cached)")
                    self.gox_bin = subprocess.run(
                        [os.path.join(self.root, "bench", "peers", "fetch-gox.sh")],
                        check=True, capture_output=True, text=True).stdout.strip()
                    mod = subprocess.run(["go", "version", "-m", self.gox_bin],
                                         capture_output=True, text=True).stdout
                    for line in mod.splitlines():
                        parts = line.split()
                        if len(parts) >= 3 and parts[0] == "mod":
                            self.gox_version = f"{parts[1]} {parts[2]}"
                    commit = os.path.join(os.path.dirname(os.path.dirname(self.gox_bin)),
                                          "commit")
                    if os.path.exists(commit):  # built from a clone (GOX_SRC)
                        self.gox_version = (f"github.com/angusgyoung/gox at commit "
                                            f"{open(commit).read().strip()[:12]}")
                elif c.startswith("debezium") and self.debezium_dir is None:
                    self.log(f"fetching Debezium Server {self.debezium_version} (cached)")
                    self.debezium_dir = subprocess.run(
                        [os.path.join(self.root, "bench", "peers", "fetch-debezium.sh"),
                         self.debezium_version],
                        check=True, capture_output=True, text=True).stdout.strip()
            except subprocess.CalledProcessError as e:
                self.log(f"cannot prepare {c}, leaving it out: {e.stderr.strip()[-500:]}")
                continue
            kept.append(c)
        return kept

    def versions(self):
        out = []
        if self.gox_bin:
            out.append(("gox", (self.gox_version or "unknown") +
                        f" (go install; first {GOX_ROWS:,} rows of each backlog)"))
        if self.debezium_dir:
            out.append(("Debezium Server", self.debezium_version + " (Java 17, EventRouter, "
                        f"Kafka sink; first {DEBEZIUM_ROWS:,} rows of each backlog)"))
        return out

    def slot_based(self, name):
        return name.startswith("debezium")

    # -- running ------------------------------------------------------------

    def run(self, name, servers, wl, slot, timeout, result, work):
        if name.startswith("gox"):
            self.run_gox(name, servers, wl, timeout, result, work)
        elif name.startswith("debezium"):
            self.run_debezium(name, servers, wl, slot, timeout, result, work)
        else:
            raise RuntimeError(f"unknown contender {name}")

    def measure(self, proc, servers, wl, slot, topic, timeout, result, t0, broker0, rows,
                ws_pid=None):
        """Waits for the drain, then reads CPU and peak RSS before SIGTERM."""
        sub = Workload(wl.name, wl.payload, wl.per_txn, rows)
        sub.end_lsn = wl.end_lsn
        try:
            if wait_drained(servers, sub, slot, topic, proc, timeout, result, t0):
                result.seconds = time.monotonic() - t0
            result.cpu = tree_cpu(proc.pid)
            result.rss_mb = tree_hwm(proc.pid)
            result.cpu_walsender = proc_cpu_seconds(ws_pid) if ws_pid else None
            b1 = proc_cpu_seconds(servers.kafka_pid)
            result.cpu_broker = b1 - broker0 if b1 is not None and broker0 is not None else None
        finally:
            stop_process(proc)

    # gox: its own database (it migrates its own outbox table), the same rows.

    def gox_db_url(self, servers):
        return f"postgres://postgres@127.0.0.1:{servers.pg_port}/gox?sslmode=disable"

    def gox_psql(self, servers, sql):
        r = subprocess.run(
            ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
             servers.pg_port, "-U", "postgres", "-d", "gox", "-c", sql],
            capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"psql (gox): {r.stderr.strip()}")
        return r.stdout.strip()

    def gox_setup(self, servers, work):
        if self.gox_db_ready:
            return
        servers.psql("CREATE DATABASE gox")
        # gox applies its migrations at start-up: start it once on an empty
        # outbox so that the timed runs start on a migrated schema.
        topic = "gox.migrate"
        servers.kafka_admin("create-topic", topic, "1")
        logf = open(os.path.join(work, "gox-migrate.log"), "w")
        proc = subprocess.Popen([self.gox_bin, "--db", self.gox_db_url(servers), "--brokers",
                                 servers.brokers, "--topics", topic], stdout=logf,
                                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        try:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"gox exited {proc.returncode} during migration")
                if self.gox_psql(servers, "SELECT count(*) FROM pg_tables "
                                 "WHERE tablename = 'outbox'") == "1" and \
                        "Polling for events" in open(logf.name).read():
                    break
                time.sleep(0.2)
            else:
                raise RuntimeError("gox did not migrate its schema in 120 s")
        finally:
            stop_process(proc)
            logf.close()
        self.gox_psql(servers, open(os.path.join(self.root, "bench", "load.sql")).read()
                      .replace("public.outbox (id, topic, key, headers, payload)",
                               "public.outbox (id, topic, key, headers, message, partition)")
                      .replace("jsonb_build_object('type', 'BenchEvent', 'seq', g::text),",
                               "json_build_array(json_build_object('key', 'type', 'value', "
                               "'BenchEvent'), json_build_object('key', 'seq', 'value', "
                               "g::text)),")
                      .replace("FOR payload_size)", f"FOR payload_size), (g % {PARTITIONS})"))
        self.gox_db_ready = True

    def run_gox(self, name, servers, wl, timeout, result, work):
        self.gox_setup(servers, work)
        rows = min(GOX_ROWS, wl.rows)
        result.rows = rows
        run_id = slug(f"{name}_{wl.name}").replace("_", "-")
        topic = f"{run_id}.{TOPIC}"
        servers.kafka_admin("create-topic", topic, str(PARTITIONS))
        self.gox_psql(servers, "TRUNCATE public.outbox")
        self.gox_psql(servers, f"CALL bench_load({rows}, {wl.per_txn}, {wl.payload}, '{topic}')")
        self.gox_psql(servers, "VACUUM ANALYZE public.outbox")
        args = [self.gox_bin, "--db", self.gox_db_url(servers), "--brokers", servers.brokers,
                "--topics", topic]
        if name == "gox-tuned":
            args += GOX_TUNED
        logf = open(os.path.join(work, f"{run_id}.log"), "w")
        broker0 = proc_cpu_seconds(servers.kafka_pid)
        t0 = time.monotonic()
        proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT)
        try:
            self.measure(proc, servers, wl, None, topic, timeout, result, t0, broker0, rows)
        finally:
            logf.close()
        servers.kafka_admin("delete-topic", topic, check=False)

    # Debezium Server: the outbox EventRouter and the Kafka sink, on its own
    # slot created before the backlog.

    def debezium_properties(self, name, servers, slot, run_id, data_dir):
        props = {
            "debezium.sink.type": "kafka",
            "debezium.sink.kafka.producer.bootstrap.servers": servers.brokers,
            "debezium.sink.kafka.producer.key.serializer":
                "org.apache.kafka.common.serialization.StringSerializer",
            "debezium.sink.kafka.producer.value.serializer":
                "org.apache.kafka.common.serialization.StringSerializer",
            "debezium.source.connector.class": "io.debezium.connector.postgresql.PostgresConnector",
            "debezium.source.offset.storage.file.filename": os.path.join(data_dir, "offsets.dat"),
            "debezium.source.offset.flush.interval.ms": "1000",
            "debezium.source.database.hostname": "127.0.0.1",
            "debezium.source.database.port": servers.pg_port,
            "debezium.source.database.user": "postgres",
            "debezium.source.database.password": "unused-trust-auth",
            "debezium.source.database.dbname": "postgres",
            "debezium.source.topic.prefix": run_id,
            "debezium.source.plugin.name": "pgoutput",
            "debezium.source.slot.name": slot,
            "debezium.source.publication.name": "outbox_pub",
            "debezium.source.publication.autocreate.mode": "disabled",
            "debezium.source.table.include.list": "public.outbox",
            # "never": stream from the slot's position. no_data would start
            # at the WAL position of its schema snapshot and skip the backlog
            # that the slot holds.
            "debezium.source.snapshot.mode": "never",
            "debezium.transforms": "outbox",
            "debezium.transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
            "debezium.transforms.outbox.table.field.event.id": "id",
            "debezium.transforms.outbox.table.field.event.key": "key",
            "debezium.transforms.outbox.table.field.event.payload": "payload",
            "debezium.transforms.outbox.route.by.field": "topic",
            # Every row names the same topic, so the run's topic can be a
            # literal: Quarkus would expand a ${routedByValue} placeholder
            # itself (to nothing) before the transform sees it.
            "debezium.transforms.outbox.route.topic.replacement": f"{run_id}.{TOPIC}",
            "quarkus.http.port": str(free_port()),
            "quarkus.log.level": "INFO",
            "quarkus.log.console.json": "false",
        }
        if name == "debezium-tuned":
            props.update(DEBEZIUM_TUNED)
        return props

    def run_debezium(self, name, servers, wl, slot, timeout, result, work):
        run_id = slug(f"{name}_{wl.name}").replace("_", "-")
        topic = f"{run_id}.{TOPIC}"
        servers.kafka_admin("create-topic", topic, str(PARTITIONS))
        # run.sh reads conf/ and writes data/ relative to its directory: give
        # each run its own copy of the (small) distribution's layout.
        home = os.path.join(work, run_id)
        os.makedirs(os.path.join(home, "conf"))
        os.makedirs(os.path.join(home, "data"))
        for entry in os.listdir(self.debezium_dir):
            if entry not in ("conf", "data"):
                os.symlink(os.path.join(self.debezium_dir, entry), os.path.join(home, entry))
        with open(os.path.join(home, "conf", "application.properties"), "w") as f:
            for k, v in self.debezium_properties(name, servers, slot, run_id,
                                                 os.path.join(home, "data")).items():
                f.write(f"{k}={v}\n")
        logf = open(os.path.join(work, f"{run_id}.log"), "w")
        broker0 = proc_cpu_seconds(servers.kafka_pid)
        t0 = time.monotonic()
        proc = subprocess.Popen(["./run.sh"], cwd=home, stdout=logf, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            ws_pid = walsender_pid(servers, slot, lambda: proc.poll() is None, timeout=120)
            result.rows = min(DEBEZIUM_ROWS, wl.rows)
            self.measure(proc, servers, wl, None, topic, timeout, result, t0, broker0,
                         result.rows, ws_pid)
        finally:
            logf.close()
        servers.kafka_admin("delete-topic", topic, check=False)

