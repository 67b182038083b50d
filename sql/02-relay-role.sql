-- A least-privilege role for the relay: it may stream changes (REPLICATION)
-- and read the outbox, nothing else. Run as a superuser or the table owner.
-- Set the password out of band, e.g.  \password outbox_relay  in psql.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'outbox_relay') THEN
        CREATE ROLE outbox_relay WITH LOGIN REPLICATION;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO outbox_relay;
GRANT SELECT ON public.outbox TO outbox_relay;
DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO outbox_relay', current_database());
END
$$;
