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
-- `behind`: changed by a build without the outbox, not caught up yet (migration 0007).
SELECT order_id, status, placed_digest, currency, total_amount,
       payment_id, paid_amount, paid_currency, carrier, tracking_number, cancel_reason,
       last_sequence,
       EXISTS (SELECT 1 FROM order_status_backlog AS b WHERE b.order_id = orders.order_id)
           AS behind
FROM orders
WHERE order_id = ANY($1::uuid[]);

-- name: write_batch
-- Every write of a batch in one statement (one round trip): new orders in their final state,
-- their lines, the changed orders, the events recorded, and one outbox row per applied event
-- (none when no relay or CDC reader consumes the outbox: its arrays are empty). New and changed
-- orders are disjoint; the lines' foreign key is checked at the end of the statement, after the orders.
-- Parameters are named :group.column, each an array holding one column of the group's rows;
-- the adapter passes them by those names (a test checks that each names the column it fills).
WITH new_orders AS (
    INSERT INTO orders (order_id, customer_id, status, currency, total_amount, placed_at,
                        placed_event_id, placed_digest, payment_id, paid_amount,
                        paid_currency, carrier, tracking_number, cancel_reason, last_sequence,
                        updated_at)
    SELECT *, now() FROM unnest(
        :new_orders.order_id::uuid[], :new_orders.customer_id::text[],
        :new_orders.status::text[], :new_orders.currency::text[],
        :new_orders.total_amount::numeric[], :new_orders.placed_at::timestamptz[],
        :new_orders.placed_event_id::uuid[], :new_orders.placed_digest::text[],
        :new_orders.payment_id::text[], :new_orders.paid_amount::numeric[],
        :new_orders.paid_currency::text[], :new_orders.carrier::text[],
        :new_orders.tracking_number::text[], :new_orders.cancel_reason::text[],
        :new_orders.last_sequence::int[])
), new_items AS (
    INSERT INTO order_items (order_id, line_no, sku, quantity, unit_price)
    SELECT * FROM unnest(
        :new_items.order_id::uuid[], :new_items.line_no::int[], :new_items.sku::text[],
        :new_items.quantity::int[], :new_items.unit_price::numeric[])
), changed_orders AS (
    UPDATE orders AS o
    SET status = u.status, payment_id = u.payment_id, paid_amount = u.paid_amount,
        paid_currency = u.paid_currency, carrier = u.carrier,
        tracking_number = u.tracking_number, cancel_reason = u.cancel_reason,
        last_sequence = u.last_sequence, updated_at = now()
    FROM unnest(
        :changed_orders.order_id::uuid[], :changed_orders.status::text[],
        :changed_orders.payment_id::text[], :changed_orders.paid_amount::numeric[],
        :changed_orders.paid_currency::text[], :changed_orders.carrier::text[],
        :changed_orders.tracking_number::text[], :changed_orders.cancel_reason::text[],
        :changed_orders.last_sequence::int[])
         AS u(order_id, status, payment_id, paid_amount, paid_currency, carrier,
              tracking_number, cancel_reason, last_sequence)
    WHERE o.order_id = u.order_id
), outbox AS (
    INSERT INTO order_outbox (id, aggregateid, type, sequence, payload, traceparent)
    SELECT * FROM unnest(
        :outbox.id::uuid[], :outbox.aggregateid::uuid[], :outbox.type::text[],
        :outbox.sequence::int[], :outbox.payload::jsonb[], :outbox.traceparent::text[])
)
INSERT INTO order_events (event_id, order_id, event_type, outcome, reason, occurred_at)
SELECT * FROM unnest(
    :events.event_id::uuid[], :events.order_id::uuid[], :events.event_type::text[],
    :events.outcome::text[], :events.reason::text[], :events.occurred_at::timestamptz[]);

-- name: quarantine
INSERT INTO quarantined_messages (message_id, body, reason) VALUES ($1, $2, $3);

-- name: orders_by_status
SELECT status AS key, count(*) AS n FROM orders GROUP BY status ORDER BY status;

-- name: events_by_outcome
SELECT outcome AS key, count(*) AS n FROM order_events GROUP BY outcome ORDER BY outcome;

-- name: outbox_claim
-- The relay's claim: whole orders, oldest unpublished row first, each under a transaction-
-- level advisory lock that is tried, never waited for (another relay holds it: skip the
-- order). An order with a parked row is not claimed: its later rows wait behind it. The scan
-- is bounded ($2 rows, parked orders' rows not counted) and the filter is evaluated lazily
-- under LIMIT ($1 orders), so a relay locks only the orders it returns. Released at commit
-- or rollback.
WITH candidates AS MATERIALIZED (
    SELECT aggregateid, min(created_at) AS oldest
    FROM (SELECT o.aggregateid, o.created_at FROM order_outbox AS o
          WHERE o.published_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM order_outbox AS p
                            WHERE p.aggregateid = o.aggregateid AND p.published_at IS NULL
                              AND p.parked_at IS NOT NULL)
          ORDER BY o.created_at LIMIT $2) AS waiting
    GROUP BY aggregateid
    ORDER BY oldest
)
SELECT aggregateid FROM candidates
WHERE pg_try_advisory_xact_lock(hashtextextended('outbox:' || aggregateid::text, 0))
LIMIT $1;

-- name: outbox_rows_of
-- Read after the locks are held (a statement of its own, so its snapshot sees what the
-- previous holder marked).
SELECT o.id, o.aggregateid, o.type, o.sequence, o.payload::text AS payload, o.created_at,
       o.traceparent, orders.customer_id
FROM order_outbox o LEFT JOIN orders ON orders.order_id = o.aggregateid
WHERE o.aggregateid = ANY($1::uuid[]) AND o.published_at IS NULL
ORDER BY o.aggregateid, o.sequence;

-- name: outbox_mark_published
-- Kept for the retention (OUTBOX_RETENTION_HOURS > 0). Never a HOT update (published_at is in
-- both partial indexes): a new row version and index entries, deleted and vacuumed later.
UPDATE order_outbox SET published_at = clock_timestamp()
WHERE id = ANY($1::uuid[]) AND published_at IS NULL;

-- name: outbox_delete_published_now
-- No retention (OUTBOX_RETENTION_HOURS = 0, the default): the row's life ends at publication,
-- one dead version for VACUUM instead of the mark's new version, the retention's delete and
-- two to vacuum (docs/capacity.md: the outbox's cost to the writer).
DELETE FROM order_outbox WHERE id = ANY($1::uuid[]) AND published_at IS NULL;

-- name: outbox_park
-- Rows SNS refused for good ($1 ids, $2 SNS's reasons): kept, unpublished, out of the claims.
UPDATE order_outbox AS o SET parked_at = clock_timestamp(), park_reason = r.reason
FROM unnest($1::uuid[], $2::text[]) AS r(id, reason)
WHERE o.id = r.id AND o.published_at IS NULL;

-- name: outbox_retry_parked
-- An operator's retry: the rows ($1 ids; all when null) go back to the relay.
UPDATE order_outbox SET parked_at = NULL, park_reason = NULL
WHERE published_at IS NULL AND parked_at IS NOT NULL AND ($1::uuid[] IS NULL OR id = ANY($1));

-- name: outbox_gauges
-- The relay's lag (the oldest row it can publish: not parked, nor behind a parked row) and
-- the parked rows. Both read the unpublished rows only (their partial index): a few.
WITH parked AS (
    SELECT aggregateid FROM order_outbox WHERE published_at IS NULL AND parked_at IS NOT NULL
)
SELECT coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0)::float8
           AS oldest_unpublished_seconds,
       (SELECT count(*) FROM parked) AS parked
FROM order_outbox
WHERE published_at IS NULL AND aggregateid NOT IN (SELECT aggregateid FROM parked);

-- name: outbox_delete_published
-- Retention, in small batches; an unpublished row is never deleted. SKIP LOCKED is right
-- here (order does not matter): two relays deleting at once never wait for each other.
DELETE FROM order_outbox WHERE id IN (
    SELECT id FROM order_outbox
    WHERE published_at < clock_timestamp() - make_interval(secs => $1)
    ORDER BY published_at LIMIT $2 FOR UPDATE SKIP LOCKED);

-- name: outbox_status
WITH held AS (
    SELECT DISTINCT aggregateid FROM order_outbox
    WHERE published_at IS NULL AND parked_at IS NOT NULL
), rows AS (
    SELECT o.*, h.aggregateid IS NOT NULL AS held
    FROM order_outbox AS o LEFT JOIN held AS h USING (aggregateid)
)
SELECT count(*) FILTER (WHERE published_at IS NULL AND NOT held) AS unpublished,
       coalesce(extract(epoch FROM clock_timestamp()
                - min(created_at) FILTER (WHERE published_at IS NULL AND NOT held)), 0)::float8
           AS oldest_unpublished_seconds,
       count(*) FILTER (WHERE parked_at IS NOT NULL) AS parked,
       count(*) FILTER (WHERE published_at IS NULL AND held AND parked_at IS NULL)
           AS waiting_behind_parked,
       count(*) FILTER (WHERE published_at IS NOT NULL) AS published_retained,
       max(published_at) AS last_published_at
FROM rows;

-- name: outbox_parked_rows
SELECT id, aggregateid, sequence, type, parked_at, park_reason
FROM order_outbox WHERE published_at IS NULL AND parked_at IS NOT NULL
ORDER BY parked_at LIMIT $1;

-- name: catch_up_claim
-- Orders a build without the outbox changed (migration 0007's backlog), oldest noted first,
-- each under the writers' own lock of the order (lock_keys' 'o:' key), tried and never waited
-- for: an order a batch is writing now is caught up on a later pass. Never waiting is what
-- keeps a catch-up and an old build's batch (whose trigger inserts into the backlog) from
-- waiting on each other.
SELECT order_id FROM (
    SELECT order_id FROM order_status_backlog
    ORDER BY recorded_at LIMIT $1 FOR UPDATE SKIP LOCKED) AS noted
WHERE pg_try_advisory_xact_lock(hashtextextended('o:' || order_id::text, 0));

-- name: catch_up_applied_events
-- The claimed orders' applied events (domain/status_catch_up.py puts them in the lifecycle's
-- order: no column here says which was applied first).
SELECT order_id, event_id, event_type, occurred_at FROM order_events
WHERE order_id = ANY($1::uuid[]) AND outcome = 'applied'
ORDER BY order_id, processed_at, occurred_at, event_id;

-- name: catch_up_published_event_ids
-- The event ids the claimed orders' outbox rows still in the table were written for.
SELECT aggregateid AS order_id, (payload ->> 'event_id')::uuid AS event_id FROM order_outbox
WHERE aggregateid = ANY($1::uuid[]);

-- name: catch_up_write
-- The missing status events, each order's counter advanced past them (a change of
-- last_sequence alone: the backlog's triggers stay quiet), and the claimed orders out of the
-- backlog.
WITH outbox AS (
    INSERT INTO order_outbox (id, aggregateid, type, sequence, payload)
    SELECT * FROM unnest(
        :outbox.id::uuid[], :outbox.aggregateid::uuid[], :outbox.type::text[],
        :outbox.sequence::int[], :outbox.payload::jsonb[])
), sequenced AS (
    UPDATE orders AS o SET last_sequence = u.last_sequence
    FROM unnest(:sequenced.order_id::uuid[], :sequenced.last_sequence::int[])
         AS u(order_id, last_sequence)
    WHERE o.order_id = u.order_id
)
DELETE FROM order_status_backlog WHERE order_id = ANY(:caught_up.order_id::uuid[]);

-- name: schema_requirement
-- The oldest revision a build must know to run on this schema (migration 0007).
SELECT minimum_build_revision FROM schema_requirements;
