"""Issue 26 item 5: the application's database credentials rotate under a running worker, as
Secrets Manager's alternating-users rotation does, with no restart, no pause, nothing
dead-lettered or lost. The worker reads the secret from the local endpoint (ministack) with
the production client code; the server checks the passwords (scram) of the two users."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import pytest

from order_service.adapters.sqs import SqsQueue
from order_service.metrics import Metrics
from tests import factories
from tests.support.database import execute, query
from tests.support.rotation_fixtures import ROTATING
from tests.support.waiting import wait_for


async def faults(worker: Any) -> float:
    samples = worker.metrics() or {}
    return sum(samples.get("order_service_system_faults_total", {}).values())


async def test_a_rotation_under_a_running_worker_pauses_nothing_and_loses_nothing(
    password_logins, secrets, database, postgres_server, sqs, e2e_queues, start_worker, status_topic
):
    base = f"rot_{uuid.uuid4().hex[:8]}"
    user_a, user_b = f"{base}_a", f"{base}_b"
    for user, password in ((user_a, "first-pass"), (user_b, "second-pass")):
        await execute(
            postgres_server.base_uri,
            f"CREATE ROLE {user} LOGIN PASSWORD '{password}' IN ROLE orders_app, {ROTATING}",
        )
    secret = await secrets.create_secret(
        Name=f"orders-app-{base}",
        SecretString=json.dumps({"username": user_a, "password": "first-pass"}),
    )
    # With its relay: its own connections log in with the secret too.
    worker = start_worker(
        DB_SECRET_ARN=secret["ARN"], LOG_LEVEL="INFO", ORDER_EVENTS_TOPIC_ARN=status_topic.arn
    )
    queue = SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics())

    async def applied(order_ids: list[str]) -> bool:
        rows = await query(
            database, "SELECT count(*) AS n FROM orders WHERE order_id = ANY($1::uuid[])", order_ids
        )
        return bool(rows[0]["n"] == len(order_ids))

    before = [str(uuid.uuid4()) for _ in range(5)]
    await queue.send(e2e_queues.url, [factories.body(factories.placed(o)) for o in before])
    await wait_for(lambda: applied(before), 30, "orders before the rotation")
    sessions = await query(
        postgres_server.base_uri,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE usename = $1",
        user_a,
    )
    assert sessions[0]["n"] >= 1  # the worker logged in with the secret's user

    # The rotation: the secret names the other user, whose password was just set; the next
    # rotation changes the first user's password. Connections already open stay open until the
    # pool recycles them (here: closed by the server while idle, as a failover would).
    await execute(postgres_server.base_uri, f"ALTER ROLE {user_b} PASSWORD 'third-pass'")
    await secrets.put_secret_value(
        SecretId=secret["ARN"],
        SecretString=json.dumps({"username": user_b, "password": "third-pass"}),
    )
    await execute(postgres_server.base_uri, f"ALTER ROLE {user_a} PASSWORD 'fourth-pass'")
    await execute(
        postgres_server.base_uri,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE usename = $1 AND state = 'idle'",
        user_a,
    )

    after = [str(uuid.uuid4()) for _ in range(20)]
    for chunk in (after[:10], after[10:]):
        await queue.send(e2e_queues.url, [factories.body(factories.placed(o)) for o in chunk])
    await wait_for(lambda: applied(after), 60, "orders after the rotation")
    assert await queue.depth(e2e_queues.dlq_url) == (0, 0)
    assert await faults(worker) == 0, worker.log_path.read_text()[-3000:]
    log = worker.log_path.read_text()
    assert "database credentials rotated" in log
    with_b = await query(
        postgres_server.base_uri,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE usename = $1",
        user_b,
    )
    assert with_b[0]["n"] >= 1

    async def all_published() -> bool:
        rows = await query(
            database, "SELECT count(*) AS n FROM order_outbox WHERE published_at IS NULL"
        )
        return bool(rows[0]["n"] == 0)

    await wait_for(all_published, 60, "the relay to publish every status event")
    relay = await query(
        database,
        "SELECT DISTINCT usename FROM pg_stat_activity "
        "WHERE application_name LIKE 'order-service-relay%' AND datname = current_database()",
    )
    # The relay logged in with the secret's users (the first one's sessions may stay open).
    assert relay and {r["usename"] for r in relay} <= {user_a, user_b}
    with pytest.raises(asyncpg.InvalidPasswordError):  # the server does check passwords
        await asyncpg.connect(postgres_server.base_uri, user=user_a, password="first-pass")


async def test_the_server_logs_in_with_a_password_set_by_its_verifier(
    password_logins, postgres_server
):
    """The form the migration sends (migrations/app_role.py) is one PostgreSQL accepts."""
    from order_service.migrations.app_role import scram_verifier

    user = f"rot_{uuid.uuid4().hex[:8]}_v"
    verifier = scram_verifier("the-password")
    await execute(
        postgres_server.base_uri,
        f"CREATE ROLE {user} LOGIN PASSWORD '{verifier}' IN ROLE {ROTATING}",
    )
    conn = await asyncpg.connect(postgres_server.base_uri, user=user, password="the-password")
    await conn.close()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(postgres_server.base_uri, user=user, password="another")


async def test_the_rotation_task_rotates_the_applications_users_under_a_running_worker(
    password_logins, secrets, database, postgres_server, sqs, e2e_queues, start_worker, worker_env
):
    """`order-service rotate-credentials`, as the scheduled task runs it, on the real pair
    (orders_app and revision 0008's orders_app_clone) while orders flow: a rotation, one killed
    after the password and before the secret, the run after it, and one more back to back.
    After each step the worker's sessions are closed so that it logs in again at once (as its
    pool does by itself with idle ones): in a quiet moment, since closing a session while a
    batch runs on it is a fault of its own (a failover), not the rotation's."""
    from order_service.migrations.app_role import APP_ROLE, APP_ROLE_CLONE
    from order_service.ops.rotate_credentials import rotate
    from tests.support.rotation_fixtures import Killed, KilledBeforeTheSecretIsWritten
    from tests.support.worker import cli

    # The real users' passwords are checked for this test (the clone as a member of APP_ROLE).
    await execute(postgres_server.base_uri, f"GRANT {ROTATING} TO {APP_ROLE}")
    await execute(postgres_server.base_uri, f"ALTER ROLE {APP_ROLE} LOGIN PASSWORD 'p-zero'")
    secret = await secrets.create_secret(
        Name=f"orders-app-{uuid.uuid4().hex[:8]}",
        SecretString=json.dumps({"username": APP_ROLE, "password": "p-zero"}),
    )
    arn = secret["ARN"]
    worker = start_worker(DB_SECRET_ARN=arn, LOG_LEVEL="INFO")
    queue = SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics())
    sent: list[str] = []
    sending = True
    quiet = asyncio.Event()  # set: the sender holds off

    async def send_all_along() -> None:
        while sending:
            if quiet.is_set():
                await asyncio.sleep(0.1)
                continue
            order = str(uuid.uuid4())
            await queue.send(e2e_queues.url, [factories.body(factories.placed(order))])
            sent.append(order)
            await asyncio.sleep(0.1)

    async def all_applied() -> bool:
        rows = await query(
            database, "SELECT count(*) AS n FROM orders WHERE order_id = ANY($1::uuid[])", sent
        )
        return bool(rows[0]["n"] == len(sent))

    async def named() -> str:
        value = await secrets.get_secret_value(SecretId=arn)
        return str(json.loads(value["SecretString"])["username"])

    async def new_logins() -> None:
        quiet.set()
        await wait_for(all_applied, 60, "the orders sent so far")
        await execute(
            postgres_server.base_uri,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE usename = ANY($1::text[]) AND state = 'idle'",
            [APP_ROLE, APP_ROLE_CLONE],
        )
        quiet.clear()
        mark = len(sent)
        await wait_for(lambda: len(sent) >= mark + 5, 30, "more orders sent")
        await wait_for(all_applied, 60, "the orders sent so far")

    async def rotate_task() -> None:
        done = await asyncio.to_thread(
            cli, "rotate-credentials", env={**worker_env, "DB_SECRET_ARN": arn}
        )
        assert done.returncode == 0, done.stderr

    sender = asyncio.create_task(send_all_along())
    try:
        await wait_for(lambda: len(sent) >= 5, 30, "the first orders sent")
        await wait_for(all_applied, 60, "the first orders")

        await rotate_task()  # orders_app -> orders_app_clone
        assert await named() == APP_ROLE_CLONE
        await new_logins()

        with pytest.raises(Killed):  # orders_app gets a password nobody knows; secret as was
            await rotate(database, KilledBeforeTheSecretIsWritten(arn, "us-east-1"))
        assert await named() == APP_ROLE_CLONE
        await new_logins()  # the worker's cached orders_app login is refused: it reads again
        clone_sessions = await query(
            postgres_server.base_uri,
            "SELECT count(*) AS n FROM pg_stat_activity WHERE usename = $1",
            APP_ROLE_CLONE,
        )
        assert clone_sessions[0]["n"] >= 1

        await rotate_task()  # recovers: orders_app gets a new password the secret names
        assert await named() == APP_ROLE
        await new_logins()
        await rotate_task()  # back to back: orders_app_clone again
        assert await named() == APP_ROLE_CLONE
        await new_logins()
    finally:
        sending = False
        await sender

    await wait_for(all_applied, 60, "every order sent")
    assert len(sent) >= 20
    assert await queue.depth(e2e_queues.dlq_url) == (0, 0)
    log = worker.log_path.read_text()
    not_batches = [line for line in log.splitlines() if '"event": "batch"' not in line]
    assert await faults(worker) == 0, "\n".join(not_batches)[-4000:]
    assert "database credentials rotated" in log
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(postgres_server.base_uri, user=APP_ROLE, password="p-zero")
