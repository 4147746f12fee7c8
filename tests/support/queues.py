"""The local SQS endpoint as the SDK finds it, and a queue with its DLQ."""

from __future__ import annotations

from dataclasses import dataclass

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
