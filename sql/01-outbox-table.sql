-- The outbox table outbox-relay reads. Idempotent: safe to apply again.
--
-- Applications insert a row in the same transaction as their business change.
-- The relay reads the insert from the WAL (logical replication), not from the
-- table, so the row may be deleted right away, even in the same transaction:
-- the table stays empty and never needs vacuuming of a backlog.
CREATE TABLE IF NOT EXISTS public.outbox (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    topic       text        NOT NULL,
    key         text,
    partition   int,
    headers     jsonb,
    payload     bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A partitioned outbox (PARTITION BY RANGE (created_at), say, to drop old
-- events by partition) needs publish_via_partition_root = true in the
-- publication below, so that rows arrive under the outbox's own name and OID
-- rather than each partition's; the relay refuses a publication without it.
-- The primary key must then include the partition key: PRIMARY KEY (id,
-- created_at).
--
-- Publishes inserts only. With UPDATE or DELETE published, a table without a
-- replica identity makes the application's cleanup DELETEs fail on the
-- primary. The publication must exist before the relay's slot: decoding reads
-- the catalog as of each change, so a publication created after the slot is
-- "not found" for changes before it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'outbox_pub') THEN
        CREATE PUBLICATION outbox_pub FOR TABLE public.outbox WITH (publish = 'insert');
    END IF;
END
$$;
