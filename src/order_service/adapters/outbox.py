"""The relay's side of PostgreSQL: claims of whole orders, marks, parking, retention, gauges,
status.

How a claim ends: it is a transaction holding one advisory lock per claimed order
(`pg_try_advisory_xact_lock`), so it ends with the transaction: at commit after the mark, at
rollback on any error, and when its connection dies (a SIGKILLed relay's socket closes and the
server aborts the transaction at once). A relay that hangs, or whose connection is cut without
a close, is ended by the server: the connection sets `idle_in_transaction_session_timeout` to
30 s, so a claim never outlives 30 s of silence. Transaction locks were chosen over session
locks (which a code path could forget to release on a pooled connection) and over a lease
column (a write per claim, and a lease that expires under a slow but live relay would let a
second relay publish the same order at the same time, out of order). The relay marks after
each round and waits for no round longer than its `round_seconds` (20 s, service/relay.py), so
a live relay's claim is never ended under it.

A claim that fails or is cancelled is never rolled back over the wire: its connection is
terminated, which ends the transaction on the server as surely and at once, where a ROLLBACK
to a server that does not answer would wait for the command timeout (and hold a stopping
worker past its grace). The gauges have a connection of their own, so that they are read on
their own clock, whatever a claim is waiting for.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from order_service.adapters import status_catch_up, store_probe
from order_service.adapters.db_credentials import Connect, SecretCredentials, connect_with
from order_service.adapters.pg_faults import DRIVER_ERRORS, translate
from order_service.adapters.queries import load
from order_service.errors import StoreError
from order_service.service.ports import OutboxGauges, PendingRow

Q = load("queries.sql")
CLAIM_IDLE_LIMIT_MS = 30_000
_SCAN_PER_ORDER = 4  # rows scanned per order asked for: orders have a handful of rows waiting
_DELETE_BATCH = 500
_DELETE_BATCHES_PER_PASS = 20
PARKED_LISTED = 100  # parked rows `outbox status` lists


@dataclass
class PostgresClaim:
    rows: Sequence[PendingRow]
    full: bool
    _conn: asyncpg.Connection

    async def mark_published(self, ids: Sequence[UUID]) -> None:
        _all_done(await self._conn.execute(Q["outbox_mark_published"], list(ids)), ids, "mark")

    async def delete_published(self, ids: Sequence[UUID]) -> None:
        status = await self._conn.execute(Q["outbox_delete_published_now"], list(ids))
        _all_done(status, ids, "delete")

    async def park(self, refused: Mapping[UUID, str]) -> None:
        await self._conn.execute(Q["outbox_park"], list(refused), list(refused.values()))


@dataclass(frozen=True)
class ParkedRow:
    id: UUID
    order_id: UUID
    sequence: int
    type: str
    parked_at: datetime
    reason: str | None


@dataclass(frozen=True)
class OutboxStatus:
    unpublished: int  # rows the relay can publish
    oldest_unpublished_seconds: float  # the relay's lag (0: nothing waiting)
    parked: int  # refused by SNS for good, waiting for `outbox retry`
    waiting_behind_parked: int  # later rows of the parked rows' orders
    published_retained: int
    last_published_at: datetime | None
    parked_rows: Sequence[ParkedRow] = ()


class _Session:
    """One connection of the relay's own (never one of the worker's batch connections),
    opened when needed and terminated after any fault."""

    def __init__(self, dsn: str, name: str, connect: Connect = asyncpg.connect) -> None:
        self._dsn = dsn
        self._name = name
        self._connect = connect
        self._conn: asyncpg.Connection | None = None

    @contextlib.asynccontextmanager
    async def use(self, *, transaction: bool = False) -> AsyncIterator[asyncpg.Connection]:
        """The connection (in a transaction committed at the end, with `transaction`). On any
        fault or cancel it is dropped; driver errors come out translated."""
        try:
            conn = await self._get()
            if transaction:
                await conn.execute("BEGIN")
            yield conn
            if transaction:
                await conn.execute("COMMIT")
        except DRIVER_ERRORS as exc:
            self.drop()
            raise translate(exc) from exc
        except BaseException:
            self.drop()  # failed or cancelled mid-statement: the server ends the transaction
            raise

    async def _get(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await self._connect(
                self._dsn,
                timeout=10,
                command_timeout=10,
                server_settings={
                    "application_name": self._name,
                    "idle_in_transaction_session_timeout": str(CLAIM_IDLE_LIMIT_MS),
                    "statement_timeout": "10000",
                },
            )
        return self._conn

    def drop(self) -> None:
        """Closes the socket without a word: the server ends the session (and any claim in
        it) at once, and nothing here waits for a server that may not answer."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()


class PostgresOutbox:
    """Every method raises StoreUnavailable (or StoreError) on driver errors."""

    def __init__(self, dsn: str, credentials: SecretCredentials | None = None) -> None:
        """`credentials`: each connection's login comes from this secret (DB_SECRET_ARN), as
        the worker's own connections' do."""
        connect = connect_with(credentials)
        self._claims = _Session(dsn, "order-service-relay", connect)
        self._gauges = _Session(dsn, "order-service-relay-gauges", connect)

    async def close(self) -> None:
        self._claims.drop()
        self._gauges.drop()

    @contextlib.asynccontextmanager
    async def claim(self, max_orders: int) -> AsyncIterator[PostgresClaim]:
        async with self._claims.use(transaction=True) as conn:
            claimed = [
                r["aggregateid"]
                for r in await conn.fetch(
                    Q["outbox_claim"], max_orders, max_orders * _SCAN_PER_ORDER
                )
            ]
            rows = await conn.fetch(Q["outbox_rows_of"], claimed) if claimed else []
            yield PostgresClaim([_pending(r) for r in rows], len(claimed) >= max_orders, conn)

    async def check_schema(self) -> None:
        """Whether this build may write to the schema (adapters/store_probe.py)."""
        async with self._claims.use() as conn:
            await store_probe.check_schema(conn)

    async def catch_up(self, max_orders: int) -> int:
        """Status events for changes a build without the outbox applied (migration 0007's
        backlog), written for the relay to publish; how many."""
        async with self._claims.use(transaction=True) as conn:
            return await status_catch_up.catch_up(conn, max_orders)

    async def delete_published(self, older_than_seconds: float) -> int:
        deleted = 0
        async with self._claims.use() as conn:
            for _ in range(_DELETE_BATCHES_PER_PASS):
                status = await conn.execute(
                    Q["outbox_delete_published"], older_than_seconds, _DELETE_BATCH
                )
                count = _rows(status)
                deleted += count
                if count < _DELETE_BATCH:
                    break
        return deleted

    async def gauges(self) -> OutboxGauges:
        async with self._gauges.use() as conn:
            row = await conn.fetchrow(Q["outbox_gauges"])
        assert row is not None
        return OutboxGauges(float(row["oldest_unpublished_seconds"]), int(row["parked"]))

    async def status(self) -> OutboxStatus:
        async with self._claims.use() as conn:
            row = await conn.fetchrow(Q["outbox_status"])
            parked = await conn.fetch(Q["outbox_parked_rows"], PARKED_LISTED)
        assert row is not None
        listed = [
            ParkedRow(
                r["id"],
                r["aggregateid"],
                r["sequence"],
                r["type"],
                r["parked_at"],
                r["park_reason"],
            )
            for r in parked
        ]
        return OutboxStatus(**dict(row), parked_rows=listed)

    async def retry_parked(self, ids: Sequence[UUID] | None) -> int:
        """Gives parked rows (`ids`, or all when None) back to the relay; how many."""
        async with self._claims.use() as conn:
            status = await conn.execute(
                Q["outbox_retry_parked"], None if ids is None else list(ids)
            )
        return _rows(status)


def _rows(status: str) -> int:
    """The rows a statement changed, from its command tag ("DELETE 3", "UPDATE 0")."""
    return int(status.rpartition(" ")[2])


def _all_done(status: str, ids: Sequence[UUID], what: str) -> None:
    """The claim's rows are its own (their orders' locks are held, each row unpublished when
    read): a statement that changed fewer was skipped by something in the database without an
    error (a BEFORE trigger returning NULL, a DO INSTEAD rule). Raised, the claim rolls back
    and the relay reports it and backs off, instead of taking the rows for done and
    publishing them again at every poll."""
    done = _rows(status)
    if done != len(ids):
        raise StoreError(
            f"the database skipped the {what} of {len(ids) - done} of {len(ids)} published "
            "order_outbox rows without an error (a trigger returning NULL or a rule on the table?)"
        )


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
