"""Running the Alembic migrations programmatically against one DSN."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from order_service.errors import OrderServiceError
from order_service.migrations.app_role import APP_ROLE, check_role

# (user, password) of the application secret, read when called.
AppCredentials = Callable[[], Awaitable[tuple[str, str]]]
MIGRATION_LOCK_ID = 7_201_775_903  # any constant shared by every migration run
# How long one statement of a migration waits for a table lock before it gives way to the
# workers queued behind it, and the pauses between tries: about 1.5 minutes in all, well
# within the deploy's MIGRATION_TIMEOUT_SECONDS (900 s), before the deploy fails.
LOCK_TIMEOUT = "5s"
LOCK_RETRY_DELAYS: tuple[float, ...] = (2, 4, 8, 15, 30)


class MigrationBlocked(OrderServiceError):
    """A migration could not take its table locks: other sessions held them too long."""


def blockers_query() -> str:
    """The other sessions holding locks on this schema's tables, longest transaction first."""
    return r"""
        SELECT a.pid, a.usename, a.application_name, a.state,
               extract(epoch FROM clock_timestamp() - a.xact_start)::int AS seconds,
               left(regexp_replace(a.query, '\s+', ' ', 'g'), 120) AS query,
               string_agg(DISTINCT c.relname, ',') AS tables
        FROM pg_locks l
        JOIN pg_stat_activity a ON a.pid = l.pid
        JOIN pg_class c ON c.oid = l.relation
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE l.locktype = 'relation' AND l.granted AND a.pid <> pg_backend_pid()
          AND n.nspname = current_schema() AND c.relkind IN ('r', 'p')
        GROUP BY a.pid, a.usename, a.application_name, a.state, a.xact_start, a.query
        ORDER BY a.xact_start NULLS LAST
        LIMIT 3
    """


def describe_blockers(rows: Sequence[Any]) -> str:
    """One line: who holds what, for how long, doing what (from `blockers_query`)."""
    if not rows:
        return "no session holds a lock now (the holder has gone: run the migration again)"
    return "; ".join(
        f"pid {r.pid} ({r.usename or '?'}, {r.application_name or 'no application_name'}, "
        f"{r.state}, transaction open {r.seconds} s) on {r.tables}: {r.query!r}"
        for r in rows
    )


def _config(
    dsn: str,
    app_role_password: str | None = None,
    lock_retry_delays: Sequence[float] | None = None,
    app_role: str = APP_ROLE,
) -> Config:
    config = Config()
    config.set_main_option("script_location", "order_service:migrations")
    config.attributes["dsn"] = dsn
    config.attributes["app_role_password"] = app_role_password
    config.attributes["app_role"] = app_role
    if lock_retry_delays is not None:
        config.attributes["lock_retry_delays"] = tuple(lock_retry_delays)
    return config


def upgrade(
    dsn: str,
    revision: str = "head",
    *,
    app_role_password: str | None = None,
    app_role: str = APP_ROLE,
    app_credentials: AppCredentials | None = None,
    lock_retry_delays: Sequence[float] | None = None,
    version_locations: Sequence[str] = (),
) -> None:
    """Blocking: env.py runs its own event loop. Idempotent; safe to run concurrently.

    With `app_role_password`, `app_role` (the application secret's user: one of the two
    alternating users, migrations/app_role.py) logs in with it from then on; the other user's
    password is left as it is. With `app_credentials` (the application secret, DB_SECRET_ARN),
    the user and password are read from it once the migrations' lock is held, the lock the
    rotation takes too: a value read before the wait for it may be rotations old.
    `lock_retry_delays` and `version_locations` (more revisions on top of the package's) are
    for tests.
    """
    config = _config(dsn, app_role_password, lock_retry_delays, check_role(app_role))
    config.attributes["app_credentials"] = app_credentials
    if version_locations:
        script = ScriptDirectory.from_config(config)
        shipped = str(Path(script.dir) / "versions")
        config.set_main_option("path_separator", "os")
        config.set_main_option("version_locations", os.pathsep.join([shipped, *version_locations]))
    command.upgrade(config, revision)


async def upgrade_async(dsn: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, dsn, revision)


@functools.cache
def shipped_revisions() -> tuple[str, frozenset[str]]:
    """The Alembic head this build needs, and every revision it knows (the head's ancestors)."""
    script = ScriptDirectory.from_config(_config(""))
    head = script.get_current_head()
    if head is None:
        raise RuntimeError("the package ships no migrations")
    return head, frozenset(r.revision for r in script.walk_revisions())
