"""Fixtures of the outbox tests (registered by tests/conftest.py): the store with the outbox on,
an SNS client on the session's ministack, and a topic with its subscribed downstream queue per
test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from order_service.adapters.postgres import PostgresStore
from order_service.adapters.sns import sns_client
from order_service.entrypoints.local_servers import LocalSqs, create_topic_with_queue


@dataclass
class StatusTopic:
    arn: str
    downstream_url: str


@pytest.fixture
async def outbox_store(database: str) -> AsyncIterator[PostgresStore]:
    """The store on this test's database with the outbox on (each applied event writes its
    status-event row in the batch's transaction)."""
    store = PostgresStore(database, outbox=True, pool_size=4)
    await store.connect()
    yield store
    await store.close()


@pytest.fixture
async def sns(sqs_server: LocalSqs) -> AsyncIterator[Any]:
    async with sns_client("us-east-1") as client:
        yield client


@pytest.fixture
async def status_topic(sns: Any, sqs: Any) -> StatusTopic:
    arn, url = await create_topic_with_queue(sns, sqs, f"status-{uuid.uuid4().hex[:10]}")
    return StatusTopic(arn, url)
