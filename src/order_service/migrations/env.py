"""Alembic environment: runs the migrations online, one at a time across the whole fleet.

A session-level advisory lock makes a second migration task wait for the first and then find
nothing left to do, so two one-off tasks started at once are safe.

Every statement waits at most LOCK_TIMEOUT for a table lock. A migration's `ALTER TABLE` queued
behind a long reader (a `pg_dump`, a BI query) would otherwise hold every worker's statements
behind its own queued `ACCESS EXCLUSIVE` request, for as long as the reader runs. Refused, the
migration's transaction rolls back (workers go on), and it is tried again after a backoff, a
bounded number of times; then the deploy fails with one line naming the sessions in the way.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
from alembic import context
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.util import await_only

from order_service.adapters.migrations import (
    LOCK_RETRY_DELAYS,
    LOCK_TIMEOUT,
    MIGRATION_LOCK_ID,
    MigrationBlocked,
    blockers_query,
    describe_blockers,
)
from order_service.migrations.app_role import check_role, set_app_role_password

config = context.config
LOCK_NOT_AVAILABLE = "55P03"


def _lock_refused(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE


def _migrate(connection: Connection) -> None:
    """Every pending migration, each in its own transaction; retried where a lock was refused
    (Alembic records each one done, so a retry starts at the one refused)."""
    delays = config.attributes.get("lock_retry_delays", LOCK_RETRY_DELAYS)
    for attempt in range(len(delays) + 1):
        try:
            context.configure(connection=connection, transaction_per_migration=True)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
            return
        except DBAPIError as exc:
            if not _lock_refused(exc):
                raise
            connection.rollback()
            blockers = describe_blockers(connection.execute(text(blockers_query())).all())
            if attempt == len(delays):
                raise MigrationBlocked(
                    f"migration gave up after {attempt + 1} tries of {LOCK_TIMEOUT} each "
                    f"waiting for a table lock; in the way: {blockers}"
                ) from None
            print(
                f"migration: a table lock was not granted within {LOCK_TIMEOUT} "
                f"(try {attempt + 1} of {len(delays) + 1}); retrying in {delays[attempt]} s; "
                f"in the way: {blockers}",
                flush=True,
            )
            time.sleep(delays[attempt])


def _run(connection: Connection) -> None:
    connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    connection.execute(text(f"SET lock_timeout = '{LOCK_TIMEOUT}'"))
    connection.commit()
    try:
        _migrate(connection)
        read_secret = config.attributes.get("app_credentials")
        password = config.attributes.get("app_role_password")
        role = config.attributes["app_role"]
        if read_secret is not None:
            # Read now, under the lock the rotation takes too: a value read at start-up (an
            # ECS-injected one) may be rotations old after a wait for the lock.
            role, password = await_only(read_secret())
            role = check_role(role)
        if password:
            set_app_role_password(connection, password, role)
            connection.commit()
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
        connection.commit()


async def _main() -> None:
    dsn: str = config.attributes["dsn"]

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(dsn)

    # The DSN is handed to asyncpg as it is, so every libpq URI form (unix sockets too) works.
    engine = create_async_engine("postgresql+asyncpg://", async_creator=connect, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) mode is not supported: run `order-service migrate`")
asyncio.run(_main())
