"""A PostgreSQL server for tests and benchmarks: each run gets a fresh database cloned from one
migrated template (a clone is a file copy, far faster than migrating again)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from order_service.adapters.migrations import upgrade
from order_service.entrypoints.local_servers import LocalPostgres


async def query(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def execute(dsn: str, sql: str, *args: Any) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.execute(sql, *args)
    finally:
        await conn.close()


@dataclass
class PostgresServer:
    """The embedded server (`local`), or any server reachable at `base_uri`."""

    base_uri: str
    local: LocalPostgres | None = None

    def uri(self, database: str) -> str:
        if self.local is not None:
            return self.local.uri(database)
        parts = urlsplit(self.base_uri)
        return urlunsplit(parts._replace(path=f"/{database}"))

    async def create_database(self, name: str, template: str | None = None) -> str:
        """DSN of a new database, empty or a copy of `template`."""
        clause = f' TEMPLATE "{template}"' if template else ""
        await execute(self.base_uri, f'CREATE DATABASE "{name}"{clause}')
        return self.uri(name)

    async def migrated_template(self, prefix: str) -> str:
        """Name of a new database with every migration applied, to clone the others from."""
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        await asyncio.to_thread(upgrade, await self.create_database(name))
        return name
