"""Migrations against a real PostgreSQL: the read contract, idempotency, two at once."""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg

from order_service.adapters.migrations import MIGRATION_LOCK_ID, shipped_revisions, upgrade

READ_CONTRACT = {
    "orders": {
        "order_id": "uuid",
        "customer_id": "text",
        "status": "text",
        "currency": "character",
        "total_amount": "numeric",
        "placed_at": "timestamp with time zone",
        "updated_at": "timestamp with time zone",
    },
    "order_items": {
        "order_id": "uuid",
        "line_no": "integer",
        "sku": "text",
        "quantity": "integer",
        "unit_price": "numeric",
    },
    "order_events": {
        "event_id": "uuid",
        "order_id": "uuid",
        "event_type": "text",
        "outcome": "text",
        "reason": "text",
    },
}


async def columns(dsn: str) -> dict[str, dict[str, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        )
    finally:
        await conn.close()
    result: dict[str, dict[str, str]] = {}
    for r in rows:
        result.setdefault(r["table_name"], {})[r["column_name"]] = r["data_type"]
    return result


async def primary_key(dsn: str, table: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(
            "SELECT array_agg(a.attname ORDER BY array_position(i.indkey, a.attnum)) "
            "FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = $1::regclass AND i.indisprimary",
            table,
        )
    finally:
        await conn.close()


async def test_schema_has_the_read_contract(database):
    schema = await columns(database)
    for table, expected in READ_CONTRACT.items():
        assert {c: schema[table][c] for c in expected} == expected
    assert await primary_key(database, "orders") == ["order_id"]
    assert await primary_key(database, "order_items") == ["order_id", "line_no"]
    assert await primary_key(database, "order_events") == ["event_id"]


async def test_migrating_twice_changes_nothing(empty_database):
    await asyncio.to_thread(upgrade, empty_database)
    before = await columns(empty_database)
    await asyncio.to_thread(upgrade, empty_database)
    assert await columns(empty_database) == before


async def migrate_process(dsn: str) -> int:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "order_service.entrypoints.cli",
        "migrate",
        env={**os.environ, "DATABASE_URL": dsn},
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    return process.returncode


async def test_two_migration_processes_at_once_both_succeed(empty_database):
    # Two one-off tasks started together: without the advisory lock, the second one's
    # CREATE TABLE fails with "already exists".
    assert await asyncio.gather(*(migrate_process(empty_database) for _ in range(3))) == [0] * 3
    conn = await asyncpg.connect(empty_database)
    try:
        assert (
            await conn.fetchval("SELECT version_num FROM alembic_version") == shipped_revisions()[0]
        )
    finally:
        await conn.close()


async def test_a_migration_waits_for_the_fleet_wide_lock(empty_database):
    holder = await asyncpg.connect(empty_database)
    await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    migration = asyncio.create_task(migrate_process(empty_database))
    done, _ = await asyncio.wait({migration}, timeout=2)
    assert not done, "the migration ran while another one held the lock"
    await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)
    await holder.close()
    assert await migration == 0
