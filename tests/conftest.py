"""Real servers for the integration and end-to-end tests, started once per session.

PostgreSQL: the embedded server (pgserver, PostgreSQL 16), or any server given by
TEST_DATABASE_URL (e.g. a PostgreSQL 15). Each test gets a fresh database cloned from a
migrated template. SQS: a ministack process from .venv-sqs; each test gets its own queues.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from order_service.adapters.local import LocalPostgres, LocalSqs, create_queues
from order_service.adapters.migrations import upgrade
from order_service.adapters.sqs import sqs_client

TEMPLATE = "order_service_template"


@dataclass
class PostgresServer:
    base_uri: str
    local: LocalPostgres | None

    def uri(self, database: str) -> str:
        if self.local is not None:
            return self.local.uri(database)
        parts = urlsplit(self.base_uri)
        return urlunsplit(parts._replace(path=f"/{database}"))

    async def create_database(self, name: str, template: str | None = None) -> str:
        conn = await asyncpg.connect(self.base_uri)
        try:
            clause = f" TEMPLATE {template}" if template else ""
            await conn.execute(f'CREATE DATABASE "{name}"{clause}')
        finally:
            await conn.close()
        return self.uri(name)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield PostgresServer(given, None)
        return
    # Not under pytest's 0700 tmp folders: as root, pgserver runs PostgreSQL as its own user.
    data_dir = Path(tempfile.mkdtemp(prefix="order-service-pg-"))
    local = LocalPostgres(data_dir)
    uri = local.start()
    yield PostgresServer(uri, local)
    local.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
async def migrated_template(postgres_server: PostgresServer) -> str:
    name = f"{TEMPLATE}_{uuid.uuid4().hex[:8]}"
    dsn = await postgres_server.create_database(name)
    await asyncio.to_thread(upgrade, dsn)
    return name


@pytest.fixture
async def database(postgres_server: PostgresServer, migrated_template: str) -> str:
    """DSN of a fresh, migrated database of this test's own."""
    return await postgres_server.create_database(
        f"t_{uuid.uuid4().hex[:12]}", template=migrated_template
    )


@pytest.fixture
async def empty_database(postgres_server: PostgresServer) -> str:
    return await postgres_server.create_database(f"e_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def sqs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSqs]:
    server = LocalSqs(tmp_path_factory.mktemp("sqs")).start()
    saved = {k: os.environ.get(k) for k in SQS_ENV}
    os.environ.update(sqs_env(server))
    yield server
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


SQS_ENV = ("AWS_ENDPOINT_URL_SQS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")


def sqs_env(server: LocalSqs) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL_SQS": server.endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
    }


@pytest.fixture
async def sqs(sqs_server: LocalSqs) -> AsyncIterator[Any]:
    async with sqs_client("us-east-1") as client:
        yield client


@dataclass
class Queues:
    url: str
    dlq_url: str


@pytest.fixture
async def queues(sqs: Any) -> Queues:
    url, dlq = await create_queues(sqs, f"q-{uuid.uuid4().hex[:12]}", visibility_timeout=30)
    return Queues(url, dlq)


PROJECT = Path(__file__).parents[1]
