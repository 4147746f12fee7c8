"""Migrations against a real PostgreSQL: the read contract, idempotency, two at once."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from order_service.adapters.migrations import MIGRATION_LOCK_ID, shipped_revisions, upgrade
from order_service.entrypoints.local_servers import LocalPostgres
from order_service.migrations.extensions import create_where_loaded

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


# Issue 19: pgaudit's extension (revision 0005), created where the server offers and loads it.
async def _extensions(dsn: str) -> tuple[set[str], set[str]]:
    """(offered, created) extension names."""
    conn = await asyncpg.connect(dsn)
    try:
        offered = {r["name"] for r in await conn.fetch("SELECT name FROM pg_available_extensions")}
        created = {r["extname"] for r in await conn.fetch("SELECT extname FROM pg_extension")}
    finally:
        await conn.close()
    return offered, created


async def _execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def test_a_server_without_pgaudit_migrates_and_skips_it(empty_database):
    await asyncio.to_thread(upgrade, empty_database)
    offered, created = await _extensions(empty_database)
    assert "pgaudit" not in offered  # the local and test servers: the skip is what runs here
    assert "pgaudit" not in created
    conn = await asyncpg.connect(empty_database)
    try:
        head = shipped_revisions()[0]
        assert await conn.fetchval("SELECT version_num FROM alembic_version") == head
    finally:
        await conn.close()


async def test_an_offered_extension_that_is_not_preloaded_is_skipped(empty_database):
    # dev's RDS instance: pgaudit offered, not in shared_preload_libraries; CREATE EXTENSION
    # would fail there. `vector` stands in: the test server offers it and preloads nothing.
    offered, _ = await _extensions(empty_database)
    assert "vector" in offered
    await _execute(empty_database, create_where_loaded("vector"))
    assert "vector" not in (await _extensions(empty_database))[1]


@pytest.fixture
async def server_preloading_vector() -> AsyncIterator[str]:
    """A server of its own whose shared_preload_libraries holds `vector`, as staging's and
    prod's parameter group holds pgaudit (a postmaster setting: set, then restart)."""
    data_dir = Path(tempfile.mkdtemp(prefix="order-service-pg-preload-"))
    local = LocalPostgres(data_dir)
    uri = local.start()
    try:
        await _execute(uri, "ALTER SYSTEM SET shared_preload_libraries = 'vector'")
        await asyncio.to_thread(local.pg_ctl, "stop")
        await asyncio.to_thread(local.restart)
        yield uri
    finally:
        local.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


async def test_an_offered_and_preloaded_extension_is_created_once(server_preloading_vector):
    dsn = server_preloading_vector
    await _execute(dsn, create_where_loaded("vector"))
    assert "vector" in (await _extensions(dsn))[1]
    await _execute(dsn, create_where_loaded("vector"))  # a second run: nothing to do


@pytest.mark.parametrize("name", ["pgaudit; DROP TABLE orders", "PgAudit", "", "x'y"])
def test_only_an_extension_name_makes_sql(name: str) -> None:
    with pytest.raises(ValueError, match="not an extension name"):
        create_where_loaded(name)
