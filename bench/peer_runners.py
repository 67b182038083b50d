"""The peers of bench.py: Debezium Server, go-pq-cdc-kafka and gox, fetched,
built and configured at bench time (bench/peers/fetch-*.sh), never committed.

Each runs at its defaults and tuned. A peer's drain ends when its topic holds
every row of the backlog (sum of high watermarks); the relay's condition
also waits for the slot's confirmed_flush_lsn, which the peers either do not
confirm the same way or confirm later on a timer, so that half does not
apply to them. Besides the drain, wait_drained() records when the first
record reached the topic: start-up is process start to first record, and the
steady-state rate is first record to last, so a JVM's start and warm-up are
reported apart from its rate. CPU and peak RSS are read like the relay's,
over the peer's whole process tree (Debezium's run.sh execs one JVM; the
others are one process), and CPU once more at the first record.
"""

import os
import subprocess
import time

from common import (PARTITIONS, TOPIC, Workload, free_port, proc_cpu_seconds, proc_hwm_mb, slug,
                    stop_process, wait_drained, walsender_pid)

# Contender names, and the names that stand for a peer's two settings.
PEER_GROUPS = {
    "debezium-server": ["debezium-server-default", "debezium-server-tuned"],
    "go-pq-cdc-kafka": ["go-pq-cdc-kafka-default", "go-pq-cdc-kafka-tuned"],
    "gox": ["gox-default", "gox-tuned"],
}
PEER_CONTENDERS = [c for group in PEER_GROUPS.values() for c in group]
# Peers that read a logical slot: bench.py creates it before the backlog.
PEER_SLOT_CONTENDERS = set(PEER_GROUPS["debezium-server"] + PEER_GROUPS["go-pq-cdc-kafka"])

# gox publishes one record at a time and waits for its delivery report
# before the next (internal/operator/operator.go), so it drains a few hundred
# rows per second: a 1,000,000-row backlog would take hours. It gets the
# first rows of the same backlog instead; rows/s stays comparable.
GOX_ROWS = int(os.environ.get("OUTBOX_BENCH_GOX_ROWS", "10000"))

GOX_TUNED = ["--batchSize", "1000", "--pollInterval", "1"]

DEBEZIUM_VERSION = os.environ.get("DEBEZIUM_VERSION", "3.6.3.Final")

# Debezium Server's settings for the tuned run, on top of the shared ones.
#
# Its Kafka sink sends a whole batch, then waits for the batch's futures:
# KafkaChangeConsumer.handleBatch in debezium-server-kafka 3.x (file
# debezium-server-kafka/src/main/java/io/debezium/server/kafka/KafkaChangeConsumer.java,
# tag v3.6.0.Final; the 3.6.3.Final jar's bytecode has the same two loops:
# KafkaProducer.send + List.add for every record, then Future.get +
# markProcessed for every record, then markBatchFinished). That came with
# DBZ-8251 ("Sent records without waiting", 3.0.0.CR2 and 2.7.4.Final); in
# 2.7.3.Final, measured before, send() and get() alternated per record. So a
# batch is in flight at once: the producer's batching (batch.size, linger.ms)
# and the engine's batch size both count, and each batch ends in one wait.
DEBEZIUM_TUNED = {
    # Connector side (Debezium's PostgreSQL connector documentation,
    # "Advanced connector configuration properties"; defaults 2048, 8192,
    # 500 ms): larger batches to the sink, so its per-batch wait is paid
    # less often, a queue four batches deep, and a short poll interval.
    "debezium.source.max.batch.size": "16384",
    "debezium.source.max.queue.size": "65536",
    "debezium.source.poll.interval.ms": "10",
    # Producer side (passed through as debezium.sink.kafka.producer.*;
    # Kafka client 4.3 defaults batch.size 16384, linger.ms 5, buffer.memory
    # 32 MiB): 256 KiB per partition batch, and room for a whole 16,384-row
    # batch of 4 KiB rows in the producer's buffer.
    "debezium.sink.kafka.producer.batch.size": "262144",
    "debezium.sink.kafka.producer.linger.ms": "5",
    "debezium.sink.kafka.producer.buffer.memory": "134217728",
}

GO_PQ_CDC_KAFKA_VERSION = os.environ.get("GO_PQ_CDC_KAFKA_VERSION", "v1.3.1")

# go-pq-cdc-kafka's producer (kafka/producer/producer_batch.go) appends each
# row's records to one batch from the replication loop and, once the batch
# holds producerBatchSize records or producerBatchBytes, writes it with one
# synchronous kafka-go Writer.WriteMessages (every partition in parallel)
# before it decodes the next row; a ticker flushes a partial batch after
# producerBatchTickerDuration. Defaults 2000 records, 1 MiB, 10 s. Tuned: its
# own benchmark's 10,000 records and 100 ms ticker (benchmark/go-pq-cdc-kafka/
# main.go), with 4 MiB so that the byte limit does not cut 10,000-record
# batches short at 256 B, while a partition's share (about a sixth) stays
# under the broker's message.max.bytes (1 MiB).
GO_PQ_CDC_KAFKA_TUNED = ["--batch-size", "10000", "--batch-bytes", "4mb",
                         "--batch-ticker", "100ms"]


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
        self.debezium_java = None
        self.go_pq_cdc_kafka_bin = None
        self.go_pq_cdc_kafka_source = None
        self.gox_db_ready = False

    # -- fetching -----------------------------------------------------------

    def fetch(self, script, *args):
        """Runs bench/peers/<script>; its stdout lines."""
        return subprocess.run([os.path.join(self.root, "bench", "peers", script), *args],
                              check=True, capture_output=True, text=True).stdout.split("\n")

    def prepare(self, contenders):
        kept = []
        for c in contenders:
            try:
                if c.startswith("gox") and self.gox_bin is None:
                    self.log("building gox (go install, cached)")
                    self.gox_bin = self.fetch("fetch-gox.sh")[0]
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
                elif c.startswith("debezium-server") and self.debezium_dir is None:
                    self.log(f"fetching Debezium Server {DEBEZIUM_VERSION} (cached)")
                    self.debezium_dir, self.debezium_java = \
                        self.fetch("fetch-debezium.sh", DEBEZIUM_VERSION)[:2]
                elif c.startswith("go-pq-cdc-kafka") and self.go_pq_cdc_kafka_bin is None:
                    self.log(f"building go-pq-cdc-kafka {GO_PQ_CDC_KAFKA_VERSION} (cached)")
                    self.go_pq_cdc_kafka_bin = \
                        self.fetch("fetch-go-pq-cdc-kafka.sh", GO_PQ_CDC_KAFKA_VERSION)[0]
                    source = os.path.join(os.path.dirname(os.path.dirname(
                        self.go_pq_cdc_kafka_bin)), "source")
                    self.go_pq_cdc_kafka_source = open(source).read().strip()
            except subprocess.CalledProcessError as e:
                self.log(f"cannot prepare {c}, leaving it out: {e.stderr.strip()[-500:]}")
                continue
            kept.append(c)
        return kept

    def versions(self):
        out = []
        if self.debezium_dir:
            java = subprocess.run([os.path.join(self.debezium_java, "bin", "java"), "-version"],
                                  capture_output=True, text=True).stderr.splitlines()
            out.append(("Debezium Server", f"{DEBEZIUM_VERSION} ({java[0] if java else '?'}; "
                        "postgres connector with pgoutput, outbox EventRouter, Kafka sink; "
                        "the whole backlog)"))
        if self.go_pq_cdc_kafka_bin:
            out.append(("go-pq-cdc-kafka", f"{self.go_pq_cdc_kafka_source}; "
                        f"{subprocess.run(['go', 'version'], capture_output=True, text=True).stdout.strip()}; "
                        "glue bench/peers/go-pq-cdc-kafka/main.go; the whole backlog"))
        if self.gox_bin:
            out.append(("gox", (self.gox_version or "unknown") +
                        f" (go install; first {GOX_ROWS:,} rows of each backlog)"))
        return out

    # -- running ------------------------------------------------------------

    def run(self, name, servers, wl, slot, timeout, result, work):
        if name.startswith("gox"):
            self.run_gox(name, servers, wl, timeout, result, work)
        elif name.startswith("debezium-server"):
            self.run_debezium(name, servers, wl, slot, timeout, result, work)
        elif name.startswith("go-pq-cdc-kafka"):
            self.run_go_pq_cdc_kafka(name, servers, wl, slot, timeout, result, work)
        else:
            raise RuntimeError(f"unknown contender {name}")

    def measure(self, proc, servers, wl, slot, topic, timeout, result, t0, broker0, rows,
                ws_pid=None):
        """Waits for the drain, then reads CPU and peak RSS before SIGTERM."""
        sub = Workload(wl.name, wl.payload, wl.per_txn, rows)
        sub.end_lsn = wl.end_lsn
        try:
            if wait_drained(servers, sub, slot, topic, proc, timeout, result, t0,
                            cpu_of=lambda: tree_cpu(proc.pid)):
                result.seconds = time.monotonic() - t0
            result.cpu = tree_cpu(proc.pid)
            result.rss_mb = tree_hwm(proc.pid)
            result.cpu_walsender = proc_cpu_seconds(ws_pid) if ws_pid else None
            b1 = proc_cpu_seconds(servers.kafka_pid)
            result.cpu_broker = b1 - broker0 if b1 is not None and broker0 is not None else None
        finally:
            stop_process(proc)

    def new_topic(self, name, wl, servers):
        """The run's id and its topic, created."""
        run_id = slug(f"{name}_{wl.name}").replace("_", "-")
        topic = f"{run_id}.{TOPIC}"
        servers.kafka_admin("create-topic", topic, str(PARTITIONS))
        return run_id, topic

    def timed_run(self, cmd, servers, wl, slot, run_id, topic, rows, timeout, result, work,
                  **popen):
        """Starts cmd (its output into <work>/<run_id>.log) and measures its
        drain of `rows` records into topic, with the CPU of the walsender
        serving `slot` where it reads one; then deletes the topic."""
        logf = open(os.path.join(work, f"{run_id}.log"), "w")
        broker0 = proc_cpu_seconds(servers.kafka_pid)
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, **popen)
        try:
            ws_pid = (walsender_pid(servers, slot, lambda: proc.poll() is None, timeout=120)
                      if slot else None)
            self.measure(proc, servers, wl, None, topic, timeout, result, t0, broker0, rows,
                         ws_pid)
        finally:
            logf.close()
        servers.kafka_admin("delete-topic", topic, check=False)

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
        run_id, topic = self.new_topic(name, wl, servers)
        self.gox_psql(servers, "TRUNCATE public.outbox")
        self.gox_psql(servers, f"CALL bench_load({rows}, {wl.per_txn}, {wl.payload}, '{topic}')")
        self.gox_psql(servers, "VACUUM ANALYZE public.outbox")
        args = [self.gox_bin, "--db", self.gox_db_url(servers), "--brokers", servers.brokers,
                "--topics", topic]
        if name == "gox-tuned":
            args += GOX_TUNED
        self.timed_run(args, servers, wl, None, run_id, topic, rows, timeout, result, work)

    # Debezium Server: the outbox EventRouter and the Kafka sink, on its own
    # slot created before the backlog.

    def debezium_properties(self, name, servers, slot, run_id, data_dir):
        """Shared by both runs: what makes the records the relay's (key = the
        key column as a string, value = the payload's bytes, one topic), the
        source, and the slot to stream from. Everything else is Debezium's
        default unless the run is the tuned one."""
        props = {
            "debezium.sink.type": "kafka",
            "debezium.sink.kafka.producer.bootstrap.servers": servers.brokers,
            "debezium.sink.kafka.producer.key.serializer":
                "org.apache.kafka.common.serialization.StringSerializer",
            "debezium.sink.kafka.producer.value.serializer":
                "org.apache.kafka.common.serialization.ByteArraySerializer",
            # The EventRouter's key is the key column (a string) and its
            # value the payload column (bytea): "simplestring" and "binary"
            # pass them through, as the relay does, where the default JSON
            # converter would wrap both in a schema envelope and base64 the
            # payload.
            "debezium.format.key": "simplestring",
            "debezium.format.value": "binary",
            # Headers: the EventRouter's "id" as a plain string, not a JSON
            # schema envelope, and none of 3.x's four __debezium.context.*
            # headers (connector name, task, run id) on every record.
            "debezium.format.header.schemas.enable": "false",
            "debezium.source.extended.headers.enabled": "false",
            "debezium.source.connector.class": "io.debezium.connector.postgresql.PostgresConnector",
            "debezium.source.offset.storage.file.filename": os.path.join(data_dir, "offsets.dat"),
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
            # No snapshot: stream the backlog the slot holds. 3.x has no
            # "never" mode any more; this is its replacement (schema only,
            # which pgoutput's relation messages make moot).
            "debezium.source.snapshot.mode": "no_data",
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
        }
        if name == "debezium-server-tuned":
            props.update(DEBEZIUM_TUNED)
        return props

    def debezium_home(self, home, props):
        """run.sh reads config/ (conf/ before 3.0) and writes data/ relative to
        its directory: each run gets its own copy of the layout, the rest of
        the (large) distribution linked."""
        conf = "config" if os.path.isdir(os.path.join(self.debezium_dir, "config")) else "conf"
        os.makedirs(os.path.join(home, conf))
        os.makedirs(os.path.join(home, "data"))
        for entry in os.listdir(self.debezium_dir):
            if entry not in (conf, "data"):
                os.symlink(os.path.join(self.debezium_dir, entry), os.path.join(home, entry))
        for entry in os.listdir(os.path.join(self.debezium_dir, conf)):
            # Quarkus warns about every *.example file it finds there.
            if entry != "application.properties" and not entry.endswith(".example"):
                os.symlink(os.path.join(self.debezium_dir, conf, entry),
                           os.path.join(home, conf, entry))
        with open(os.path.join(home, conf, "application.properties"), "w") as f:
            for k, v in props.items():
                f.write(f"{k}={v}\n")

    def run_debezium(self, name, servers, wl, slot, timeout, result, work):
        run_id, topic = self.new_topic(name, wl, servers)
        home = os.path.join(work, run_id)
        self.debezium_home(home, self.debezium_properties(name, servers, slot, run_id,
                                                          os.path.join(home, "data")))
        self.timed_run(["./run.sh"], servers, wl, slot, run_id, topic, wl.rows, timeout, result,
                       work, cwd=home, env=dict(os.environ, JAVA_HOME=self.debezium_java),
                       start_new_session=True)

    # go-pq-cdc-kafka: the glue program, on its own slot created before the
    # backlog.

    def run_go_pq_cdc_kafka(self, name, servers, wl, slot, timeout, result, work):
        run_id, topic = self.new_topic(name, wl, servers)
        args = [self.go_pq_cdc_kafka_bin, "--port", servers.pg_port, "--slot", slot,
                "--publication", "outbox_pub", "--topic", topic, "--brokers", servers.brokers,
                "--metric-port", str(free_port())]
        if name == "go-pq-cdc-kafka-tuned":
            args += GO_PQ_CDC_KAFKA_TUNED
        self.timed_run(args, servers, wl, slot, run_id, topic, wl.rows, timeout, result, work)
