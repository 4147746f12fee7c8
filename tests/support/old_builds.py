"""Earlier builds of this service beside the current one: a build's `src/` taken from this
clone's history (`git archive`), for a rollout test to put first on a child's PYTHONPATH; and
what a build from before the outbox writes, written directly (for the status catch-up)."""

from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

REPOSITORY = Path(__file__).resolve().parents[2]


def source_at(commit: str, target: Path) -> Path:
    """`commit`'s `src/`, unpacked under `target`; skips the test when the clone's history
    does not hold it (a shallow clone)."""
    archive = subprocess.run(
        ["git", "-C", str(REPOSITORY), "archive", commit, "src"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        pytest.skip(f"build {commit[:7]} is not in this clone's history: {archive.stderr!r}")
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target / "src"


# What a build from before migration 0003 writes for each event of an order: the order's row
# and the event's record, never `last_sequence` nor an outbox row (migration 0007's triggers
# note such writes for the status catch-up).


async def old_build_places(conn: asyncpg.Connection, order_id: str) -> None:
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO orders (order_id, customer_id, status, currency, total_amount, "
            "placed_at, placed_event_id, placed_digest) "
            "VALUES ($1, 'cust-old', 'PLACED', 'EUR', 28.99, now(), $2, 'digest-old')",
            uuid.UUID(order_id),
            uuid.uuid4(),
        )
        await record_applied(conn, order_id, "order.placed")


async def old_build_pays(conn: asyncpg.Connection, order_id: str) -> None:
    await _old_build_changes(
        conn, order_id, "order.paid",
        "status = 'PAID', payment_id = 'pay-old', paid_amount = 28.99, paid_currency = 'EUR'",
    )  # fmt: skip


async def old_build_ships(conn: asyncpg.Connection, order_id: str) -> None:
    await _old_build_changes(
        conn, order_id, "order.shipped",
        "status = 'SHIPPED', carrier = 'DHL', tracking_number = 'TRK-old'",
    )  # fmt: skip


async def old_build_cancels(conn: asyncpg.Connection, order_id: str) -> None:
    await _old_build_changes(
        conn, order_id, "order.cancelled", "status = 'CANCELLED', cancel_reason = 'old build'"
    )


async def _old_build_changes(
    conn: asyncpg.Connection, order_id: str, event_type: str, assignments: str
) -> None:
    async with conn.transaction():
        await conn.execute(
            f"UPDATE orders SET {assignments}, updated_at = now() WHERE order_id = $1",
            uuid.UUID(order_id),
        )
        await record_applied(conn, order_id, event_type)


async def record_applied(conn: asyncpg.Connection, order_id: str, event_type: str) -> None:
    await conn.execute(
        "INSERT INTO order_events (event_id, order_id, event_type, outcome, occurred_at) "
        "VALUES ($1, $2, $3, 'applied', $4)",
        uuid.uuid4(),
        uuid.UUID(order_id),
        event_type,
        datetime.now(UTC),
    )
