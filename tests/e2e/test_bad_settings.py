"""A bad setting stops the real `order-service worker` process at once: exit code 2, one line on
stderr naming the variable and what it must be, and the queue untouched."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from order_service.adapters.sqs import SqsQueue
from order_service.metrics import Metrics
from tests.factories import body, placed

SAME_AS_QUEUE = "<the test queue's own URL>"
PORT_IN_USE = "<a port this test holds open>"
DB = "postgresql://app@db"


def case(variable: str, value: str, says: str, **others: str | None) -> Any:
    """`variable` set to `value` (and `others` set, or unset when None): the one line on stderr
    must name `variable` and say `says` (what the value must be)."""
    extra = f" with {others}" if others else ""
    return pytest.param(variable, value, says, others, id=f"{variable}={value!r}{extra}")


CASES = [
    case("DATABASE_URL", "", "postgresql://"),
    case("DATABASE_URL", "garbage", "postgresql://"),
    case("DATABASE_URL", "mysql://app@db/orders", "postgresql://"),
    case("DATABASE_URL", f"{DB}/orders?sslmode=bogus", "verify-full"),
    case("DATABASE_URL", f"{DB}:abc/orders", "1 to 65535"),
    case("DATABASE_URL", "postgresql:///orders", "no host"),
    case("DATABASE_URL", f"{DB}:5432", "no database"),
    case("DATABASE_URL", f"{DB}/orders?connect_timeout=5", "connect_timeout"),
    case("DB_PORT", "abc", "integer", DATABASE_URL=None, DB_HOST="db"),
    case("DB_HOST", "", "pattern", DATABASE_URL=None),
    case("SQS_QUEUE_URL", "orders", "http(s) URL"),
    case("SQS_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/", "queue name"),
    case("SQS_DLQ_URL", "", "empty"),
    case("SQS_DLQ_URL", SAME_AS_QUEUE, "must not be SQS_QUEUE_URL"),
    case("SQS_DLQ_URL", "http://127.0.0.1:1/000000000000/orders-dlq.fifo", "same type"),
    case("SQS_QUEUE_URL", "http://127.0.0.1:1/000000000000/orders.fifo", "same type"),
    case("AWS_ENDPOINT_URL_SQS", "localhost 4566", "http(s) URL"),
    case("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:x", "1 to 65535"),
    case("AWS_REGION", "eu west 1", "like eu-west-1"),
    case("HEALTH_PORT", PORT_IN_USE, "free port"),
    case("HEALTH_PORT", PORT_IN_USE, "free port", WORKER_MODE="dummy"),
    case("HEALTH_PORT", "0", "greater than or equal to 1"),
    case("SQS_WAIT_TIME_SECONDS", "0", "greater than or equal to 1"),
    case("SHUTDOWN_GRACE_SECONDS", "inf", "not a number"),
    case("SHUTDOWN_GRACE_SECONDS", "nan", "not a number", WORKER_MODE="dummy"),
    case("RETRY_BASE_SECONDS", "NaN", "not a number"),
    case("MAX_IN_FLIGHT", "1000000", "less than or equal to 10000"),
    # Issue 22: what tracing and EMF added, refused like every other setting.
    case("AWS_ENDPOINT_URL_SNS", "sns here", "https://sns."),
    case("EMF_INTERVAL_SECONDS", "1e-9", "at least 1 second"),
    case("TRACES_FILE", "/tmp", "is a directory"),
    case("TRACES_FILE", "/proc/version/traces.jsonl", "cannot append"),
    case("OTEL_BSP_MAX_QUEUE_SIZE", "0", "greater than or equal to 1"),
    case("OTEL_BSP_MAX_QUEUE_SIZE", "-1", "greater than or equal to 1"),
    case("OTEL_BSP_SCHEDULE_DELAY", "-5", "greater than or equal to 1"),
    case("OTEL_BSP_SCHEDULE_DELAY", "5.5", "integer"),
    case("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0", "greater than or equal to 1"),
    case("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096", "must not exceed OTEL_BSP_MAX_QUEUE_SIZE"),
    case("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "http(s) URL"),
    case("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://collector:4318", "http(s) URL"),
    case("OTEL_EXPORTER_OTLP_TIMEOUT", "-1", "greater than 0"),
    case("OTEL_EXPORTER_OTLP_TIMEOUT", "ten", "number"),
    case("OTEL_TRACES_SAMPLER", "sometimes", "parentbased_traceidratio"),
    case("OTEL_TRACES_SAMPLER_ARG", "2", "less than or equal to 1"),
]


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize(("variable", "value", "says", "others"), CASES)
async def test_a_bad_setting_is_one_line_exit_2_and_nothing_consumed(
    variable, value, says, others, sqs, e2e_queues, worker_env, held_port
):
    queue = SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics())
    await queue.send(e2e_queues.url, [body(placed())])
    stand_ins = {SAME_AS_QUEUE: e2e_queues.url, PORT_IN_USE: str(held_port)}
    env = {**worker_env, "LOG_LEVEL": "INFO"}  # a config error is the only line even at INFO
    for name, given in {**others, variable: stand_ins.get(value, value)}.items():
        env.pop(name, None)
        if given is not None:
            env[name] = given

    result = subprocess.run(
        [sys.executable, "-m", "order_service.entrypoints.cli", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert variable in lines[0] and says in lines[0], lines[0]
    assert await queue.depth(e2e_queues.url) == (1, 0)  # neither received nor deleted
