"""The local SQS endpoint as the SDK finds it, a queue with its DLQ, and reading them back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from order_service.adapters.sqs import SqsQueue
from order_service.service.ports import Message

SQS_ENV = (
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_SNS",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
)


def sqs_env(endpoint: str) -> dict[str, str]:
    """The SDK's own variables for a local endpoint (it accepts any credentials)."""
    return {
        "AWS_ENDPOINT_URL_SQS": endpoint,
        "AWS_ENDPOINT_URL_SNS": endpoint,  # ministack serves all three on one port
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
    }


@dataclass
class Queues:
    url: str
    dlq_url: str


async def receive_messages(queue: SqsQueue, expected: int) -> list[Message]:
    """What the adapter receives in up to 20 one-second polls, stopping at `expected`."""
    got: list[Message] = []
    for _ in range(20):
        got += await queue.receive(10, 1)
        if len(got) >= expected:
            break
    return got


async def dead_letters(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message now visible on `url` (a DLQ), with its attributes, hidden for 5 minutes
    so that none is read twice."""
    found: list[dict[str, Any]] = []
    while True:
        response = await sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            VisibilityTimeout=300,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        )
        if not response.get("Messages"):
            return found
        found += response["Messages"]
