-- The benchmark's backlog generator. Deterministic: the same arguments give
-- the same rows (ids, keys, headers, payload bytes) in the same transactions,
-- so every contender and every run drains an identical backlog.
--
-- Payload bytes are cut from a block of SHA-256 output, so they are
-- incompressible: neither PostgreSQL's TOAST compression nor the producer's
-- lz4 can shrink a "4 KiB payload" into something smaller, and the WAL holds
-- the bytes the workload names.
CREATE OR REPLACE PROCEDURE bench_load(total bigint, per_txn bigint, payload_size int,
                                       topic_name text)
LANGUAGE plpgsql AS $$
DECLARE
    block_size constant int := 1048576;
    block bytea;
    done bigint := 0;
    n bigint;
BEGIN
    SELECT string_agg(sha256(int8send(j)), ''::bytea ORDER BY j) INTO block
    FROM generate_series(1, (block_size + payload_size) / 32 + 1) AS j;
    WHILE done < total LOOP
        n := least(per_txn, total - done);
        INSERT INTO public.outbox (id, topic, key, headers, payload)
        SELECT md5(g::text)::uuid,
               topic_name,
               'key-' || (g % 1000),
               jsonb_build_object('type', 'BenchEvent', 'seq', g::text),
               substring(block FROM ((g * 7919) % block_size)::int + 1 FOR payload_size)
        FROM generate_series(done + 1, done + n) AS g;
        done := done + n;
        -- One transaction per batch: the walsender decodes each at its commit.
        COMMIT;
    END LOOP;
END
$$;
