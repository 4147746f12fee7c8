-- Named queries of the PostgreSQL adapter. Every one takes arrays, so that a batch is a
-- handful of round trips whatever its size.

-- name: lock_keys
-- Transaction-level locks on the batch's orders and event ids, taken in a fixed order so that
-- two workers never deadlock on them; released at commit or rollback.
SELECT count(pg_advisory_xact_lock(k))
FROM (SELECT DISTINCT hashtextextended(key, 0) AS k FROM unnest($1::text[]) AS key ORDER BY k) AS keys;

-- name: recorded_event_ids
SELECT event_id FROM order_events WHERE event_id = ANY($1::uuid[]);

-- name: load_orders
SELECT order_id, status, placed_digest, currency, total_amount,
       payment_id, paid_amount, paid_currency, carrier, tracking_number, cancel_reason
FROM orders
WHERE order_id = ANY($1::uuid[]);

-- name: write_batch
-- Every write of a batch in one statement (one round trip): new orders in their final state,
-- their lines, the changed orders, and the events recorded. New and changed orders are
-- disjoint; the lines' foreign key is checked at the end of the statement, after the orders.
WITH new_orders AS (
    INSERT INTO orders (order_id, customer_id, status, currency, total_amount, placed_at,
                        updated_at, placed_event_id, placed_digest, payment_id, paid_amount,
                        paid_currency, carrier, tracking_number, cancel_reason)
    SELECT o.order_id, o.customer_id, o.status, o.currency, o.total_amount, o.placed_at, now(),
           o.placed_event_id, o.placed_digest, o.payment_id, o.paid_amount, o.paid_currency,
           o.carrier, o.tracking_number, o.cancel_reason
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::numeric[],
                $6::timestamptz[], $7::uuid[], $8::text[], $9::text[], $10::numeric[],
                $11::text[], $12::text[], $13::text[], $14::text[])
         AS o(order_id, customer_id, status, currency, total_amount, placed_at,
              placed_event_id, placed_digest, payment_id, paid_amount, paid_currency, carrier,
              tracking_number, cancel_reason)
), new_items AS (
    INSERT INTO order_items (order_id, line_no, sku, quantity, unit_price)
    SELECT * FROM unnest($15::uuid[], $16::int[], $17::text[], $18::int[], $19::numeric[])
), changed_orders AS (
    UPDATE orders AS o
    SET status = u.status, payment_id = u.payment_id, paid_amount = u.paid_amount,
        paid_currency = u.paid_currency, carrier = u.carrier,
        tracking_number = u.tracking_number, cancel_reason = u.cancel_reason, updated_at = now()
    FROM unnest($20::uuid[], $21::text[], $22::text[], $23::numeric[], $24::text[],
                $25::text[], $26::text[], $27::text[])
         AS u(order_id, status, payment_id, paid_amount, paid_currency, carrier,
              tracking_number, cancel_reason)
    WHERE o.order_id = u.order_id
)
INSERT INTO order_events (event_id, order_id, event_type, outcome, reason, occurred_at)
SELECT * FROM unnest($28::uuid[], $29::uuid[], $30::text[], $31::text[], $32::text[],
                     $33::timestamptz[]);

-- name: quarantine
INSERT INTO quarantined_messages (message_id, body, reason) VALUES ($1, $2, $3);

-- name: orders_by_status
SELECT status AS key, count(*) AS n FROM orders GROUP BY status ORDER BY status;

-- name: events_by_outcome
SELECT outcome AS key, count(*) AS n FROM order_events GROUP BY outcome ORDER BY outcome;
