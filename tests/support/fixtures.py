"""The shared fixtures, registered by tests/conftest.py through `pytest_plugins`.

PostgreSQL: the embedded server (pgserver, PostgreSQL 16), or any server given by
TEST_DATABASE_URL (e.g. a PostgreSQL 15). Each test gets a fresh database cloned from a
migrated template. SQS: a ministack process from .venv-sqs; each test gets its own queues.
The worker fixtures start `order-service worker` processes on those.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from order_service.adapters.sqs import sqs_client
from order_service.entrypoints.local_servers import (
    LocalPostgres,
    LocalSqs,
    create_queues,
    free_port,
)
from tests.support import fauxqs
from tests.support.database import PostgresServer
from tests.support.fauxqs import FauxqsServer
from tests.support.pg_proxy import PostgresProxy
from tests.support.queues import SQS_ENV, Queues, sqs_env
from tests.support.sqs_proxy import SqsFaultProxy
from tests.support.worker import WorkerProcess, worker_environment

E2E_VISIBILITY = 10  # seconds; short, so that killed workers' messages come back quickly


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield PostgresServer(given)
        return
    # Not under pytest's 0700 tmp folders: as root, pgserver runs PostgreSQL as its own user.
    data_dir = Path(tempfile.mkdtemp(prefix="order-service-pg-"))
    local = LocalPostgres(data_dir)
    uri = local.start()
    yield PostgresServer(uri, local)
    local.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
async def migrated_template(postgres_server: PostgresServer) -> str:
    return await postgres_server.migrated_template("order_service_template")


@pytest.fixture
async def database(postgres_server: PostgresServer, migrated_template: str) -> str:
    """DSN of a fresh, migrated database of this test's own."""
    return await postgres_server.create_database(
        f"t_{uuid.uuid4().hex[:12]}", template=migrated_template
    )


@pytest.fixture
async def empty_database(postgres_server: PostgresServer) -> str:
    return await postgres_server.create_database(f"e_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def sqs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSqs]:
    server = LocalSqs(tmp_path_factory.mktemp("sqs")).start()
    saved = {k: os.environ.get(k) for k in SQS_ENV}
    os.environ.update(sqs_env(server.endpoint))
    yield server
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def fauxqs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FauxqsServer]:
    """fauxqs, the second SQS emulator, installed on first use (tests/support/fauxqs.py);
    skipped only when it cannot be installed (no npm, no Node.js >= 22.5 for this platform)."""
    try:
        fauxqs.install()
        fauxqs.node()
    except fauxqs.CannotInstall as exc:
        pytest.skip(f"fauxqs: {exc}")
    server = FauxqsServer(tmp_path_factory.mktemp("fauxqs") / "fauxqs.log").start()
    yield server
    server.stop()


@pytest.fixture
async def sqs(sqs_server: LocalSqs) -> AsyncIterator[Any]:
    async with sqs_client("us-east-1") as client:
        yield client


@pytest.fixture
async def queues(sqs: Any) -> Queues:
    url, dlq = await create_queues(sqs, f"q-{uuid.uuid4().hex[:12]}", visibility_timeout=30)
    return Queues(url, dlq)


@pytest.fixture
async def fifo_queues(sqs: Any) -> Queues:
    """A FIFO queue and its FIFO DLQ, in high-throughput mode (names ending .fifo)."""
    url, dlq = await create_queues(sqs, f"f-{uuid.uuid4().hex[:12]}", 30, fifo=True)
    return Queues(url, dlq)


def e2e_queue_options(*, fifo: bool = False, visibility: int = E2E_VISIBILITY) -> dict[str, Any]:
    """What the `e2e_queues` mark may ask for (a mistyped option fails the test's set-up)."""
    return {"fifo": fifo, "visibility": visibility}


@pytest.fixture
async def e2e_queues(request: pytest.FixtureRequest, sqs: Any) -> Queues:
    """The queues `worker_env` points at: standard ones with E2E_VISIBILITY, unless the test
    or its module (`pytestmark`) carries `@pytest.mark.e2e_queues(fifo=..., visibility=...)`.
    The one definition: no conftest or test module overrides it."""
    mark = request.node.get_closest_marker("e2e_queues")
    options = e2e_queue_options(*mark.args, **mark.kwargs) if mark else e2e_queue_options()
    prefix = "e2e-f" if options["fifo"] else "e2e"
    url, dlq = await create_queues(
        sqs, f"{prefix}-{uuid.uuid4().hex[:12]}", options["visibility"], fifo=options["fifo"]
    )
    return Queues(url, dlq)


@pytest.fixture
def worker_env(database: str, e2e_queues: Queues, sqs_server: LocalSqs) -> dict[str, str]:
    return worker_environment(
        database,
        e2e_queues.url,
        e2e_queues.dlq_url,
        sqs_env(sqs_server.endpoint),
        SQS_VISIBILITY_TIMEOUT=str(E2E_VISIBILITY),
        SQS_WAIT_TIME_SECONDS="2",
        RETRY_BASE_SECONDS="1",
        RETRY_MAX_SECONDS="30",
        SHUTDOWN_GRACE_SECONDS="10",
    )


@pytest.fixture
def workers(worker_env: dict[str, str]) -> Iterator[list[WorkerProcess]]:
    """The workers this test started; stopped after it, before what they use is torn down."""
    started: list[WorkerProcess] = []
    yield started
    for w in started:
        w.stop()


@pytest.fixture
def start_worker(
    worker_env: dict[str, str], tmp_path: Path, workers: list[WorkerProcess]
) -> Callable[..., WorkerProcess]:
    """start(**settings): a worker on `worker_env` with `settings` on top, serving /health
    (each on a port of its own)."""

    def start(**overrides: str) -> WorkerProcess:
        env = {**worker_env, **overrides}
        if workers:
            env["HEALTH_PORT"] = overrides.get("HEALTH_PORT", str(free_port()))
        w = WorkerProcess(env, tmp_path / f"worker-{len(workers)}.log").start()
        workers.append(w)
        return w

    return start


@pytest.fixture
async def proxy(sqs_server: LocalSqs) -> AsyncIterator[SqsFaultProxy]:
    """A fault-injecting proxy in front of the session's SQS endpoint."""
    started = await SqsFaultProxy(sqs_server.endpoint).start()
    yield started
    await started.stop()


@pytest.fixture
async def pg_proxy(database: str) -> AsyncIterator[PostgresProxy]:
    """A blackholing proxy in front of this test's database (tests/support/pg_proxy.py)."""
    started = await PostgresProxy(database).start()
    yield started
    await started.stop()
