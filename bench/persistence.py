"""The persistence path three ways, on the same rows: the worker's own batch processing, the
COPY ceiling, and the simple design (one transaction per event, row by row)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from order_service.adapters.postgres import PostgresStore
from order_service.domain.batch import Snapshot, plan_batch
from order_service.domain.events import OrderEvent, Placed
from order_service.domain.lifecycle import Outcome, decide
from order_service.domain.parsing import Invalid, parse_body
from order_service.domain.status_events import outbox_rows
from order_service.generator import generate
from order_service.service.ports import Message
from order_service.service.processing import BatchProcessor

# The ceiling keeps one transaction size (100 events) whatever batch size the worker is given,
# so that changing the worker's batch moves the worker's figure, never the baseline's.
COPY_TRANSACTION_EVENTS = 100


def placed_bodies(n: int, seed: int) -> list[str]:
    """n `order.placed` bodies with 3 lines each (the first event of n generated lifecycles)."""
    stream = generate(n, seed=seed, duplicate_rate=0, out_of_order_rate=0, invalid_rate=0)
    bodies = [b for b in stream.bodies if '"order.placed"' in b]
    assert len(bodies) == n
    return bodies


@dataclass(frozen=True)
class Timed:
    seconds: float
    orders: int

    @property
    def orders_per_s(self) -> float:
        return self.orders / self.seconds

    def __add__(self, other: Timed) -> Timed:
        return Timed(self.seconds + other.seconds, self.orders + other.orders)


def slices(items: Sequence[Any], rounds: int) -> list[Sequence[Any]]:
    """`rounds` contiguous parts of about equal size."""
    return [items[i * len(items) // rounds : (i + 1) * len(items) // rounds] for i in range(rounds)]


async def _fan_out(
    chunks: Sequence[Any], concurrency: int, apply: Callable[[Any], Awaitable[None]]
) -> float:
    """Applies every chunk with `concurrency` tasks pulling from one list; wall seconds."""
    iterator = iter(chunks)

    async def task() -> None:
        for chunk in iterator:  # shared: each chunk is taken by exactly one task
            await apply(chunk)

    started = time.perf_counter()
    await asyncio.gather(*(task() for _ in range(concurrency)))
    return time.perf_counter() - started


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def worker_path(
    dsn: str,
    bodies: list[str],
    batch: int,
    concurrency: int,
    *,
    outbox_written: Callable[[], None] | None = None,
) -> Timed:
    """BatchProcessor.process on batches of `batch` messages, `concurrency` at a time (the
    worker runs one processor per pooled connection). `outbox_written`: the outbox is on, and
    this is called after each commit that wrote rows (a relay's wake, as the worker wires it)."""
    store = PostgresStore(dsn, pool_size=concurrency, outbox=outbox_written is not None)
    store.on_outbox_written = outbox_written
    await store.connect()
    processor = BatchProcessor(store)
    messages = [Message(f"m-{i}", f"r-{i}", body) for i, body in enumerate(bodies)]
    outcomes: dict[Outcome, int] = {}

    async def apply(chunk: Sequence[Message]) -> None:
        for result in await processor.process(chunk):
            outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1

    try:
        seconds = await _fan_out(_chunks(messages, batch), concurrency, apply)
    finally:
        await store.close()
    if outcomes != {Outcome.APPLIED: len(bodies)}:
        raise RuntimeError(f"worker path: unexpected outcomes {outcomes}")
    return Timed(seconds, len(bodies))


# last_sequence as the worker writes it (its applied events): a row left at 0 is what a build
# from before the outbox writes, and migration 0007's trigger would note it (a write the worker
# never makes).
_ORDER_COLUMNS = (
    "order_id", "customer_id", "status", "currency", "total_amount", "placed_at",
    "placed_event_id", "placed_digest", "last_sequence",
)  # fmt: skip
_ITEM_COLUMNS = ("order_id", "line_no", "sku", "quantity", "unit_price")
_EVENT_COLUMNS = ("event_id", "order_id", "event_type", "outcome", "reason", "occurred_at")
_OUTBOX_COLUMNS = ("id", "aggregateid", "type", "sequence", "payload")


def copy_rows(bodies: list[str]) -> list[tuple[list[tuple[Any, ...]], ...]]:
    """The rows the worker writes, per group of 100 events, built before the clock starts:
    the ceiling is the database's, not Python's. The last list is the outbox's rows (the
    worker writes them only with the outbox on)."""
    groups: list[tuple[list[tuple[Any, ...]], ...]] = []
    for chunk in _chunks(bodies, COPY_TRANSACTION_EVENTS):
        events = [_parsed(body) for body in chunk]
        plan = plan_batch(events, Snapshot(frozenset(), {}))
        changes = Counter(change.state.order_id for change in plan.applied)
        orders = [
            (n.state.order_id, n.customer_id, n.state.status.value, n.state.currency,
             n.state.total_amount, n.placed_at, n.placed_event_id, n.state.placed_digest,
             changes[n.state.order_id])
            for n in plan.new_orders
        ]  # fmt: skip
        items = [
            (n.state.order_id, no, line.sku, line.quantity, line.unit_price)
            for n in plan.new_orders
            for no, line in enumerate(n.placed.items, start=1)
        ]
        records = [
            (r.event.event_id, r.event.order_id, r.event.event_type.value, r.outcome.value,
             r.reason, r.event.occurred_at)
            for r in plan.records
        ]  # fmt: skip
        outbox = [
            (row.id, row.order_id, row.type, row.sequence, row.payload_json())
            for row in outbox_rows(plan.applied)
        ]
        groups.append((orders, items, records, outbox))
    return groups


async def copy_ceiling(
    dsn: str, bodies: list[str], concurrency: int, *, outbox: bool = False
) -> Timed:
    """COPY of the worker's rows in transactions of 100 events; `outbox`: its outbox rows too
    (loaded only: publishing them is the relay's, which no COPY replaces)."""
    groups = copy_rows(bodies)
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)

    async def apply(group: tuple[list[tuple[Any, ...]], ...]) -> None:
        orders, items, records, outbox_records = group
        async with pool.acquire() as conn, conn.transaction():
            if outbox:
                await conn.copy_records_to_table(
                    "order_outbox", records=outbox_records, columns=_OUTBOX_COLUMNS
                )
            await conn.copy_records_to_table("orders", records=orders, columns=_ORDER_COLUMNS)
            await conn.copy_records_to_table("order_items", records=items, columns=_ITEM_COLUMNS)
            await conn.copy_records_to_table(
                "order_events", records=records, columns=_EVENT_COLUMNS
            )

    try:
        seconds = await _fan_out(groups, concurrency, apply)
    finally:
        await pool.close()
    return Timed(seconds, len(bodies))


_NAIVE_SEEN = "SELECT 1 FROM order_events WHERE event_id = $1"
_NAIVE_ORDER = """
    INSERT INTO orders (order_id, customer_id, status, currency, total_amount, placed_at,
                        placed_event_id, placed_digest, last_sequence)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1)"""
_NAIVE_ITEM = """
    INSERT INTO order_items (order_id, line_no, sku, quantity, unit_price)
    VALUES ($1, $2, $3, $4, $5)"""
_NAIVE_EVENT = """
    INSERT INTO order_events (event_id, order_id, event_type, outcome, reason, occurred_at)
    VALUES ($1, $2, $3, 'applied', NULL, $4)"""


async def naive(dsn: str, bodies: list[str], concurrency: int) -> Timed:
    """The simple design: per event, parse, then one transaction that checks order_events
    for the event id and inserts the order, each line, and the event record one by one."""
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)

    async def apply(chunk: Sequence[str]) -> None:
        (body,) = chunk
        event = _parsed(body)
        assert isinstance(event.data, Placed)
        async with pool.acquire() as conn, conn.transaction():
            if await conn.fetchval(_NAIVE_SEEN, event.event_id) is not None:
                return
            state = decide(event, None).state
            assert state is not None
            await conn.execute(
                _NAIVE_ORDER, event.order_id, event.data.customer_id, state.status.value,
                state.currency, state.total_amount, event.occurred_at, event.event_id,
                state.placed_digest,
            )  # fmt: skip
            for no, line in enumerate(event.data.items, start=1):
                await conn.execute(
                    _NAIVE_ITEM, event.order_id, no, line.sku, line.quantity, line.unit_price
                )
            await conn.execute(
                _NAIVE_EVENT, event.event_id, event.order_id, event.event_type.value,
                event.occurred_at,
            )  # fmt: skip

    try:
        seconds = await _fan_out(_chunks(bodies, 1), concurrency, apply)
    finally:
        await pool.close()
    return Timed(seconds, len(bodies))


def parse_cpu_us(bodies: Sequence[str]) -> float:
    """CPU microseconds per body of parse_body alone (strict JSON, schema, typed event)."""
    started = time.process_time()
    for body in bodies:
        parse_body(body)
    return (time.process_time() - started) * 1e6 / len(bodies)


def _parsed(body: str) -> OrderEvent:
    event = parse_body(body)
    if isinstance(event, Invalid):
        raise ValueError(event.reason)
    return event


async def row_counts(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return {
            table: await conn.fetchval(f"SELECT count(*) FROM {table}")
            for table in ("orders", "order_items", "order_events")
        }
    finally:
        await conn.close()
