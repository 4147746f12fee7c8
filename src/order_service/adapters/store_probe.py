"""The batch store's readiness probe: what a batch needs, checked with a batch.

A connection, the schema revision this build expects, and a known-good batch written (placed,
then paid: every insert and update) plus a quarantine row, in a transaction that is rolled
back. It runs at start-up and while the worker is paused for a fault (service/pause.py), and
decides whether a refused event is its own fault or the system's (service/processing.py):
a known-good batch that the database refuses too means no message can pass.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

import asyncpg
import structlog

from order_service.adapters.migrations import shipped_revisions
from order_service.adapters.pg_faults import DRIVER_ERRORS, translate
from order_service.adapters.queries import load
from order_service.domain.batch import Plan, Snapshot, plan_batch
from order_service.domain.events import EventType, Line, OrderEvent, Paid, Placed
from order_service.errors import StoreUnavailable

Q = load("queries.sql")
log = structlog.get_logger("order_service.postgres")
# How the store writes a batch on a connection inside a transaction (PostgresStore.write_on).
WriteBatch = Callable[
    [asyncpg.Connection, Sequence[OrderEvent], Callable[[Snapshot], Plan]], Awaitable[Plan]
]


class _RollBack(Exception):
    """Ends the probe's transaction without committing its writes."""


class StoreProbe:
    def __init__(self, write: WriteBatch) -> None:
        self._write = write
        self._newer_revision_seen: str | None = None

    async def run(self, pool: asyncpg.Pool) -> None:
        """Raises StoreUnavailable naming the fault and what fixes it."""
        try:
            async with pool.acquire(timeout=10) as conn:
                await self._check_revision(conn)
                with contextlib.suppress(_RollBack):
                    async with conn.transaction():
                        for events in canary_events():
                            await self._write(conn, events, partial(plan_batch, events))
                        await conn.execute(Q["quarantine"], "probe", "{}", "probe")
                        raise _RollBack
        except DRIVER_ERRORS as exc:
            fault = translate(exc)
            if isinstance(fault, StoreUnavailable):
                raise fault from exc
            # A data error on a known-good batch (a new CHECK constraint, a trigger): no
            # message can pass, so it is the system's fault whatever its code.
            raise StoreUnavailable(
                f"database refuses a known-good batch: {fault}",
                kind="refuses_valid_batch",
                sqlstate=getattr(exc, "sqlstate", None),
                action="a constraint or trigger rejects every order: check recent schema changes",
            ) from exc

    async def check_schema(self, pool: asyncpg.Pool) -> None:
        """The schema's revision and what it requires of a build, alone (the consumer repeats
        this while consuming: a migration may land under a running worker)."""
        try:
            async with pool.acquire(timeout=10) as conn:
                await self._check_revision(conn)
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc

    async def _check_revision(self, conn: asyncpg.Connection) -> None:
        newer = await check_schema(conn)
        if newer is not None and newer != self._newer_revision_seen:
            self._newer_revision_seen = newer
            log.warning(
                "database schema is newer than this build; carrying on",
                revision=newer,
                expected=shipped_revisions()[0],
            )


async def check_schema(conn: asyncpg.Connection) -> str | None:
    """Raises StoreUnavailable when this build may not write to the schema: not migrated this
    far (kind schema), or a migration says it needs a newer build (kind build_too_old). Returns
    the schema's revision when it is newer than this build knows (fine: expand-only), else
    None. The worker's probe and the relay (adapters/outbox.py) both ask."""
    head, known = shipped_revisions()
    try:
        current = await conn.fetchval("SELECT version_num FROM alembic_version")
    except asyncpg.UndefinedTableError:
        current = None
    if current is None or (current in known and current != head):
        raise StoreUnavailable(
            f"database is at revision {current or 'none'}, this worker needs {head}",
            kind="schema",
            action="run `order-service migrate` (the migration task) before this build",
        )
    # Migration 0007 on: the oldest revision a build must know. A newer schema is fine
    # (expand-only) until a migration says otherwise by raising it past what we know.
    try:
        required = await conn.fetchval(Q["schema_requirement"])
    except asyncpg.UndefinedTableError:
        required = None  # a later migration dropped it: nothing is required
    if required is not None and required not in known:
        raise StoreUnavailable(
            f"the database's schema needs a build that knows revision {required}; "
            f"this build knows up to {head}",
            kind="build_too_old",
            action="finish the rollout (or the rollback) to a build that knows "
            f"revision {required}: this one stays paused, writing nothing",
        )
    return current if current != head else None


def canary_events() -> list[list[OrderEvent]]:
    """A new order placed, then paid in a second step (an update of a stored order)."""
    order_id, now = uuid.uuid4(), datetime.now(UTC)
    placed = Placed("probe", "EUR", (Line("PROBE", 1, Decimal("1.00")),), Decimal("1.00"))
    return [
        [OrderEvent(uuid.uuid4(), EventType.PLACED, now, order_id, placed)],
        [
            OrderEvent(
                uuid.uuid4(), EventType.PAID, now, order_id, Paid("probe", Decimal("1.00"), "EUR")
            )
        ],
    ]
