"""Alembic environment: runs the migrations online, one at a time across the whole fleet.

A session-level advisory lock makes a second migration task wait for the first and then find
nothing left to do, so two one-off tasks started at once are safe.
"""

from __future__ import annotations

import asyncio

import asyncpg
from alembic import context
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from order_service.adapters.migrations import MIGRATION_LOCK_ID
from order_service.migrations.app_role import set_app_role_password

config = context.config


def _run(connection: Connection) -> None:
    connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    connection.commit()
    try:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
        password = config.attributes.get("app_role_password")
        if password:
            set_app_role_password(connection, password)
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
