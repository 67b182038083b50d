#!/usr/bin/env bash
# Runs outbox-relay end to end on throwaway local servers: a PostgreSQL with
# the outbox schema, a single-node Kafka broker, the relay between them; then
# inserts a few events and reads them back from Kafka with a real consumer.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HARNESS="$ROOT/tests/harness"
ROWS="${DEMO_ROWS:-10}"

# Only what the demo uses, not the test tools (scripts/install-deps.sh
# --demo). Maven fetches the Kafka jars while the relay compiles: one waits
# on the network, the other on the CPU.
JARS_PID=""
JARS_LOG="$(mktemp /tmp/outbox-relay-demo-jars.XXXXXX)"
trap '[[ -n $JARS_PID ]] && kill "$JARS_PID" 2>/dev/null; rm -f "$JARS_LOG"' EXIT
if [[ "${SKIP_INSTALL:-0}" != 1 ]]; then
  "$ROOT/scripts/install-deps.sh" --demo --only debian
  "$ROOT/scripts/install-deps.sh" --demo --only kafka >"$JARS_LOG" 2>&1 &
  JARS_PID=$!
fi
cmake -S "$ROOT" -B "$ROOT/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$ROOT/build" --target outbox-relay kafka-admin
if [[ -n $JARS_PID ]]; then
  wait "$JARS_PID" || { cat "$JARS_LOG" >&2; exit 1; }
  cat "$JARS_LOG" >&2
  JARS_PID=""
fi
rm -f "$JARS_LOG"

WORK="$(mktemp -d /tmp/outbox-relay-demo.XXXXXX)"
# The servers may run as another user (PostgreSQL refuses root).
chmod 755 "$WORK"
RELAY_PID=""
cleanup() {
  [[ -n "$RELAY_PID" ]] && kill "$RELAY_PID" 2>/dev/null && wait "$RELAY_PID" 2>/dev/null || true
  "$HARNESS/kafka-broker.sh" destroy "$WORK/kafka" >/dev/null 2>&1 || true
  "$HARNESS/pg-server.sh" destroy "$WORK/pg" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== starting PostgreSQL and Kafka in $WORK"
PG_PORT="$("$HARNESS/pg-server.sh" start "$WORK/pg")"
BROKERS="$("$HARNESS/kafka-broker.sh" start "$WORK/kafka")"
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres)
echo "   postgres on 127.0.0.1:$PG_PORT, kafka on $BROKERS"

echo "== applying sql/ (outbox table, publication, relay role)"
for f in "$ROOT"/sql/0[12]-*.sql; do "${PSQL[@]}" -f "$f"; done

cat >"$WORK/relay.yaml" <<YAML
postgres:
  dsn: "host=127.0.0.1 port=$PG_PORT dbname=postgres user=outbox_relay"
  slot: demo_slot
  publication: outbox_pub
  create_publication: false
kafka:
  brokers: "$BROKERS"
  create_topics: true
outbox:
  table: public.outbox
http:
  listen: "127.0.0.1:0"
YAML

"$ROOT/build/src/app/outbox-relay" check-config "$WORK/relay.yaml" >/dev/null
echo "== creating topic demo.orders (3 partitions)"
"$ROOT/build/tests/harness/kafka-admin" "$BROKERS" create-topic demo.orders 3

echo "== starting outbox-relay"
"$ROOT/build/src/app/outbox-relay" run --config "$WORK/relay.yaml" >"$WORK/relay.log" 2>&1 &
RELAY_PID=$!
for _ in $(seq 1 100); do
  grep -q "streaming from" "$WORK/relay.log" && break
  kill -0 "$RELAY_PID" 2>/dev/null || { cat "$WORK/relay.log"; exit 1; }
  sleep 0.1
done
grep -q "streaming from" "$WORK/relay.log" || { cat "$WORK/relay.log"; exit 1; }

echo "== inserting $ROWS events (each deleted in the same transaction)"
for i in $(seq 1 "$ROWS"); do
  "${PSQL[@]}" >/dev/null <<SQL
BEGIN;
WITH e AS (
  INSERT INTO public.outbox (topic, key, headers, payload)
  VALUES ('demo.orders', 'order-$((i % 3))', '{"type": "OrderPlaced", "seq": "$i"}',
          convert_to('{"order": $i}', 'UTF8'))
  RETURNING id)
SELECT 1 FROM e;
DELETE FROM public.outbox;
COMMIT;
SQL
done

echo "== reading back from Kafka (isolation.level=read_committed)"
OUT="$WORK/consumed.txt"
for _ in $(seq 1 100); do
  kcat -C -b "$BROKERS" -X isolation.level=read_committed -t demo.orders -o beginning -e -q \
    -f 'partition=%p offset=%o key=%k headers=%h value=%s\n' >"$OUT" 2>/dev/null || true
  [[ "$(wc -l <"$OUT")" -ge "$ROWS" ]] && break
  sleep 0.2
done
cat "$OUT"
GOT="$(wc -l <"$OUT")"
echo "== $GOT of $ROWS events arrived"
CONFIRMED="$("${PSQL[@]}" -At -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'demo_slot'")"
echo "== slot demo_slot confirmed_flush_lsn = $CONFIRMED"
kill -TERM "$RELAY_PID"
wait "$RELAY_PID" && echo "== relay stopped cleanly (exit 0)"
RELAY_PID=""
[[ "$GOT" -ge "$ROWS" ]]
