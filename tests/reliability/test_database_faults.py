"""A broken database is never the messages' fault: the real worker against a database that is
unmigrated, read-only, lacking a privilege, refusing connections or our role, timing out on a
lock, rejecting every write, or blackholed. Each run: nothing lost, nothing applied twice, no
valid event in the DLQ, /health 200 throughout, /ready 503 during the fault and 200 after."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from alembic.script import ScriptDirectory

from order_service.adapters.migrations import _config, shipped_revisions, upgrade
from order_service.generator import generate
from tests.reliability.harness import FULL, VISIBILITY, assert_invariants, measure, runs, send
from tests.reliability.model import expected_state
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e_queues(visibility=VISIBILITY)]

ORDERS = 400 if FULL else 80
HOLD = 20 if FULL else 3  # seconds the fault stays in place once the worker has met it


def stream(seed: int, orders: int = ORDERS) -> list[str]:
    return generate(orders, seed=seed, out_of_order_rate=0.2, invalid_rate=0.01).bodies


def database_name(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


def with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


def with_user(dsn: str, user: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


async def admin(dsn: str, *statements: str) -> None:
    """Runs statements as the superuser, from the server's maintenance database (the
    worker's own database may be refusing connections)."""
    conn = await asyncpg.connect(with_database(dsn, "postgres"))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def terminate_sessions(dsn: str) -> None:
    """What a failover or an operator does: every session of the worker's database ends."""
    name = database_name(dsn)
    await admin(
        dsn,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
    )


async def ready_failing(worker) -> str:
    """Waits until /ready answers 503 and returns its reason for the database."""
    reason: list[str] = []

    async def failing() -> bool:
        status, body = await asyncio.to_thread(worker.get, "/ready")
        failing = (body or {}).get("failing", {}) if status == 503 else {}
        if "first probe" in failing.get("database", "first probe"):
            return False  # not met the fault yet
        reason.append(failing["database"])
        return True

    await wait_for(failing, 60, "/ready to answer 503 for the database")
    return reason[-1]


async def healthy_for(worker, seconds: float) -> None:
    """/health answers 200 every time it is asked during `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status, body = await asyncio.to_thread(worker.get, "/health")
        assert status == 200, body
        await asyncio.sleep(0.25)


async def ready_again(worker) -> None:
    async def ready() -> bool:
        return (await asyncio.to_thread(worker.get, "/ready"))[0] == 200

    await wait_for(ready, 60, "/ready to answer 200 again")


def fault_errors(worker) -> list[dict]:
    lines = [
        json.loads(line) for line in worker.log_path.read_text().splitlines() if line[:1] == "{"
    ]
    return [
        r for r in lines if r.get("level") == "error" and r["event"].startswith("database fault")
    ]


async def fault_run(
    scenario: str,
    database: str,
    sqs,
    e2e_queues,
    worker,
    bodies: list[str],
    *,
    start: Callable[[], Awaitable[None]],
    end: Callable[[], Awaitable[None]],
    hold: float = HOLD,
) -> tuple[str, object]:
    """First wave drained, fault in place, second wave sent (the worker meets the fault), held,
    ended; then the invariants. Returns /ready's reason during the fault."""
    first, second = bodies[: len(bodies) // 2], bodies[len(bodies) // 2 :]
    queue = await send(sqs, e2e_queues, first)
    await wait_progress_of(database, first)
    await start()
    await queue.send(e2e_queues.url, second)
    reason = await ready_failing(worker)
    await healthy_for(worker, hold)
    await end()
    fault_at = time.monotonic()
    await ready_again(worker)
    figures = await measure(scenario, "-", database, queue, bodies, fault_at=fault_at)
    assert_invariants(figures)
    assert figures.dlq_mismatch == 0  # no valid event in the DLQ, every invalid one there
    await healthy_for(worker, 0.5)
    return reason, figures


async def wait_progress_of(dsn: str, bodies: list[str]) -> None:
    from tests.reliability.harness import recorded

    total = len(expected_state(bodies).event_ids)

    async def most() -> bool:
        return await recorded(dsn) >= total * 0.8

    await wait_for(most, 60, "the first wave")


async def migration_run(
    scenario: str, dsn: str, sqs, e2e_queues, worker, bodies: list[str], *, reason: str, migrate
) -> None:
    """A worker on a schema it cannot use: it takes nothing (however long it waits) and says
    why, then drains by itself once `migrate` has run."""
    assert reason in await ready_failing(worker)
    queue = await send(sqs, e2e_queues, bodies)
    await healthy_for(worker, HOLD)
    assert await queue.depth(e2e_queues.url) == (len(bodies), 0)  # nothing taken meanwhile
    await migrate()
    fault_at = time.monotonic()
    await ready_again(worker)
    assert_invariants(await measure(scenario, "-", dsn, queue, bodies, fault_at=fault_at))


@pytest.mark.parametrize("run", runs(1, 2))
async def test_worker_started_before_the_migrations_waits_for_them(
    run, sqs, e2e_queues, empty_database, start_worker, fast_env
):
    async def migrate() -> None:  # the command the ERROR line names
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "order_service.entrypoints.cli", "migrate"],
            env={**os.environ, "DATABASE_URL": empty_database},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr

    worker = start_worker(DATABASE_URL=empty_database, **fast_env)
    await migration_run(
        "worker started before the migrations",
        empty_database,
        sqs,
        e2e_queues,
        worker,
        stream(1100 + run),
        reason="revision none",
        migrate=migrate,
    )
    assert "order-service migrate" in fault_errors(worker)[0]["action"]


@pytest.mark.parametrize("run", runs(1, 2))
async def test_a_schema_one_revision_behind_waits_for_the_migration(
    run, sqs, e2e_queues, empty_database, start_worker, fast_env
):
    head, _ = shipped_revisions()
    behind = ScriptDirectory.from_config(_config("")).get_revision(head).down_revision
    assert isinstance(behind, str)  # the build ships at least two revisions
    await asyncio.to_thread(upgrade, empty_database, behind)
    worker = start_worker(DATABASE_URL=empty_database, **fast_env)
    await migration_run(
        "schema one revision behind",
        empty_database,
        sqs,
        e2e_queues,
        worker,
        stream(1150 + run),
        reason=f"revision {behind}, this worker needs {head}",
        migrate=lambda: asyncio.to_thread(upgrade, empty_database),
    )


async def set_read_only(dsn: str, on: bool) -> None:
    """What a failover does to the old writer, and undoes on the new one: every session ends."""
    name = database_name(dsn)
    change = (
        "SET default_transaction_read_only = on" if on else "RESET default_transaction_read_only"
    )
    await admin(dsn, f'ALTER DATABASE "{name}" {change}')
    await terminate_sessions(dsn)


@pytest.mark.parametrize("run", runs(1, 2))
async def test_database_read_only_for_a_while_as_in_a_failover(
    run, sqs, e2e_queues, database, start_worker, fast_env
):
    worker = start_worker(**fast_env)

    reason, _ = await fault_run(
        "database read-only, then writable",
        database,
        sqs,
        e2e_queues,
        worker,
        stream(1200 + run),
        start=lambda: set_read_only(database, True),
        end=lambda: set_read_only(database, False),
    )
    assert "read-only" in reason
    errors = fault_errors(worker)
    assert any(e.get("sqlstate") == "25006" and e.get("action") for e in errors), errors
    assert len(errors) <= 4  # said once per fault, not once per message


@pytest.fixture
async def app_role(database) -> AsyncIterator[str]:
    """A non-superuser application role with what a batch needs, as the migrations grant it."""
    role = f"app_{uuid.uuid4().hex[:10]}"
    await admin(database, f"CREATE ROLE {role} LOGIN")
    conn = await asyncpg.connect(database)
    try:
        await conn.execute(f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {role}")
    finally:
        await conn.close()
    yield role
    conn = await asyncpg.connect(database)
    try:
        await conn.execute(f"DROP OWNED BY {role}")
    finally:
        await conn.close()
    await terminate_sessions(database)
    await admin(database, f"DROP ROLE IF EXISTS {role}")


@pytest.mark.parametrize("run", runs(1, 2))
async def test_a_privilege_revoked_then_granted_back(
    run, sqs, e2e_queues, database, app_role, start_worker, fast_env
):
    worker = start_worker(DATABASE_URL=with_user(database, app_role), **fast_env)

    async def on_worker_db(statement: str) -> None:
        conn = await asyncpg.connect(database)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    reason, _ = await fault_run(
        "privilege revoked, then granted",
        database,
        sqs,
        e2e_queues,
        worker,
        stream(1300 + run),
        start=lambda: on_worker_db(f"REVOKE INSERT ON order_events FROM {app_role}"),
        end=lambda: on_worker_db(f"GRANT INSERT ON order_events TO {app_role}"),
    )
    assert "permission denied" in reason or "privilege" in reason


@pytest.mark.parametrize("refusal", ["database not accepting connections", "role may not log in"])
@pytest.mark.parametrize("run", runs(1, 2))
async def test_the_database_refusing_new_connections_for_a_while(
    run, refusal, sqs, e2e_queues, database, app_role, start_worker, fast_env
):
    name = database_name(database)
    worker = start_worker(DATABASE_URL=with_user(database, app_role), **fast_env)
    if refusal == "database not accepting connections":
        refuse = f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'
        allow = f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'
    else:
        refuse, allow = f"ALTER ROLE {app_role} NOLOGIN", f"ALTER ROLE {app_role} LOGIN"

    async def start() -> None:
        await admin(database, refuse)
        await terminate_sessions(database)

    reason, _ = await fault_run(
        refusal,
        database,
        sqs,
        e2e_queues,
        worker,
        stream(1400 + run),
        start=start,
        end=lambda: admin(database, allow),
    )
    assert "not" in reason  # "not currently accepting connections" / "not permitted to log in"


@pytest.mark.parametrize("timeout", ["lock_timeout", "statement_timeout"])
@pytest.mark.parametrize("run", runs(1, 2))
async def test_a_timeout_on_the_database_while_a_long_lock_is_held(
    run, timeout, sqs, e2e_queues, database, start_worker, fast_env
):
    name = database_name(database)
    await admin(database, f"ALTER DATABASE \"{name}\" SET {timeout} = '500ms'")
    worker = start_worker(**fast_env)
    holder: list[asyncpg.Connection] = []

    async def lock() -> None:
        conn = await asyncpg.connect(database)
        await conn.execute(
            "BEGIN; SET LOCAL lock_timeout = 0; SET LOCAL statement_timeout = 0;"
            " LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"
        )
        holder.append(conn)

    async def release() -> None:
        await holder[0].execute("COMMIT")
        await holder[0].close()

    reason, _ = await fault_run(
        f"{timeout} while a long lock is held",
        database,
        sqs,
        e2e_queues,
        worker,
        stream(1500 + run),
        start=lock,
        end=release,
    )
    assert "timeout" in reason or "cancel" in reason


@pytest.mark.parametrize("run", runs(1, 2))
async def test_a_database_that_refuses_every_order_is_not_the_orders_fault(
    run, sqs, e2e_queues, database, start_worker, fast_env
):
    """A trigger raising on every insert (its SQLSTATE could be a message's): the probe's
    known-good batch fails too, so nothing is dead-lettered."""
    worker = start_worker(**fast_env)

    async def on_worker_db(sql: str) -> None:
        conn = await asyncpg.connect(database)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    refuse = """
        CREATE FUNCTION refuse_all() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'maintenance: no new orders'; END $$;
        CREATE TRIGGER refuse_all BEFORE INSERT ON order_events
            FOR EACH STATEMENT EXECUTE FUNCTION refuse_all();
    """
    reason, _ = await fault_run(
        "a trigger refusing every write",
        database,
        sqs,
        e2e_queues,
        worker,
        stream(1600 + run),
        start=lambda: on_worker_db(refuse),
        end=lambda: on_worker_db("DROP TRIGGER refuse_all ON order_events"),
    )
    assert "known-good" in reason


@pytest.mark.parametrize("run", runs(1, 2))
async def test_a_fault_longer_than_the_redrive_budget_sends_nothing_to_the_dlq(
    run, sqs, e2e_queues, database, start_worker, fast_env
):
    """Held for more than maxReceiveCount (5) x the visibility timeout: received messages stay
    in flight under the heartbeat, the rest are not received, no receive is spent."""
    worker = start_worker(**fast_env)

    await fault_run(
        f"fault held {6 * VISIBILITY} s (5 receives x {VISIBILITY} s visibility)",
        database,
        sqs,
        e2e_queues,
        worker,
        stream(1700 + run),
        start=lambda: set_read_only(database, True),
        end=lambda: set_read_only(database, False),
        hold=6 * VISIBILITY,
    )


@pytest.mark.parametrize("run", runs(1, 3))
async def test_sigterm_while_the_database_is_blackholed_exits_within_the_grace(
    run, sqs, e2e_queues, database, pg_proxy, start_worker, fast_env
):
    grace = 10
    worker = start_worker(DATABASE_URL=pg_proxy.dsn, SHUTDOWN_GRACE_SECONDS=str(grace), **fast_env)
    bodies = stream(1800 + run)
    first, second = bodies[: len(bodies) // 2], bodies[len(bodies) // 2 :]
    queue = await send(sqs, e2e_queues, first)
    await wait_progress_of(database, first)
    pg_proxy.blackholed = True
    await queue.send(e2e_queues.url, second)
    await asyncio.sleep(2)  # batches under way against a server that never answers
    worker.signal(signal.SIGTERM)
    stopped = time.monotonic()
    assert await asyncio.to_thread(worker.wait, grace + 20) == 0
    assert time.monotonic() - stopped < grace + 2  # gone before ECS's stop timeout
    pg_proxy.blackholed = False
    fault_at = time.monotonic()
    start_worker(**fast_env)  # straight to the database
    assert_invariants(
        await measure(
            "SIGTERM while the database is blackholed",
            "-",
            database,
            queue,
            bodies,
            fault_at=fault_at,
        )
    )


@pytest.mark.parametrize("run", runs(1, 3))
async def test_sigterm_while_messages_arrive_leaves_none_hidden(
    run, sqs, e2e_queues, database, start_worker, fast_env
):
    bodies = [
        b
        for b in generate(300, seed=1900 + run, duplicate_rate=0, invalid_rate=0).bodies
        if json.loads(b)["event_type"] == "order.placed"  # never deferred: hidden means lost
    ]
    worker = start_worker(**fast_env)
    queue = await send(sqs, e2e_queues, bodies[:20])
    sent = 20
    stopped_at: float | None = None
    while sent < len(bodies):
        await queue.send(e2e_queues.url, bodies[sent : sent + 10])
        sent += 10
        await asyncio.sleep(0.05)
        if stopped_at is None and sent >= len(bodies) // 2:
            worker.signal(signal.SIGTERM)
            stopped_at = time.monotonic()
    assert await asyncio.to_thread(worker.wait, 30) == 0
    visible, hidden = await queue.depth(e2e_queues.url)
    assert hidden == 0, f"{hidden} messages hidden after the worker exited ({visible} visible)"
    start_worker(**fast_env)
    assert_invariants(
        await measure(
            "SIGTERM while messages arrive", "-", database, queue, bodies, fault_at=time.monotonic()
        )
    )


@pytest.mark.parametrize(("pollers", "max_in_flight"), [(4, 10), (16, 30)])
async def test_max_in_flight_small_against_pollers_still_processes_everything(
    pollers, max_in_flight, sqs, e2e_queues, database, start_worker, fast_env
):
    bodies = stream(2000 + pollers)
    queue = await send(sqs, e2e_queues, bodies)
    start_worker(POLLERS=str(pollers), MAX_IN_FLIGHT=str(max_in_flight), **fast_env)
    assert_invariants(
        await measure(
            f"MAX_IN_FLIGHT {max_in_flight} with {pollers} pollers",
            "-",
            database,
            queue,
            bodies,
            fault_at=time.monotonic(),
        )
    )
