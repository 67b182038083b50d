"""What the benchmarks share: the throwaway servers, process figures from
/proc, the drain condition, stopping a contender, and table formatting.
bench.py, peer_runners.py and live.py import it; it imports none of them."""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HARNESS = os.path.join(ROOT, "tests", "harness")
PG_BINDIR = "/usr/lib/postgresql/15/bin"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PARTITIONS = 6
TOPIC = "bench.events"
# Set by use_build_dir().
RELAY = None
KAFKA_ADMIN = None


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def slug(text):
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def proc_cpu_seconds(pid):
    """utime + stime of every thread of pid, in seconds; None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # Fields after the command name start at field 3 (state): utime is 14, stime 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds():
    """CPU seconds all processes of the machine used so far (it is shared:
    compare with a run's own figures to see how much others took)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def proc_hwm_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return None


class Servers:
    """PostgreSQL 15 and Kafka from the test harness, in one work directory."""

    def __init__(self, work, pg_conf=None):
        self.work = work
        env = dict(os.environ, HARNESS_OWNER_PID=str(os.getpid()))
        if pg_conf:
            env["PG_EXTRA_CONF"] = "\n".join(pg_conf)
        log(f"starting PostgreSQL 15 and Kafka in {work}")
        self.pg_dir = os.path.join(work, "pg")
        self.kafka_dir = os.path.join(work, "kafka")
        self.pg_port = subprocess.run(
            [os.path.join(HARNESS, "pg-server.sh"), "start", self.pg_dir, PG_BINDIR],
            env=env, check=True, capture_output=True, text=True).stdout.strip()
        env.pop("PG_EXTRA_CONF", None)
        self.brokers = subprocess.run(
            [os.path.join(HARNESS, "kafka-broker.sh"), "start", self.kafka_dir],
            env=env, check=True, capture_output=True, text=True).stdout.strip()
        with open(os.path.join(self.kafka_dir, "pid")) as f:
            self.kafka_pid = int(f.read().strip())
        log(f"postgres 127.0.0.1:{self.pg_port}, kafka {self.brokers}")

    def dsn(self, user="postgres"):
        return f"host=127.0.0.1 port={self.pg_port} dbname=postgres user={user}"

    def psql(self, sql, env_extra=None):
        env = dict(os.environ, **(env_extra or {}))
        r = subprocess.run(
            ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", self.pg_port,
             "-U", "postgres", "-d", "postgres", "-c", sql],
            capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"psql failed: {sql[:200]}\n{r.stderr}")
        return r.stdout.strip()

    def psql_file(self, path):
        subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", self.pg_port,
             "-U", "postgres", "-d", "postgres", "-f", path], check=True)

    def kafka_admin(self, *args, check=True):
        return subprocess.run([KAFKA_ADMIN, self.brokers, *args], check=check,
                              capture_output=True, text=True)

    def destroy(self):
        for script, d in (("kafka-broker.sh", self.kafka_dir), ("pg-server.sh", self.pg_dir)):
            subprocess.run([os.path.join(HARNESS, script), "destroy", d],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Workload:
    def __init__(self, name, payload, per_txn, rows):
        self.name = name
        self.payload = payload
        self.per_txn = per_txn if per_txn > 0 else rows
        self.rows = rows
        self.end_lsn = None
        self.load_seconds = None


def walsender_pid(servers, slot, alive, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        pid = servers.psql(
            f"SELECT active_pid FROM pg_replication_slots WHERE slot_name = '{slot}'")
        if pid:
            return int(pid)
        time.sleep(0.05)
    return None


def slot_reached(servers, slot, lsn):
    return servers.psql(
        f"SELECT confirmed_flush_lsn >= '{lsn}'::pg_lsn FROM pg_replication_slots "
        f"WHERE slot_name = '{slot}'") == "t"


class KafkaProgress:
    """Reads the "progress SECONDS COUNT" lines of `kafka-admin count
    --progress` on a thread of its own: the first sample that saw a record,
    and the last sample (SECONDS on time.monotonic()'s clock)."""

    def __init__(self, stream):
        self.first = None  # (seconds, count)
        self.last = None
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        for line in stream:
            parts = line.split()
            if len(parts) != 3 or parts[0] != "progress":
                continue
            sample = (float(parts[1]), int(parts[2]))
            if self.first is None and sample[1] > 0:
                self.first = sample
            self.last = sample


def wait_drained(servers, wl, slot, topic, proc, timeout, result, t0, cpu_of=None):
    """Waits until `topic` holds wl.rows records and `slot` has confirmed the
    backlog end (when slot is given). Returns True on success.

    Also records when the first record reached the topic and how many were
    there then (result.first_record_seconds, result.first_record_count), and
    when the last did (result.kafka_seconds), all from t0; with `cpu_of`, a
    callable returning the contender's CPU seconds so far, it is sampled as
    soon as the first record is seen (result.cpu_at_first_record), so that
    start-up and steady state can be told apart."""
    counter = subprocess.Popen(
        [KAFKA_ADMIN, servers.brokers, "count", topic, "--until", str(wl.rows), "--timeout",
         str(timeout), "--progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    progress = KafkaProgress(counter.stdout)
    while counter.poll() is None:
        if proc.poll() is not None:
            counter.kill()
            counter.wait()
            result.error = f"contender exited {proc.returncode} before draining"
            return False
        if cpu_of and progress.first and result.cpu_at_first_record is None:
            result.cpu_at_first_record = cpu_of()
        time.sleep(0.02)
    progress.thread.join(5)
    err = counter.stderr.read()
    if counter.returncode != 0:
        last = progress.last[1] if progress.last else None
        result.error = f"count of {topic}: exit {counter.returncode} ({last} {err.strip()})"
        return False
    result.kafka_seconds = time.monotonic() - t0
    if progress.first and progress.last:
        result.first_record_seconds = progress.first[0] - t0
        result.first_record_count = progress.first[1]
        result.kafka_seconds = progress.last[0] - t0
    if slot is None:
        return True
    while not slot_reached(servers, slot, wl.end_lsn):
        if proc.poll() is not None:
            result.error = f"contender exited {proc.returncode} before confirming the slot"
            return False
        if time.monotonic() - t0 > timeout:
            result.error = "timeout waiting for confirmed_flush_lsn"
            return False
        time.sleep(0.02)
    return True


def stop_process(proc, timeout=60):
    """SIGTERM, then SIGKILL after `timeout` seconds. A process that leads its
    own process group (a peer's run.sh and the JVM it starts) is signalled
    with its whole group."""
    if proc.poll() is not None:
        return

    def send(signo):
        try:
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, signo)
            else:
                proc.send_signal(signo)
        except ProcessLookupError:
            pass

    send(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait()


def free_port():
    """A loopback port nothing listens on: bound to port 0, then released."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def drop_slots(servers, slots):
    for s in slots:
        servers.psql(f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                     f"WHERE slot_name = '{s}' AND NOT active")


def use_build_dir(build_dir):
    global RELAY, KAFKA_ADMIN
    RELAY = os.path.join(build_dir, "src", "app", "outbox-relay")
    KAFKA_ADMIN = os.path.join(build_dir, "tests", "harness", "kafka-admin")


def new_work_dir():
    work = tempfile.mkdtemp(prefix="outbox-bench.")
    os.chmod(work, 0o755)  # the PostgreSQL server runs as another user
    return work


def raise_on_sigterm():
    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)


def fmt(v, spec, missing="-"):
    return missing if v is None else format(v, spec)


def md_table(head, rows):
    """A markdown table with columns padded to their widest cell."""
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    lines = ["| " + " | ".join(str(h).ljust(w) for h, w in zip(head, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(x).ljust(w) for x, w in zip(row, widths)) + " |")
    return "\n".join(lines)
