"""`order-service rotate-credentials`: a new password for the application, with alternating users.

Run as a one-off ECS task on a schedule (infra/order_infra/credential_rotation.py), with the
master user's credentials (DB_USER/DB_PASSWORD, injected like the migration task's) and the
application secret's ARN (DB_SECRET_ARN), which it reads and writes itself. One run:

1. takes the fleet-wide lock the migrations take: one change to the roles at a time, so two
   runs (a schedule may fire twice) or a run and a migration never interleave;
2. reads the application secret: it names the user the application logs in as now, one of
   the two alternating users (migrations/app_role.py);
3. sets a new random password on the *other* user (as a SCRAM verifier, never in clear);
4. logs in as that user with it, through the same host, port and TLS as the application;
5. writes a new version of the secret naming that user and password (AWSCURRENT; the one it
   replaces becomes AWSPREVIOUS).

The user the secret named keeps its password: a worker whose cached copy still names it logs
in as before, and one whose login is refused reads the secret again at once
(adapters/db_credentials.py). A run stopped anywhere before step 5 changed only the password
of a user nobody logs in as: the secret still names the other one, and the next run starts
again from step 2 (with the same user and a new password). After step 5 the rotation is done.
"""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from order_service.adapters.migrations import MIGRATION_LOCK_ID
from order_service.errors import RotationFailed
from order_service.migrations.app_role import (
    ALTERNATING_ROLES,
    ROLE_SETTING,
    SET_PASSWORD,
    VERIFIER_SETTING,
    scram_verifier,
)

PASSWORD_LENGTH = 40  # as the stack's generated first password (infra database.py)
PASSWORD_ALPHABET = string.ascii_letters + string.digits  # URI- and shell-safe, ASCII (SCRAM)
# A migration holds the lock for its whole run (at most the deploy's 900 s): wait that long,
# then give up rather than keep a task running.
LOCK_TIMEOUT = "900s"


class AppSecret(Protocol):
    """The application secret: RDS's JSON, at least `username` and `password`."""

    async def read(self) -> dict[str, Any]: ...

    async def write(self, value: dict[str, Any]) -> None: ...


class SecretsManagerAppSecret:
    """The secret in Secrets Manager (AWS_ENDPOINT_URL_SECRETS_MANAGER and the SDK's
    credentials chain apply)."""

    def __init__(self, secret_id: str, region: str) -> None:
        self._secret_id = secret_id
        self._region = region

    async def read(self) -> dict[str, Any]:
        response = await self._call("get_secret_value", SecretId=self._secret_id)
        try:
            value = json.loads(response["SecretString"])
            if isinstance(value, dict) and {"username", "password"} <= value.keys():
                return value
        except (KeyError, TypeError, ValueError):
            pass
        raise RotationFailed(
            f"the application secret {self._secret_id} is not RDS's JSON with username and "
            "password: nothing changed"
        )

    async def write(self, value: dict[str, Any]) -> None:
        await self._call(
            "put_secret_value", SecretId=self._secret_id, SecretString=json.dumps(value)
        )

    async def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            async with get_session().create_client(
                "secretsmanager", region_name=self._region
            ) as client:
                return await getattr(client, operation)(**kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise RotationFailed(
                f"Secrets Manager refused {operation} on {self._secret_id}: {exc} (check the "
                "task role's grants on the application secret)"
            ) from exc


@dataclass(frozen=True)
class Rotation:
    previous: str  # the user the secret named; its password is unchanged
    current: str  # the user the secret names now, with a new password


def new_password() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


def other_user(user: str, users: tuple[str, str]) -> str:
    """The alternating user the secret does not name."""
    if user not in users:
        raise RotationFailed(
            f"the application secret names {user!r}, not one of the alternating users "
            f"{users}: nothing changed (set its username to {users[0]})"
        )
    return users[1] if user == users[0] else users[0]


async def rotate(
    master_dsn: str, secret: AppSecret, *, users: tuple[str, str] = ALTERNATING_ROLES
) -> Rotation:
    """One rotation (the module's steps), as the owner at `master_dsn`. `users`: the two
    alternating users (tests use their own pair)."""
    try:
        owner = await asyncpg.connect(master_dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        raise RotationFailed(f"cannot connect as the database owner: {exc}") from exc
    try:
        # The lock is the session's: it goes with the connection, however the run ends.
        await owner.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        try:
            await owner.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
        except asyncpg.LockNotAvailableError:
            raise RotationFailed(
                f"a migration or another rotation held the roles' lock for {LOCK_TIMEOUT}: "
                "nothing changed"
            ) from None
        current = await secret.read()
        previous = str(current["username"])
        user = other_user(previous, users)
        if not await owner.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", user):
            raise RotationFailed(
                f"the database has no role {user!r}: run `order-service migrate` (revision "
                "0008 creates it); nothing changed"
            )
        password = new_password()
        async with owner.transaction():
            await owner.execute(
                f"SELECT set_config('{ROLE_SETTING}', $1, true), "
                f"set_config('{VERIFIER_SETTING}', $2, true)",
                user,
                scram_verifier(password),
            )
            await owner.execute(SET_PASSWORD)
        await _check_login(master_dsn, user, password)
        await secret.write({**current, "username": user, "password": password})
        return Rotation(previous=previous, current=user)
    finally:
        await owner.close()


async def _check_login(dsn: str, user: str, password: str) -> None:
    """The new login works the way the application's will (same host, port, database, TLS)."""
    try:
        conn = await asyncpg.connect(dsn, user=user, password=password)
    except (OSError, asyncpg.PostgresError) as exc:
        raise RotationFailed(
            f"{user} cannot log in with its new password ({exc}); the secret still names the "
            "other user, whose password is unchanged"
        ) from exc
    try:
        who = await conn.fetchval("SELECT current_user")
    finally:
        await conn.close()
    if who != user:
        raise RotationFailed(f"logged in as {who}, not {user}: the secret is left as it was")
