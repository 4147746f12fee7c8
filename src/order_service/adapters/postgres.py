"""The PostgreSQL adapter (asyncpg): batches applied with set-based SQL in one transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import asyncpg

from order_service.adapters.db_credentials import SecretCredentials, connect_with
from order_service.adapters.order_rows import order_state
from order_service.adapters.pg_faults import DRIVER_ERRORS, translate
from order_service.adapters.queries import NamedQuery, load
from order_service.adapters.spans import NO_SPANS, Spans
from order_service.adapters.status_catch_up import catch_up_orders
from order_service.adapters.store_probe import StoreProbe
from order_service.domain.batch import EventRecord, NewOrder, Plan, Snapshot
from order_service.domain.events import OrderEvent
from order_service.domain.lifecycle import OrderState
from order_service.domain.status_events import OutboxRow, outbox_rows
from order_service.errors import StoreUnavailable

Q = load("queries.sql")
WRITE_BATCH = NamedQuery.parse(Q["write_batch"])
__all__ = ["PostgresStore", "translate"]


class PostgresStore:
    def __init__(
        self,
        dsn: str,
        *,
        pool_size: int,
        command_timeout: float = 30.0,
        outbox: bool = False,
        spans: Spans = NO_SPANS,
        credentials: SecretCredentials | None = None,
    ) -> None:
        """`outbox`: write one order_outbox row per applied event (a relay or a CDC reader
        consumes them); without one nothing is written, so the table never grows unread.
        `spans`: a batch's statements and its commit are spans, and its outbox rows keep
        the batch's traceparent (neither with the no-op spans). `credentials`: the user and
        password of each new connection come from this secret (rotated without a restart),
        not the DSN."""
        self._dsn = dsn
        self._connect = connect_with(credentials)
        self._outbox = outbox
        self._spans = spans.database(dsn)
        # Called after a commit that wrote outbox rows: wakes this process's relay.
        self.on_outbox_written: Callable[[], None] | None = None
        self._pool_size = pool_size
        self._command_timeout = command_timeout
        self._pool: asyncpg.Pool | None = None
        self._probe = StoreProbe(self.write_on)

    async def connect(self) -> None:
        if self._pool is not None:
            return
        try:
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=1,
                max_size=self._pool_size,
                command_timeout=self._command_timeout,
                timeout=10,
                connect=self._connect,
            )
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc

    async def close(self, grace: float = 5.0) -> None:
        """Closes gracefully, or hard after `grace` seconds: a blackholed server never answers the
        goodbyes, and the worker must be gone within its shutdown grace."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), grace)
            except (TimeoutError, *DRIVER_ERRORS):
                pool.terminate()

    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreUnavailable("database not connected yet")
        return self._pool

    async def ping(self) -> None:
        try:
            async with self._require_pool().acquire(timeout=5) as conn:
                await conn.fetchval("SELECT 1", timeout=5)
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc

    async def probe(self) -> None:
        """What a batch needs, checked with a known-good batch that is rolled back
        (adapters/store_probe.py). Raises StoreUnavailable naming the fault and what fixes it."""
        await self.connect()
        with self._spans.probe():
            await self._probe.run(self._require_pool())

    async def check_schema(self) -> None:
        """The schema's revision and what it requires of a build (adapters/store_probe.py)."""
        await self._probe.check_schema(self._require_pool())

    async def run_batch(
        self, events: Sequence[OrderEvent], planner: Callable[[Snapshot], Plan]
    ) -> Plan:
        try:
            async with self._require_pool().acquire() as conn:
                transaction = conn.transaction()
                await transaction.start()
                try:
                    plan = await self.write_on(conn, events, planner)
                except BaseException:
                    await transaction.rollback()
                    raise
                with self._spans.statement("commit"):
                    await transaction.commit()
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc
        if self._outbox and plan.applied and self.on_outbox_written is not None:
            self.on_outbox_written()
        return plan

    async def write_on(
        self,
        conn: asyncpg.Connection,
        events: Sequence[OrderEvent],
        planner: Callable[[Snapshot], Plan],
    ) -> Plan:
        """The batch on `conn`, inside the caller's transaction: lock, read, plan, write."""
        order_ids = list({e.order_id for e in events})
        event_ids = list({e.event_id for e in events})
        keys = [f"o:{o}" for o in order_ids] + [f"e:{e}" for e in event_ids]
        with self._spans.statement("lock_keys"):
            await conn.fetchval(Q["lock_keys"], keys)
        with self._spans.statement("recorded_event_ids"):
            recorded = await conn.fetch(Q["recorded_event_ids"], event_ids)
        with self._spans.statement("load_orders"):
            rows = await conn.fetch(Q["load_orders"], order_ids)
        caught_up: dict[UUID, int] = {}  # per order: the counter's advance by the catch-up
        if behind := [r["order_id"] for r in rows if r["behind"]]:
            # An older build changed these without status events: theirs first (ours follow).
            with self._spans.statement("catch_up_orders"):
                caught_up = await catch_up_orders(conn, behind, write_rows=self._outbox)
        plan = planner(
            Snapshot(
                recorded_event_ids=frozenset(r["event_id"] for r in recorded),
                orders={r["order_id"]: order_state(r) for r in rows},
                last_sequences={
                    r["order_id"]: r["last_sequence"] + caught_up.get(r["order_id"], 0)
                    for r in rows
                },
            )
        )
        await self._write(conn, plan)
        return plan

    async def _write(self, conn: asyncpg.Connection, plan: Plan) -> None:
        """Writes what the plan says (the outbox rows only when something reads them)."""
        if not (plan.new_orders or plan.changed_orders or plan.records):
            return
        outbox = outbox_rows(plan.applied) if self._outbox else []
        arguments = WRITE_BATCH.arguments(
            new_orders=_new_order_columns(plan.new_orders, plan.last_sequences),
            new_items=_line_columns(plan.new_orders),
            changed_orders=_changed_order_columns(plan.changed_orders, plan.last_sequences),
            events=_event_columns(plan.records),
            outbox=_outbox_columns(outbox, self._spans.traceparent() if outbox else None),
        )
        with self._spans.statement("write_batch"):
            await conn.execute(WRITE_BATCH.sql, *arguments)

    async def counts(self) -> dict[str, dict[str, int]]:
        """Orders by status and recorded events by outcome (for summaries)."""
        try:
            async with self._require_pool().acquire() as conn:
                return {
                    name: {r["key"]: r["n"] for r in await conn.fetch(Q[name])}
                    for name in ("orders_by_status", "events_by_outcome")
                }
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc

    async def quarantine(self, message_id: str, body: str, reason: str) -> None:
        try:
            async with self._require_pool().acquire() as conn:
                with self._spans.statement("quarantine"):
                    await conn.execute(Q["quarantine"], message_id, body, reason)
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc


# What write_batch writes, one array per column, named as the column it fills. A new column
# of a table is one entry in its group here and one parameter of that name in write_batch.


def _new_order_columns(new: Sequence[NewOrder], sequences: dict[UUID, int]) -> dict[str, list[Any]]:
    states = [n.state for n in new]
    return {
        "order_id": [s.order_id for s in states],
        "customer_id": [n.customer_id for n in new],
        "status": [s.status.value for s in states],
        "currency": [s.currency for s in states],
        "total_amount": [s.total_amount for s in states],
        "placed_at": [n.placed_at for n in new],
        "placed_event_id": [n.placed_event_id for n in new],
        "placed_digest": [s.placed_digest for s in states],
        **_mutable_columns(states, sequences),
    }


def _line_columns(new: Sequence[NewOrder]) -> dict[str, list[Any]]:
    lines = [
        (n.state.order_id, no, line) for n in new for no, line in enumerate(n.placed.items, start=1)
    ]
    return {
        "order_id": [order_id for order_id, _, _ in lines],
        "line_no": [no for _, no, _ in lines],
        "sku": [line.sku for _, _, line in lines],
        "quantity": [line.quantity for _, _, line in lines],
        "unit_price": [line.unit_price for _, _, line in lines],
    }


def _changed_order_columns(
    states: Sequence[OrderState], sequences: dict[UUID, int]
) -> dict[str, list[Any]]:
    return {
        "order_id": [s.order_id for s in states],
        "status": [s.status.value for s in states],
        **_mutable_columns(states, sequences),
    }


def _mutable_columns(
    states: Sequence[OrderState], sequences: dict[UUID, int]
) -> dict[str, list[Any]]:
    """The columns an event after order.placed may set, shared by new and changed orders; the
    counter counts applied events whether or not the outbox is written (an order's version)."""
    return {
        "last_sequence": [sequences[s.order_id] for s in states],
        "payment_id": [s.payment.payment_id if s.payment else None for s in states],
        "paid_amount": [s.payment.amount if s.payment else None for s in states],
        "paid_currency": [s.payment.currency if s.payment else None for s in states],
        "carrier": [s.shipment.carrier if s.shipment else None for s in states],
        "tracking_number": [s.shipment.tracking_number if s.shipment else None for s in states],
        "cancel_reason": [s.cancel_reason for s in states],
    }


def _event_columns(records: Sequence[EventRecord]) -> dict[str, list[Any]]:
    return {
        "event_id": [r.event.event_id for r in records],
        "order_id": [r.event.order_id for r in records],
        "event_type": [r.event.event_type.value for r in records],
        "outcome": [r.outcome.value for r in records],
        "reason": [r.reason for r in records],
        "occurred_at": [r.event.occurred_at for r in records],
    }


def _outbox_columns(rows: Sequence[OutboxRow], traceparent: str | None) -> dict[str, list[Any]]:
    return {
        "id": [r.id for r in rows],
        "aggregateid": [r.order_id for r in rows],
        "type": [r.type for r in rows],
        "sequence": [r.sequence for r in rows],
        "payload": [r.payload_json() for r in rows],
        "traceparent": [traceparent] * len(rows),
    }
