"""Attack on adapters/db_credentials.py (issue 26 item 5): the worker reads DB_SECRET_ARN's
secret for each new connection from a copy at most CACHE_SECONDS (300 s) old. When Secrets
Manager cannot be reached after the copy has aged, a new connection is refused by the worker
itself, though the copy still logs in: an outage of Secrets Manager becomes an outage of the
worker as soon as its pool opens a connection (asyncpg closes idle ones after 300 s, a failover
closes them all, the relay and the probe open their own). The cache is shortened here so that
the test does not wait 300 s; the endpoint is the SDK's (AWS_ENDPOINT_URL_SECRETS_MANAGER)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from order_service.adapters.db_credentials import SecretCredentials, connect_with
from order_service.entrypoints.local_servers import free_port
from tests.support.database import execute


@pytest.fixture
async def login(postgres_server) -> str:
    """A user of the application role that the (trusting) embedded server lets in."""
    user = f"cred_{uuid.uuid4().hex[:8]}"
    await execute(postgres_server.base_uri, f"CREATE ROLE {user} LOGIN IN ROLE orders_app")
    return user


async def test_a_new_connection_uses_the_aged_copy_while_secrets_manager_is_down(
    secrets, database, login, monkeypatch
):
    arn = (
        await secrets.create_secret(
            Name=f"app-{login}", SecretString=json.dumps({"username": login, "password": "p"})
        )
    )["ARN"]
    credentials = SecretCredentials(arn, "us-east-1", cache_seconds=0.5)
    connect = connect_with(credentials)
    first = await connect(database)
    assert await first.fetchval("SELECT current_user") == login
    await first.close()
    # Secrets Manager becomes unreachable (its endpoint refuses); the copy ages past the cache.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{free_port()}")
    await asyncio.sleep(0.6)
    again = await asyncio.wait_for(connect(database), 60)
    try:
        assert await again.fetchval("SELECT current_user") == login
    finally:
        await again.close()
