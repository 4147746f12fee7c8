"""Fault runs reuse the end-to-end fixtures (a real worker process, real PostgreSQL and
ministack), with a shorter visibility timeout so that a killed worker's messages return fast."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from order_service.adapters.local import create_queues
from tests.conftest import Queues
from tests.e2e.conftest import start_worker, worker_env, workers
from tests.reliability.proxy import SqsFaultProxy

__all__ = ["start_worker", "worker_env", "workers"]

VISIBILITY = 5  # the least the worker's settings allow


@pytest.fixture
async def e2e_queues(sqs) -> Queues:
    """Overrides the e2e fixture of the same name (so `worker_env` points at these)."""
    url, dlq = await create_queues(sqs, f"rel-{uuid.uuid4().hex[:12]}", VISIBILITY)
    return Queues(url, dlq)


@pytest.fixture
def fast_env() -> dict[str, str]:
    return {
        "SQS_VISIBILITY_TIMEOUT": str(VISIBILITY),
        "SQS_WAIT_TIME_SECONDS": "1",
        "RETRY_BASE_SECONDS": "0.5",
        "RETRY_MAX_SECONDS": "4",
    }


@pytest.fixture
async def proxy(sqs_server) -> AsyncIterator[SqsFaultProxy]:
    started = await SqsFaultProxy(sqs_server.endpoint).start()
    yield started
    await started.stop()
