"""Attacks on the supervision's promise (service/supervision.py, bootstrap.py: the worker exits
within SHUTDOWN_GRACE_SECONDS whatever a dependency is doing) at start-up, when a dependency
is blackholed (a socket that takes the connection into its backlog and never answers, as a VPC
endpoint or a NAT path that drops packets does): Secrets Manager (issue 26 item 5: the worker
reads DB_SECRET_ARN's secret for each new connection), SQS (bootstrap reads the queues' types
after /health is served), and PostgreSQL itself."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import Iterator

import pytest

from tests.support.waiting import wait_for

GRACE = 5.0
EXIT_MARGIN = 1.5  # the interpreter's exit after the worker's last line: a bound, not a target
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:000000000000:secret:orders-app-AbCdEf"


@pytest.fixture
def blackholed() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def blackholed_dependency(which: str, endpoint: str) -> dict[str, str]:
    """The worker's settings that send `which` to the blackholed `endpoint`."""
    if which == "secrets manager":
        return {"DB_SECRET_ARN": SECRET_ARN, "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint}
    if which == "sqs":
        return {"AWS_ENDPOINT_URL_SQS": endpoint}
    port = endpoint.rsplit(":", 1)[1]
    return {"DATABASE_URL": f"postgresql://orders@127.0.0.1:{port}/orders"}


@pytest.mark.parametrize("which", ["secrets manager", "sqs", "postgres"])
async def test_the_worker_exits_within_its_grace_while_a_dependency_never_answers(
    start_worker, blackholed, which
):
    worker = start_worker(
        SHUTDOWN_GRACE_SECONDS=str(GRACE),
        LOG_LEVEL="INFO",
        **blackholed_dependency(which, blackholed),
    )
    # Not ready at start-up: the first probe (or the queues' read) waits for an answer.
    await wait_for(lambda: worker.get("/ready")[0] == 503, 20, "/ready to say not ready")
    await asyncio.sleep(3)
    worker.signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    code = await asyncio.to_thread(worker.wait, GRACE + 120)
    elapsed = time.monotonic() - stopped_at
    log = worker.log_path.read_text()
    assert code == 0, log[-2000:]
    assert elapsed < GRACE + EXIT_MARGIN, f"exited {elapsed:.1f} s after SIGTERM\n{log[-2000:]}"
