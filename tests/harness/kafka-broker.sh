#!/usr/bin/env bash
# A throwaway single-node Kafka (KRaft, broker and controller in one JVM) for
# tests, from the jars scripts/install-deps.sh caches.
#
#   kafka-broker.sh start DIR        format + start; prints <address>:<port>
#   kafka-broker.sh stop DIR         SIGTERM, then SIGKILL after KAFKA_STOP_TIMEOUT (30 s)
#   kafka-broker.sh start-again DIR  after stop or kill: same ports, same data
#   kafka-broker.sh kill DIR         SIGKILL
#   kafka-broker.sh freeze DIR       SIGSTOP (the broker hangs, sockets stay open)
#   kafka-broker.sh thaw DIR         SIGCONT
#   kafka-broker.sh destroy DIR      SIGKILL and remove DIR
#   kafka-broker.sh acl DIR ARGS...  kafka-acls ARGS... through the PLAINTEXT
#                                    listener (e.g. --add --allow-principal
#                                    User:relay --operation Write --topic t)
#   kafka-broker.sh configs DIR ARGS...  kafka-configs ARGS... the same way
#                                    (e.g. --alter --entity-type topics
#                                    --entity-name t --add-config k=v)
#
# KAFKA_LISTEN_ADDRESS: the IPv4 address the client listeners bind and
#   advertise (default 127.0.0.1), e.g. a network namespace's own address so
#   that clients in other namespaces can follow the metadata; the controller
#   stays on 127.0.0.1.
# KAFKA_EXTRA_PROPS: lines appended to server.properties (later keys win).
# KAFKA_SECURE_PROTOCOL: SSL, SASL_SSL or SASL_PLAINTEXT adds a listener named
#   SECURE with that security protocol on a third port (DIR/secure.bootstrap);
#   its TLS and SASL settings come from KAFKA_EXTRA_PROPS, per listener as
#   listener.name.secure.*. Inter-broker and controller traffic stays PLAINTEXT.
# KAFKA_FORMAT_ARGS: extra arguments of the storage format step, one per line
#   (e.g. a line --add-scram, then a line SCRAM-SHA-512=[name=u,password=p]).
# OUTBOX_KAFKA_LIBS: the jar directory, default
#   ${OUTBOX_CACHE:-$HOME/.cache/outbox-relay}/kafka-3.9.1/libs.
# HARNESS_OWNER_PID: destroy the broker once this process is gone, so a test
# binary killed by a timeout leaves no JVM behind.
#
# Layout: DIR/server.properties, DIR/log4j.properties, DIR/server.log,
# DIR/data (log.dirs), DIR/pid, DIR/address, DIR/port, DIR/controller.port, DIR/bootstrap,
# DIR/secure.port and DIR/secure.bootstrap with KAFKA_SECURE_PROTOCOL.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
# shellcheck source=tests/harness/lib.sh
. "$HERE/lib.sh"
LIBS="${OUTBOX_KAFKA_LIBS:-${OUTBOX_CACHE:-$HOME/.cache/outbox-relay}/kafka-3.9.1/libs}"
READY_TIMEOUT="${KAFKA_READY_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
START_ATTEMPTS=3

die() {
  echo "kafka-broker.sh: $*" >&2
  exit 1
}

usage() {
  sed -n '2,15p' "$SELF" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

java_opts() {
  echo "-Xmx512m -Xms128m -XX:+UseG1GC -XX:MaxGCPauseMillis=20"
  echo "-XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent"
  echo "-Djava.awt.headless=true -Dkafka.logs.dir=$DIR/logs"
  echo "-Dlog4j.configuration=file:$DIR/log4j.properties"
}

pid_of() { cat "$DIR/pid" 2>/dev/null || true; }

# A process reparented to an init that does not reap stays a zombie: it
# answers kill -0 but is gone for every purpose here.
alive() {
  local pid="$1" state
  [[ -n $pid ]] || return 1
  state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

log_tail() {
  echo "--- $DIR/server.log (last 40 lines)" >&2
  tail -n 40 "$DIR/server.log" >&2 2>/dev/null || true
  if [[ -s "$DIR/stdout.log" ]]; then
    echo "--- $DIR/stdout.log (last 20 lines)" >&2
    tail -n 20 "$DIR/stdout.log" >&2
  fi
}

write_config() {
  local port="$1" cport="$2" sport="${3:-}" addr="${KAFKA_LISTEN_ADDRESS:-127.0.0.1}"
  local listeners="PLAINTEXT://$addr:$port,CONTROLLER://127.0.0.1:$cport"
  local advertised="PLAINTEXT://$addr:$port"
  local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [[ -n $sport ]]; then
    listeners+=",SECURE://$addr:$sport"
    advertised+=",SECURE://$addr:$sport"
    protocols+=",SECURE:$KAFKA_SECURE_PROTOCOL"
  fi
  cat >"$DIR/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
log.dirs=$DIR/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
# One broker: the default 50 partitions of each internal topic only slow the
# first consumer group or transaction down.
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
# After a SIGKILL the restarted controller refuses the broker's registration
# until the previous incarnation's session expires (9 s by default): keep
# kill-and-restart scenarios short.
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
message.max.bytes=1048588
EOF
  if [[ -n ${KAFKA_EXTRA_PROPS:-} ]]; then
    printf '%s\n' "# KAFKA_EXTRA_PROPS" "$KAFKA_EXTRA_PROPS" >>"$DIR/server.properties"
  fi
  cat >"$DIR/log4j.properties" <<EOF
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$DIR/server.log
log4j.appender.file.Append=true
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
# The readiness line "Kafka Server started" is logged at INFO by this class.
log4j.logger.kafka.server.KafkaRaftServer=INFO
EOF
  echo "$addr" >"$DIR/address"
  echo "$port" >"$DIR/port"
  echo "$cport" >"$DIR/controller.port"
  echo "$addr:$port" >"$DIR/bootstrap"
  if [[ -n $sport ]]; then
    echo "$sport" >"$DIR/secure.port"
    echo "$addr:$sport" >"$DIR/secure.bootstrap"
  fi
}

format_storage() {
  rm -rf "$DIR/data"
  # A cluster id is 16 random bytes in URL-safe base64 without padding. One
  # that starts with '-' would be read as an option, so draw again (as
  # Kafka's own Uuid.randomUuid does).
  local cluster_id extra=()
  cluster_id="-"
  while [[ $cluster_id == -* ]]; do
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  done
  local line
  while IFS= read -r line; do
    if [[ -n $line ]]; then extra+=("$line"); fi
  done <<<"${KAFKA_FORMAT_ARGS:-}"
  # shellcheck disable=SC2046
  java $(java_opts) -cp "$LIBS/*" kafka.tools.StorageTool format -t "$cluster_id" \
    -c "$DIR/server.properties" "${extra[@]}" >"$DIR/format.log" 2>&1 || {
    cat "$DIR/format.log" >&2
    die "formatting storage failed"
  }
}

launch() {
  # setsid: a terminal's Ctrl-C or a test runner's process-group signal must
  # not reach the broker behind the harness's back; stop/kill/destroy and the
  # owner watchdog are the ways it ends. All descriptors are redirected so the
  # caller reading our stdout sees EOF when this script exits.
  # shellcheck disable=SC2046
  (exec setsid java $(java_opts) -cp "$LIBS/*" kafka.Kafka "$DIR/server.properties" \
    </dev/null >>"$DIR/stdout.log" 2>&1) &
  echo $! >"$DIR/pid"
}

port_open() { (exec 3<>"/dev/tcp/$(cat "$DIR/address")/$1") 2>/dev/null; }

# Ready when the broker logs that it started (after this launch: the log is
# appended across restarts, so only bytes past `from` count) and its port
# accepts connections.
wait_ready() {
  local from="$1" pid deadline=$((SECONDS + READY_TIMEOUT))
  pid="$(pid_of)"
  while ((SECONDS < deadline)); do
    if ! alive "$pid"; then
      return 1
    fi
    if tail -c +"$((from + 1))" "$DIR/server.log" 2>/dev/null | grep -q "Kafka Server started" &&
      port_open "$(cat "$DIR/port")"; then
      return 0
    fi
    sleep 0.2
  done
  echo "kafka-broker.sh: not ready after ${READY_TIMEOUT}s" >&2
  return 1
}

log_size() { stat -c %s "$DIR/server.log" 2>/dev/null || echo 0; }

bind_failed() {
  grep -qE 'BindException|Address already in use' "$DIR/server.log" "$DIR/stdout.log" \
    2>/dev/null
}

cmd_start() {
  command -v java >/dev/null || die "java not on PATH"
  compgen -G "$LIBS/kafka_2.13-*.jar" >/dev/null ||
    die "no Kafka jars in $LIBS; run scripts/install-deps.sh"
  [[ -e "$DIR/server.properties" ]] && die "$DIR is in use; use start-again or destroy"
  mkdir -p "$DIR/logs"
  DIR="$(cd "$DIR" && pwd -P)"

  # Ports are free when picked but may be taken before the JVM binds them;
  # only a bind failure is worth other ports.
  case "${KAFKA_SECURE_PROTOCOL:-}" in
    "" | SSL | SASL_SSL | SASL_PLAINTEXT) ;;
    *) die "KAFKA_SECURE_PROTOCOL must be SSL, SASL_SSL or SASL_PLAINTEXT" ;;
  esac
  local attempt port cport sport=""
  for attempt in $(seq 1 "$START_ATTEMPTS"); do
    port="$(free_port)"
    cport="$(free_port)"
    while [[ $cport == "$port" ]]; do cport="$(free_port)"; done
    if [[ -n ${KAFKA_SECURE_PROTOCOL:-} ]]; then
      sport="$(free_port)"
      while [[ $sport == "$port" || $sport == "$cport" ]]; do sport="$(free_port)"; done
    fi
    write_config "$port" "$cport" "$sport"
    format_storage
    rm -f "$DIR/server.log" "$DIR/stdout.log"
    launch
    if wait_ready 0; then
      start_watchdog kill
      cat "$DIR/bootstrap"
      return 0
    fi
    kill_now
    bind_failed || break
    echo "kafka-broker.sh: ports $port/$cport taken, retrying ($attempt/$START_ATTEMPTS)" >&2
  done
  log_tail
  die "start failed in $DIR"
}

wait_gone() {
  local pid="$1" deadline=$((SECONDS + $2))
  while alive "$pid"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

kill_now() {
  local pid
  pid="$(pid_of)"
  alive "$pid" || return 0
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" 10 || die "pid $pid survived SIGKILL"
}

cmd_stop() {
  local pid
  pid="$(pid_of)"
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  # A frozen broker cannot act on SIGTERM until it runs again.
  kill -CONT "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" "$STOP_TIMEOUT"; then
    echo "kafka-broker.sh: no exit ${STOP_TIMEOUT}s after SIGTERM, sending SIGKILL" >&2
    kill_now
  fi
}

cmd_start_again() {
  [[ -f "$DIR/server.properties" ]] || die "$DIR was never started"
  alive "$(pid_of)" && die "already running (pid $(pid_of))"
  local from
  from="$(log_size)"
  launch
  if ! wait_ready "$from"; then
    kill_now
    log_tail
    die "start-again failed in $DIR"
  fi
  cat "$DIR/bootstrap"
}

signal_broker() {
  local pid
  pid="$(pid_of)"
  alive "$pid" || die "not running"
  kill "-$1" "$pid"
}

cmd_destroy() {
  [[ -d $DIR ]] || return 0
  # The data goes away with DIR, so a clean shutdown buys nothing.
  kill_now || true
  local watchdog
  watchdog="$(cat "$DIR/watchdog.pid" 2>/dev/null || true)"
  rm -rf "$DIR"
  if [[ -n $watchdog && $watchdog != "$$" && $watchdog != "$PPID" ]]; then
    kill "$watchdog" 2>/dev/null || true
  fi
}

# Kafka's own ACL tool (kafka.admin.AclCommand, in the broker's jars): the
# relay's principal is granted what a test means it to have, as an operator
# would with kafka-acls. The PLAINTEXT listener's principal is the broker's
# super user when an authorizer is configured.
# tool NAME CLASS ARGS...: one of Kafka's own command-line tools, in a
# short-lived JVM (the C1 compiler alone starts it fastest).
run_tool() {
  local name="$1" class="$2"
  shift 2
  [[ -f "$DIR/bootstrap" ]] || die "$DIR was never started"
  java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -cp "$LIBS/*" "$class" \
    --bootstrap-server "$(cat "$DIR/bootstrap")" "$@" >"$DIR/$name.log" 2>&1 || {
    cat "$DIR/$name.log" >&2
    die "$name $* failed"
  }
}
cmd_acl() { run_tool kafka-acls kafka.admin.AclCommand "$@"; }
# Kafka's config tool (kafka.admin.ConfigCommand): a topic's settings
# changed on a running broker, as an operator would with kafka-configs.
cmd_configs() { run_tool kafka-configs kafka.admin.ConfigCommand "$@"; }

[[ $# -ge 2 ]] || usage
command="$1"
DIR="$2"
shift 2
[[ $# -eq 0 || $command == acl || $command == configs ]] || usage
if [[ $command != start && -d $DIR ]]; then DIR="$(cd "$DIR" && pwd -P)"; fi
case "$command" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  start-again) cmd_start_again ;;
  kill) kill_now ;;
  freeze) signal_broker STOP ;;
  thaw) signal_broker CONT ;;
  destroy) cmd_destroy ;;
  acl) cmd_acl "$@" ;;
  configs) cmd_configs "$@" ;;
  *) usage ;;
esac
