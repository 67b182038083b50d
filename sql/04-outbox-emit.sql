-- outbox.emit(): an event without a table. Idempotent: safe to apply again.
--
-- Writes the event into the WAL as a transactional logical decoding message
-- (pg_logical_emit_message) with the prefix 'outbox'. It commits or rolls
-- back with the transaction that called it, is decoded in commit order among
-- that transaction's rows, and leaves nothing behind: no heap tuple, no index
-- entry, nothing to delete or vacuum. The relay publishes it when
-- outbox.source is messages or both (docs/messages.md). Needs PostgreSQL 14
-- or later on the relay's side (pgoutput's messages option).
--
--   BEGIN;
--   UPDATE orders SET status = 'paid' WHERE id = 42;
--   SELECT outbox.emit('orders', '42', '{"order_id": 42}'::jsonb, '{"type": "OrderPaid"}');
--   COMMIT;
--
-- emit() returns the message's LSN, which is the record's outbox-id unless
-- `id` names one.
CREATE SCHEMA IF NOT EXISTS outbox;

-- One field of the envelope: Int32 length and the bytes, or -1 for NULL.
CREATE OR REPLACE FUNCTION outbox.envelope_field(value bytea)
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN value IS NULL THEN int4send(-1) ELSE int4send(length(value)) || value END
$$;

-- The envelope, version 1 (docs/messages.md): version byte, topic, key,
-- partition (-1: from the key), id, headers as JSON text, payload.
-- STABLE, as convert_to() is: the planner inlines a SQL function only when
-- its body is no more volatile than it says, and one it does not inline is
-- planned again in every transaction (measured: emit() twice as slow).
CREATE OR REPLACE FUNCTION outbox.envelope(topic text, key text, payload bytea,
                                           headers jsonb DEFAULT NULL,
                                           "partition" integer DEFAULT NULL,
                                           id text DEFAULT NULL)
RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT '\x01'::bytea
        || outbox.envelope_field(convert_to(topic, 'UTF8'))
        || outbox.envelope_field(convert_to(key, 'UTF8'))
        || int4send(coalesce("partition", -1))
        || outbox.envelope_field(convert_to(id, 'UTF8'))
        || outbox.envelope_field(convert_to(headers::text, 'UTF8'))
        || outbox.envelope_field(payload)
$$;

-- topic and payload are required, as the outbox table's NOT NULL columns
-- are: refused here, in the application's transaction, rather than
-- dead-lettered later. Headers are an object or a [{"key": …, "value": …}]
-- array (jsonb orders an object's keys; use the array to keep an order).
-- partition NULL: chosen from the key, as Kafka's Java client would.
CREATE OR REPLACE FUNCTION outbox.emit(topic text, key text, payload bytea,
                                       headers jsonb DEFAULT NULL,
                                       "partition" integer DEFAULT NULL,
                                       id text DEFAULT NULL,
                                       prefix text DEFAULT 'outbox')
RETURNS pg_lsn
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    IF topic IS NULL OR payload IS NULL THEN
        RAISE EXCEPTION 'outbox.emit: % must not be null',
            CASE WHEN topic IS NULL THEN 'topic' ELSE 'payload' END
            USING ERRCODE = 'not_null_violation';
    END IF;
    RETURN pg_logical_emit_message(true, prefix,
                                   outbox.envelope(topic, key, payload, headers, "partition", id));
END
$$;

-- A JSON payload is carried as its text.
CREATE OR REPLACE FUNCTION outbox.emit(topic text, key text, payload jsonb,
                                       headers jsonb DEFAULT NULL,
                                       "partition" integer DEFAULT NULL,
                                       id text DEFAULT NULL,
                                       prefix text DEFAULT 'outbox')
RETURNS pg_lsn
LANGUAGE sql VOLATILE
AS $$
    SELECT outbox.emit(topic, key, convert_to(payload::text, 'UTF8'), headers, "partition", id,
                       prefix)
$$;

-- A text payload (also an untyped literal: emit('orders', '42', 'hello'))
-- is carried as its UTF-8 bytes.
CREATE OR REPLACE FUNCTION outbox.emit(topic text, key text, payload text,
                                       headers jsonb DEFAULT NULL,
                                       "partition" integer DEFAULT NULL,
                                       id text DEFAULT NULL,
                                       prefix text DEFAULT 'outbox')
RETURNS pg_lsn
LANGUAGE sql VOLATILE
AS $$
    SELECT outbox.emit(topic, key, convert_to(payload, 'UTF8'), headers, "partition", id, prefix)
$$;
