"""Attacks on issue 26 item 5's worker side (adapters/db_credentials.py: the worker reads
DB_SECRET_ARN's secret for each new connection) and on the supervision's promise (the worker
exits within SHUTDOWN_GRACE_SECONDS whatever a dependency is doing): Secrets Manager
blackholed (a socket that takes the connection into its backlog and never answers), as a
VPC endpoint or NAT path that drops packets does, while the worker needs a connection."""

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


async def test_the_worker_exits_within_its_grace_while_the_secret_service_never_answers(
    start_worker, blackholed
):
    worker = start_worker(
        DB_SECRET_ARN=SECRET_ARN,
        AWS_ENDPOINT_URL_SECRETS_MANAGER=blackholed,
        SHUTDOWN_GRACE_SECONDS=str(GRACE),
        LOG_LEVEL="INFO",
    )
    # Paused at start-up: the first probe's connection waits for the secret.
    await wait_for(lambda: worker.get("/ready")[0] == 503, 20, "/ready to say not ready")
    await asyncio.sleep(3)
    worker.signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    code = await asyncio.to_thread(worker.wait, GRACE + 120)
    elapsed = time.monotonic() - stopped_at
    log = worker.log_path.read_text()
    assert code == 0, log[-2000:]
    assert elapsed < GRACE + EXIT_MARGIN, f"exited {elapsed:.1f} s after SIGTERM\n{log[-2000:]}"
