"""Fault runs use the shared fixtures (a real worker process, real PostgreSQL and ministack,
the SQS and PostgreSQL fault proxies), with a shorter visibility timeout so that a killed
worker's messages return fast: the queues' through each module's `FAULT_RUN_QUEUES` mark
(harness.py), the worker's through `fast_env`. This conftest overrides no shared fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from order_service.entrypoints.local_servers import LocalSqs
from tests.reliability.harness import VISIBILITY
from tests.support.sns_proxy import SnsFaultProxy


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
