-- How an application writes an event: in the same transaction as the change
-- it describes. Deleting the row in the same transaction keeps the table
-- empty; the relay reads the insert from the WAL, so the event is still
-- delivered.
BEGIN;
-- UPDATE orders SET status = 'paid' WHERE id = 42;
INSERT INTO public.outbox (id, topic, key, headers, payload)
VALUES ('7d1e9c52-4c4a-4d0e-9a57-0b3c1f6f2a11', 'orders', '42', '{"type": "OrderPaid"}',
        convert_to('{"order_id": 42}', 'UTF8'));
DELETE FROM public.outbox WHERE id = '7d1e9c52-4c4a-4d0e-9a57-0b3c1f6f2a11';
COMMIT;
-- Alternatively keep rows for a while and delete them in batches:
--   DELETE FROM public.outbox WHERE created_at < now() - interval '1 hour';
