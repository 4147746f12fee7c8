"""The relay's side of PostgreSQL: claims of whole orders, marks, retention, status.

How a claim ends: it is a transaction holding one advisory lock per claimed order
(`pg_try_advisory_xact_lock`), so it ends with the transaction: at commit after the mark, at
rollback on any error, and when its connection dies (a SIGKILLed relay's socket closes and the
server aborts the transaction at once). A relay that hangs, or whose connection is cut without
a close, is ended by the server: the connection sets `idle_in_transaction_session_timeout` to
30 s, so a claim never outlives 30 s of silence. Transaction locks were chosen over session
locks (which a code path could forget to release on a pooled connection) and over a lease
column (a write per claim, and a lease that expires under a slow but live relay would let a
second relay publish the same order at the same time, out of order). The relay's SNS calls are
bounded well below 30 s (adapters/sns.py), so a live relay's claim is never ended under it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from order_service.adapters.pg_faults import DRIVER_ERRORS, translate
from order_service.adapters.queries import load
from order_service.service.ports import PendingRow

Q = load("queries.sql")
CLAIM_IDLE_LIMIT_MS = 30_000
_SCAN_PER_ORDER = 4  # rows scanned per order asked for: orders have a handful of rows waiting
_DELETE_BATCH = 500
_DELETE_BATCHES_PER_PASS = 20


@dataclass
class PostgresClaim:
    rows: Sequence[PendingRow]
    full: bool
    oldest_age_seconds: float
    _conn: asyncpg.Connection

    async def mark_published(self, ids: Sequence[UUID]) -> None:
        await self._conn.execute(Q["outbox_mark_published"], list(ids))


@dataclass(frozen=True)
class OutboxStatus:
    unpublished: int
    oldest_unpublished_seconds: float  # the relay's lag (0: nothing waiting)
    published_retained: int
    last_published_at: datetime | None


class PostgresOutbox:
    """One connection of its own (never one of the worker's batch connections), reconnected
    after a fault. Every method raises StoreUnavailable (or StoreError) on driver errors."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                self._dsn,
                timeout=10,
                command_timeout=10,
                server_settings={
                    "application_name": "order-service-relay",
                    "idle_in_transaction_session_timeout": str(CLAIM_IDLE_LIMIT_MS),
                    "statement_timeout": "10000",
                },
            )
        return self._conn

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)
            if not conn.is_closed():
                conn.terminate()

    @contextlib.asynccontextmanager
    async def claim(self, max_orders: int) -> AsyncIterator[PostgresClaim]:
        try:
            conn = await self._connection()
            async with conn.transaction():
                claimed = [
                    r["aggregateid"]
                    for r in await conn.fetch(
                        Q["outbox_claim"], max_orders, max_orders * _SCAN_PER_ORDER
                    )
                ]
                rows = await conn.fetch(Q["outbox_rows_of"], claimed) if claimed else []
                oldest = await conn.fetchval(Q["outbox_oldest_age"])
                yield PostgresClaim(
                    [_pending(r) for r in rows], len(claimed) >= max_orders, float(oldest), conn
                )
        except DRIVER_ERRORS as exc:
            await self._drop()
            raise translate(exc) from exc
        except BaseException:
            await self._drop()  # cancelled mid-claim: the connection's state is unknown
            raise

    async def delete_published(self, older_than_seconds: float) -> int:
        deleted = 0
        try:
            conn = await self._connection()
            for _ in range(_DELETE_BATCHES_PER_PASS):
                status = await conn.execute(
                    Q["outbox_delete_published"], older_than_seconds, _DELETE_BATCH
                )
                count = int(status.rpartition(" ")[2])
                deleted += count
                if count < _DELETE_BATCH:
                    break
        except DRIVER_ERRORS as exc:
            await self._drop()
            raise translate(exc) from exc
        return deleted

    async def status(self) -> OutboxStatus:
        try:
            conn = await self._connection()
            row = await conn.fetchrow(Q["outbox_status"])
        except DRIVER_ERRORS as exc:
            await self._drop()
            raise translate(exc) from exc
        assert row is not None
        return OutboxStatus(**dict(row))

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()


def _pending(row: asyncpg.Record) -> PendingRow:
    return PendingRow(
        id=row["id"],
        order_id=row["aggregateid"],
        type=row["type"],
        sequence=row["sequence"],
        payload=row["payload"],
        created_at=row["created_at"],
        traceparent=row["traceparent"],
        customer_id=row["customer_id"],
    )
