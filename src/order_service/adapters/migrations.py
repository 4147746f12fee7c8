"""Running the Alembic migrations programmatically against one DSN."""

from __future__ import annotations

import asyncio
import functools

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATION_LOCK_ID = 7_201_775_903  # any constant shared by every migration run


def _config(dsn: str, app_role_password: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "order_service:migrations")
    config.attributes["dsn"] = dsn
    config.attributes["app_role_password"] = app_role_password
    return config


def upgrade(dsn: str, revision: str = "head", *, app_role_password: str | None = None) -> None:
    """Blocking: env.py runs its own event loop. Idempotent; safe to run concurrently.

    With `app_role_password`, the application role (revision 0002) logs in with it from then on:
    set on every run, so a rotated application secret needs only the next migration.
    """
    command.upgrade(_config(dsn, app_role_password), revision)


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
