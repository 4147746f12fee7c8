"""Running the Alembic migrations programmatically against one DSN."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.config import Config

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
