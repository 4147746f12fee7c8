"""Fixtures of the credential-rotation tests: a server that checks passwords, Secrets Manager.

The embedded server trusts every local login; `password_logins` makes it check the passwords
(scram) of ROTATING's members, direct or indirect, for the test's length. Registered by the
root conftest (`pytest_plugins`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from order_service.ops.rotate_credentials import SecretsManagerAppSecret
from tests.support.database import PostgresServer, execute

ROTATING = "rotating_logins"  # members log in with a password: pg_hba says so


@pytest.fixture
async def password_logins(postgres_server: PostgresServer) -> AsyncIterator[None]:
    """The embedded server checks the passwords of ROTATING's members (trust for the rest)."""
    if postgres_server.local is None:
        pytest.skip("needs the embedded server: the test edits its pg_hba.conf")
    hba = postgres_server.local.data_dir / "pg_hba.conf"
    before = hba.read_text()
    await execute(
        postgres_server.base_uri,
        f"DO $$ BEGIN CREATE ROLE {ROTATING} NOLOGIN; "
        "EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    )
    hba.write_text(f"local all +{ROTATING} scram-sha-256\n{before}")
    await execute(postgres_server.base_uri, "SELECT pg_reload_conf()")
    yield
    hba.write_text(before)
    await execute(postgres_server.base_uri, "SELECT pg_reload_conf()")


@pytest.fixture
async def secrets(sqs_server: Any) -> AsyncIterator[Any]:
    """A Secrets Manager client on the local endpoint (ministack)."""
    from aiobotocore.session import get_session

    async with get_session().create_client("secretsmanager", region_name="us-east-1") as client:
        yield client


class Killed(BaseException):
    """The rotation stopped where the test says: like a SIGKILL, nothing after it runs (the
    database session, and the lock it holds, end with the connection)."""


class KilledBeforeTheSecretIsWritten(SecretsManagerAppSecret):
    """The application secret, in a task killed after the new password was set."""

    async def write(self, value: dict[str, Any]) -> None:
        raise Killed
