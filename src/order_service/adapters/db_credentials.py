"""The application's database credentials, read from Secrets Manager when a connection is made.

ECS injects a secret's values into the environment once, at task start: a rotated password would
reach a running worker only through a restart, and every connection the pool opened after the
rotation would fail until then. With DB_SECRET_ARN the worker reads the secret itself instead
(RDS's JSON: `username` and `password`) for each new connection, from a copy at most
CACHE_SECONDS old, and reads it again at once when the server refuses the login. Connections
already open stay open (PostgreSQL checks a password only at login), and with Secrets Manager's
alternating-users rotation the previous user still logs in until the next rotation, so a batch
never meets a refusal: at worst one new connection retries once with the fresh secret. While
Secrets Manager cannot be read, an aged copy is used (it still logs in unless a rotation
happened meanwhile).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from order_service.errors import StoreUnavailable

log = structlog.get_logger("order_service.postgres")
CACHE_SECONDS = 300.0
RETRY_SECONDS = 30.0  # a failed read of an aged copy is tried again after this
# What PostgreSQL answers to a login it refuses: a wrong password, or a user that does not exist
# (yet, or any more).
LOGIN_REFUSED = (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)
Connect = Callable[..., Awaitable[asyncpg.Connection]]


class SecretCredentials:
    """The user and password of one Secrets Manager secret (AWS_ENDPOINT_URL_SECRETS_MANAGER
    and the SDK's credentials chain apply)."""

    def __init__(self, secret_id: str, region: str, cache_seconds: float = CACHE_SECONDS) -> None:
        self._secret_id = secret_id
        self._region = region
        self._cache_seconds = cache_seconds
        self._value: tuple[str, str] | None = None
        self._read_at = 0.0
        self._next_read = 0.0  # when the copy is read again (unless refreshed at once)
        self._lock = asyncio.Lock()

    async def current(self, *, refresh: bool = False) -> tuple[str, str]:
        """(username, password), read again when older than the cache or when `refresh`.

        A copy that is merely old is still the best guess while Secrets Manager cannot be
        read (an outage, a throttle): it is used, and the read is tried again after
        RETRY_SECONDS, so an outage of the secret store costs new connections nothing until
        the password actually changes. Without a copy, or when the server refused the copy
        (`refresh`), the read's fault is raised."""
        async with self._lock:
            stale = time.monotonic() >= self._next_read
            if self._value is None or stale or refresh:
                try:
                    self._value = await self._read()
                except StoreUnavailable as fault:
                    if self._value is None or refresh:
                        raise
                    log.warning(
                        "database secret not read; logging in with the copy read before",
                        error=str(fault),
                        copy_age_seconds=round(time.monotonic() - self._read_at),
                        retry_in=RETRY_SECONDS,
                    )
                    # Tried again once the retry is due, not by every new connection.
                    self._next_read = time.monotonic() + RETRY_SECONDS
                    return self._value
                self._read_at = time.monotonic()
                self._next_read = self._read_at + self._cache_seconds
            return self._value

    async def _read(self) -> tuple[str, str]:
        try:
            async with get_session().create_client(
                "secretsmanager", region_name=self._region
            ) as client:
                response = await client.get_secret_value(SecretId=self._secret_id)
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(
                f"cannot read the database secret: {exc}",
                kind="credentials",
                action="check DB_SECRET_ARN, the task role's secretsmanager:GetSecretValue "
                "and kms:Decrypt on it, and the network path to Secrets Manager",
            ) from exc
        try:
            secret: Any = json.loads(response["SecretString"])
            return str(secret["username"]), str(secret["password"])
        except (KeyError, TypeError, ValueError):
            raise StoreUnavailable(
                "the database secret is not RDS's JSON with username and password",
                kind="credentials",
                action="point DB_SECRET_ARN at the application's RDS secret",
            ) from None


def connect_with(credentials: SecretCredentials | None) -> Connect:
    """asyncpg's `connect` for a pool (or a single connection): the DSN's own credentials
    without a secret; with one, the secret's, read again once if the server refuses them."""
    if credentials is None:
        plain: Connect = asyncpg.connect
        return plain

    async def connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
        user, password = await credentials.current()
        try:
            return await asyncpg.connect(*args, user=user, password=password, **kwargs)
        except LOGIN_REFUSED:
            fresh = await credentials.current(refresh=True)
            if fresh == (user, password):
                raise
            log.info("database credentials rotated; logging in with the new ones", user=fresh[0])
            return await asyncpg.connect(*args, user=fresh[0], password=fresh[1], **kwargs)

    return connect
