#!/usr/bin/env bash
# Regenerates the pgoutput golden captures in this folder from a live server.
#
#   usage: capture.sh CONNINFO [OUTDIR]
#
# CONNINFO is a libpq connection string for a superuser on PostgreSQL 15
# (wal_level=logical, max_replication_slots >= 3, max_prepared_transactions > 0,
# the dblink extension installed). The script owns schema "capture",
# publication "capture_pub", slots "capture_*" and origin "capture_origin" and
# drops them again.
#
# Each capture comes from pg_logical_slot_peek_binary_changes(): one row per
# pgoutput message, exactly the bytes a walsender would put in one XLogData.
# Output format, one file per scenario:
#   # proto_version=N        read by the unit tests to pick the decoder version
#   # lsn=X/X xid=N          one comment per message: where the server put it
#   <hex of the message>
#
# logical_decoding_work_mem is set to its minimum (64kB) in the decoding
# session, so the bulk transactions below overflow it and pgoutput streams
# them when streaming is on.
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 CONNINFO [OUTDIR]" >&2
  exit 2
fi
conninfo=$1
out=${2:-$(cd "$(dirname "$0")" && pwd)}

run_sql() {
  psql -X -q -v ON_ERROR_STOP=1 -v conninfo="$conninfo" -d "$conninfo" "$@"
}

cleanup() {
  run_sql >/dev/null 2>&1 <<'SQL' || true
SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
 WHERE slot_name LIKE 'capture\_%';
SELECT format('ROLLBACK PREPARED %L', gid) FROM pg_prepared_xacts
 WHERE gid LIKE 'capture\_%' \gexec
SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin
 WHERE roname = 'capture_origin';
DROP PUBLICATION IF EXISTS capture_pub;
DROP SCHEMA IF EXISTS capture CASCADE;
SQL
}
trap cleanup EXIT
cleanup

# The publication exists before any slot: decoding reads the catalog as of
# each change, so a slot older than its publication fails mid-stream.
run_sql >/dev/null <<'SQL'
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE SCHEMA capture;
CREATE TYPE capture.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE capture.point2 AS (x int4, y int4);
CREATE TABLE capture.outbox (
  id             int8 PRIMARY KEY,
  aggregate_type varchar(64),
  topic          text,
  kind           int2,
  attempts       int4,
  event_id       uuid,
  payload        bytea,
  payload_json   json,
  headers        jsonb,
  created_at     timestamptz,
  note           text
);
CREATE TABLE capture.items (id int4 PRIMARY KEY, name text);
CREATE TABLE capture.accounts (id int4 PRIMARY KEY, owner text, balance int8, doc text);
ALTER TABLE capture.accounts REPLICA IDENTITY FULL;
-- EXTERNAL: toasted out of line without compression, so an UPDATE that leaves
-- it alone sends it as 'u' (unchanged TOAST) in the new tuple.
ALTER TABLE capture.accounts ALTER COLUMN doc SET STORAGE EXTERNAL;
CREATE TABLE capture.evolving (id int4 PRIMARY KEY, a text);
CREATE TABLE capture.wide (
  id      int4 PRIMARY KEY,
  gone    text,
  mood    capture.mood,
  pt      capture.point2,
  acl     aclitem,
  doubled int4 GENERATED ALWAYS AS (id * 2) STORED
);
ALTER TABLE capture.wide DROP COLUMN gone;
CREATE TABLE capture.bulk (id int4, v text);
CREATE TABLE capture.unpublished (id int4);
CREATE PUBLICATION capture_pub FOR TABLE capture.outbox, capture.items, capture.accounts,
  capture.evolving, capture.wide, capture.bulk;
SELECT pg_replication_origin_create('capture_origin');
SQL

create_slot() {  # name [two_phase]
  run_sql -c "SELECT pg_create_logical_replication_slot('$1', 'pgoutput', false, ${2:-false})" \
    >/dev/null
}

# peek SLOT FILE PROTO_VERSION DESCRIPTION [OPTION VALUE]...
peek() {
  local slot=$1 file=$2 proto=$3 description=$4
  shift 4
  local options="'proto_version', '$proto', 'publication_names', 'capture_pub', 'messages', 'true'"
  local shown="proto_version=$proto publication_names=capture_pub messages=true"
  while [[ $# -ge 2 ]]; do
    options+=", '$1', '$2'"
    shown+=" $1=$2"
    shift 2
  done
  {
    echo "# $file: $description"
    echo "# captured by capture.sh from $(run_sql -At -c 'SHOW server_version')"
    echo "# options: $shown"
    echo "# proto_version=$proto"
    # Text output depends on session settings; pin them as the relay does.
    run_sql -At -F ' ' \
      -c "SET logical_decoding_work_mem = '64kB'" \
      -c "SET datestyle = 'ISO'" -c "SET intervalstyle = 'postgres'" \
      -c "SET extra_float_digits = 3" -c "SET bytea_output = 'hex'" -c "SET timezone = 'UTC'" \
      -c "SELECT lsn, xid, encode(data, 'hex')
            FROM pg_logical_slot_peek_binary_changes('$slot', NULL, NULL, $options)" |
      awk '{ printf "# lsn=%s xid=%s\n%s\n", $1, $2, $3 }'
  } >"$out/$file.hex"
  echo "wrote $out/$file.hex ($(grep -c '^# lsn=' "$out/$file.hex") messages)"
}

drop_slot() {
  run_sql -c "SELECT pg_drop_replication_slot('$1')" >/dev/null
}

# --- outbox rows, every column type the router handles, text and binary ----
create_slot capture_text
create_slot capture_binary
run_sql >/dev/null <<'SQL'
BEGIN;
INSERT INTO capture.outbox VALUES
  (9007199254740993, 'order', 'orders.created', 7, 70000,
   'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x00ff10'::bytea, '{"a": 1}',
   '{"trace": "abc"}', '2024-05-01 12:34:56.789+00', 'first'),
  (2, 'order', 'orders.paid', -3, -1, NULL, ''::bytea, NULL, '[]',
   '1999-12-31 23:59:59+00', NULL);
COMMIT;
SQL
peek capture_text proto1_text 1 "outbox INSERTs, text mode"
peek capture_binary proto1_binary 1 "outbox INSERTs, binary mode" binary true
drop_slot capture_text
drop_slot capture_binary

# --- UPDATE/DELETE/TRUNCATE: key ('K') and full ('O') old tuples ----------
create_slot capture_dml
run_sql >/dev/null <<'SQL'
INSERT INTO capture.items VALUES (1, 'one'), (2, 'two');
INSERT INTO capture.accounts
  SELECT 1, 'alice', 100, string_agg(md5(i::text), '') FROM generate_series(1, 80) i;
UPDATE capture.items SET name = 'uno' WHERE id = 1;
UPDATE capture.items SET id = 20 WHERE id = 2;
UPDATE capture.accounts SET balance = 150 WHERE id = 1;
DELETE FROM capture.items WHERE id = 1;
DELETE FROM capture.accounts WHERE id = 1;
TRUNCATE capture.items, capture.accounts RESTART IDENTITY CASCADE;
SQL
peek capture_dml proto1_update_delete_truncate 1 \
  "UPDATE with and without key change, REPLICA IDENTITY FULL with unchanged TOAST, DELETE, TRUNCATE"
drop_slot capture_dml

# --- schema: dropped and generated columns, user types, ALTER mid-transaction
create_slot capture_schema_text
create_slot capture_schema_binary
run_sql >/dev/null <<'SQL'
INSERT INTO capture.wide (id, mood, pt, acl)
  VALUES (1, 'happy', ROW(3, -4), 'postgres=r/postgres');
BEGIN;
INSERT INTO capture.evolving VALUES (1, 'before');
ALTER TABLE capture.evolving ADD COLUMN b int4;
INSERT INTO capture.evolving VALUES (2, 'after', 42);
COMMIT;
SQL
peek capture_schema_text proto1_schema_text 1 \
  "Type messages, dropped/generated columns, ALTER TABLE ADD COLUMN mid-transaction, text mode"
peek capture_schema_binary proto1_schema_binary 1 \
  "the same in binary mode (aclitem has no send function and stays text)" binary true
drop_slot capture_schema_text
drop_slot capture_schema_binary

# --- logical decoding messages ----------------------------------------------
create_slot capture_msg
run_sql >/dev/null <<'SQL'
SELECT pg_logical_emit_message(false, 'capture', 'non-transactional');
BEGIN;
INSERT INTO capture.items VALUES (100, 'with message');
SELECT pg_logical_emit_message(true, 'capture', 'transactional');
SELECT pg_logical_emit_message(true, 'capture.bin', '\x00ff00'::bytea);
COMMIT;
BEGIN;
SELECT pg_logical_emit_message(false, 'capture', 'non-transactional in an aborted transaction');
SELECT pg_logical_emit_message(true, 'capture', 'rolled back');
ROLLBACK;
-- Neither a non-transactional message nor an abort flushes WAL, and decoding
-- stops at the flush position; a later commit that wrote WAL flushes both.
-- Its table is not published, so (PG15+) it sends nothing itself.
INSERT INTO capture.unpublished VALUES (1);
SQL
peek capture_msg proto1_messages 1 "transactional and non-transactional pg_logical_emit_message"
drop_slot capture_msg

# --- replication origin -------------------------------------------------------
create_slot capture_origin
run_sql >/dev/null <<'SQL'
SELECT pg_replication_origin_session_setup('capture_origin');
BEGIN;
SELECT pg_replication_origin_xact_setup('0/1234ABCD', '2024-05-01 12:00:00+00');
INSERT INTO capture.items VALUES (200, 'from origin');
COMMIT;
SELECT pg_replication_origin_session_reset();
SQL
# Peek before the origin is dropped: pgoutput omits Origin for a missing one.
peek capture_origin proto1_origin 1 "a transaction replayed from a replication origin"
drop_slot capture_origin

# --- streaming (proto 2): interleaving, subtransaction abort
# A streamed top-level abort (xid = subxid) is not captured: the SQL interface
# decodes after the fact, and a transaction already aborted in clog is either
# not streamed at all (the concurrent-abort check on its first catalog lookup)
# or, depending on timing, streamed without a Stream Abort. It needs a
# walsender decoding while the transaction is still open; the unit tests build
# that message from the documented layout instead.
create_slot capture_stream
run_sql >/dev/null <<'SQL'
BEGIN;
INSERT INTO capture.bulk SELECT i, 'top' FROM generate_series(1, 500) i;
SELECT dblink_exec(:'conninfo', $$INSERT INTO capture.items VALUES (300, 'interleaved')$$);
SELECT pg_logical_emit_message(true, 'capture', 'streamed');
SAVEPOINT sub;
INSERT INTO capture.bulk SELECT i, 'sub' FROM generate_series(501, 1000) i;
ROLLBACK TO SAVEPOINT sub;
INSERT INTO capture.bulk VALUES (1001, 'after rollback');
COMMIT;
SQL
peek capture_stream proto2_streaming 2 \
  "streamed transactions: interleaved commit, subtransaction abort" \
  streaming on
drop_slot capture_stream

# --- two-phase (proto 3): prepare, commit/rollback prepared, streamed prepare
create_slot capture_2pc true
run_sql >/dev/null <<'SQL'
BEGIN;
INSERT INTO capture.items VALUES (400, 'prepared then committed');
PREPARE TRANSACTION 'capture_gid_commit';
COMMIT PREPARED 'capture_gid_commit';
BEGIN;
INSERT INTO capture.items VALUES (401, 'prepared then rolled back');
PREPARE TRANSACTION 'capture_gid_rollback';
ROLLBACK PREPARED 'capture_gid_rollback';
BEGIN;
INSERT INTO capture.bulk SELECT i, 'streamed prepare' FROM generate_series(3001, 3500) i;
PREPARE TRANSACTION 'capture_gid_streamed';
COMMIT PREPARED 'capture_gid_streamed';
SQL
peek capture_2pc proto3_two_phase 3 \
  "two-phase: commit prepared, rollback prepared, streamed prepare" \
  two_phase on streaming on
drop_slot capture_2pc
