"""The end-to-end fixtures (a real worker process per test), shared with tests/e2e."""

from collections.abc import AsyncIterator

import pytest

from tests.e2e.conftest import e2e_queues, start_worker, worker_env, workers
from tests.reliability.proxy import SqsFaultProxy

__all__ = ["e2e_queues", "start_worker", "worker_env", "workers"]


@pytest.fixture
async def proxy(sqs_server) -> AsyncIterator[SqsFaultProxy]:
    started = await SqsFaultProxy(sqs_server.endpoint).start()
    yield started
    await started.stop()
