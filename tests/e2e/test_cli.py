"""The command line as users run it: as a process, against the real endpoints."""

from __future__ import annotations

import json
import os

from order_service.adapters.sqs import SqsQueue
from order_service.entrypoints.local_servers import free_port
from order_service.metrics import Metrics
from tests.factories import body, placed
from tests.support.worker import cli


def test_a_malformed_setting_is_one_line_and_exit_2(worker_env):
    result = cli("migrate", env={**worker_env, "HEALTH_PORT": "eighty"})
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "HEALTH_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_queue_url_is_one_line_and_exit_2(worker_env):
    env = {k: v for k, v in worker_env.items() if k != "SQS_QUEUE_URL"}
    result = cli("worker", env=env)
    assert result.returncode == 2 and "SQS_QUEUE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_rotate_credentials_without_a_secret_or_with_a_bad_one_is_one_line(worker_env):
    result = cli("rotate-credentials", env=worker_env)
    assert result.returncode == 2 and "DB_SECRET_ARN" in result.stderr
    missing = "arn:aws:secretsmanager:us-east-1:000000000000:secret:nothing-here-AbCdEf"
    result = cli("rotate-credentials", env={**worker_env, "DB_SECRET_ARN": missing})
    assert result.returncode == 1 and "Secrets Manager refused get_secret_value" in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr


def test_migrate_refuses_an_app_user_that_is_not_one_of_the_two(worker_env):
    result = cli("migrate", env={**worker_env, "APP_DB_USER": "postgres"})
    assert result.returncode == 2 and "APP_DB_USER" in result.stderr


def test_healthcheck_exit_code_follows_health(start_worker, worker_env):
    assert cli("healthcheck", "--port", "1", env=worker_env).returncode == 1
    worker = start_worker(WORKER_MODE="dummy")
    assert cli("healthcheck", env={**worker_env, "HEALTH_PORT": str(worker.port)}).returncode == 0


async def test_send_then_dlq_inspect_and_redrive_never_lose_a_message(
    sqs, e2e_queues, worker_env, tmp_path
):
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join([body(placed()), "not json", body(placed())]) + "\n")
    assert cli("send", "--file", str(events), env=worker_env).returncode == 0
    queue = SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics())
    assert (await queue.depth(e2e_queues.url))[0] == 3

    # Move everything to the DLQ as an operator would find it, then inspect and redrive it.
    moved = []
    while len(moved) < 3:
        moved += await queue.receive(10, 1)
    for m in moved:
        assert await queue.send_to_dlq(m, "test reason")
    await queue.delete(moved)

    inspected = cli("dlq", "inspect", "--max", "10", env=worker_env)
    lines = [json.loads(line) for line in inspected.stdout.splitlines()]
    assert lines[-1] == {"shown": 3}
    assert {line["attributes"]["invalid_reason"] for line in lines[:-1]} == {"test reason"}

    redriven = cli("dlq", "redrive", env=worker_env)
    assert redriven.returncode == 0, redriven.stderr
    # ministack has no StartMessageMoveTask: the receive-send-delete fallback ran.
    assert json.loads(redriven.stdout.splitlines()[-1]) == {"moved": 3}
    assert (await queue.depth(e2e_queues.dlq_url)) == (0, 0)
    assert (await queue.depth(e2e_queues.url))[0] == 3


def test_send_generates_a_synthetic_stream(sqs, e2e_queues, worker_env):
    result = cli("send", "--orders", "20", "--invalid-rate", "0", env=worker_env)
    assert result.returncode == 0 and "sent" in result.stderr


def test_help_lists_every_command():
    result = cli("--help", env=dict(os.environ))
    for command in (
        "worker",
        "migrate",
        "rotate-credentials",
        "healthcheck",
        "send",
        "dlq",
        "dev",
        "ops",
    ):
        assert command in result.stdout


async def test_dlq_redrive_fallback_keeps_each_message_attributes(sqs, e2e_queues, worker_env):
    queue = SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics())
    bodies = [body(placed()) for _ in range(12)]  # more than one batch of 10
    await queue.send(e2e_queues.url, bodies)
    received = []
    while len(received) < len(bodies):
        received += await queue.receive(10, 1)
    for n, m in enumerate(received):
        assert await queue.send_to_dlq(m, f"reason {n}")
    await queue.delete(received)
    expected = {
        m.body: {"invalid_reason": f"reason {n}", "source_message_id": m.message_id}
        for n, m in enumerate(received)
    }

    redriven = cli("dlq", "redrive", env=worker_env)
    assert redriven.returncode == 0, redriven.stderr
    assert json.loads(redriven.stdout.splitlines()[-1]) == {"moved": len(bodies)}

    found: dict[str, dict[str, str]] = {}
    while len(found) < len(bodies):
        response = await sqs.receive_message(
            QueueUrl=e2e_queues.url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
        )
        for m in response.get("Messages", []):
            attributes = m.get("MessageAttributes", {})
            found[m["Body"]] = {k: v["StringValue"] for k, v in attributes.items()}
    assert found == expected


def test_dlq_commands_against_an_unreachable_endpoint_say_so_in_one_line(worker_env):
    env = {**worker_env, "AWS_ENDPOINT_URL_SQS": f"http://127.0.0.1:{free_port()}"}
    for command in (("dlq", "inspect"), ("dlq", "redrive")):
        result = cli(*command, env=env)
        assert result.returncode == 1, (command, result.stderr)
        assert result.stderr.startswith("order-service: "), (command, result.stderr)
        assert result.stderr.strip().count("\n") == 0, (command, result.stderr)
        assert "Traceback" not in result.stderr


async def test_send_group_by_customer_sets_each_orders_customer_as_the_group(
    sqs, e2e_queues, worker_env
):
    result = cli(
        "send", "--orders", "5", "--invalid-rate", "0", "--group-by", "customer", env=worker_env
    )
    assert result.returncode == 0 and "grouped by customer" in result.stderr
    queue = SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics())
    received = []
    for _ in range(20):
        received += await queue.receive(10, 1)
        if (await queue.depth(e2e_queues.url))[0] == 0:
            break
    customers: dict[str, str] = {}
    for m in received:
        event = json.loads(m.body)
        if event["event_type"] == "order.placed":
            customers[event["order_id"]] = event["data"]["customer_id"]
    assert customers and all(m.group_id for m in received)
    assert {m.group_id for m in received} == set(customers.values())
    for m in received:
        assert m.group_id == customers[json.loads(m.body)["order_id"]]
