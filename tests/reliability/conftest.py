"""Fault runs use the shared fixtures (a real worker process, real PostgreSQL and ministack,
the SQS fault proxy), with a shorter visibility timeout so that a killed worker's messages
return fast."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from order_service.entrypoints.local_servers import LocalSqs, create_queues
from tests.reliability.harness import VISIBILITY
from tests.support.queues import Queues
from tests.support.sns_proxy import SnsFaultProxy


@pytest.fixture
async def e2e_queues(sqs: Any) -> Queues:
    """Overrides the shared fixture of the same name (so `worker_env` points at these)."""
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
async def sns_proxy(sqs_server: LocalSqs) -> AsyncIterator[SnsFaultProxy]:
    """A fault-injecting proxy in front of the session's SNS endpoint."""
    started = await SnsFaultProxy(sqs_server.endpoint).start()
    yield started
    await started.stop()
