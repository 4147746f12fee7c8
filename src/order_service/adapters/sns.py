"""The SNS side of the relay (aiobotocore, AWS_ENDPOINT_URL_SNS like the SQS adapter)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any
from uuid import UUID

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from order_service.adapters.sns_form import PublishBatchForm, encode_form_once
from order_service.adapters.sns_response import PublishBatchResponses
from order_service.adapters.sns_user_agent import build_user_agent_once
from order_service.errors import TopicUnavailable
from order_service.metrics import Metrics
from order_service.service.ports import PUBLISH_BATCH_MAX, PendingRow, PublishResult

# SNS's error codes by what they mean for the relay: (codes, kind, what to do). Any other
# failure (a 5xx, a timeout, a broken connection) is "sns_unavailable" and passes by itself.
_THROTTLED = frozenset(
    {"Throttling", "ThrottlingException", "Throttled", "KMSThrottling", "RequestThrottled"}
)
_PERMANENT: tuple[tuple[frozenset[str], str, str], ...] = (
    (
        frozenset(
            {
                "AuthorizationError",
                "AccessDenied",
                "AccessDeniedException",
                "InvalidClientTokenId",
                "UnrecognizedClientException",
                "SignatureDoesNotMatch",
                "ExpiredToken",
                "InvalidSecurity",
            }
        ),
        "sns_denied",
        "the publisher may not publish to the topic: grant the task role sns:Publish on "
        "ORDER_EVENTS_TOPIC_ARN (and kms:GenerateDataKey* and kms:Decrypt on its key), or "
        "check its credentials",
    ),
    (
        frozenset({"NotFound", "NotFoundException"}),
        "sns_topic_missing",
        "the topic in ORDER_EVENTS_TOPIC_ARN does not exist: check the ARN and region, or "
        "redeploy the stack that creates it",
    ),
    (
        frozenset(
            {"KMSDisabled", "KMSInvalidState", "KMSNotFound", "KMSAccessDenied", "KMSOptInRequired"}
        ),
        "sns_kms",
        "the topic's KMS key is disabled, pending deletion, missing or denies SNS: enable or "
        "restore it and check its key policy",
    ),
)
# Refusals of what one entry holds: that row will never pass, the others may.
_ROW_REFUSALS = frozenset(
    {
        "InvalidParameter",
        "InvalidParameterException",
        "InvalidParameterValue",
        "ValidationError",
        "ValidationException",
    }
)
_UNAVAILABLE_ACTION = (
    "SNS fails or times out: it usually passes by itself; see the AWS Health Dashboard"
)


def topic_fault(code: str, message: str) -> TopicUnavailable:
    """What an SNS error code means for the relay (kind, what to do, whether it passes)."""
    if code in _THROTTLED:
        return TopicUnavailable(
            message,
            kind="sns_throttled",
            action="SNS throttles this account's publishes: it passes by itself; raise the "
            "PublishBatch quota if it lasts",
        )
    for codes, kind, action in _PERMANENT:
        if code in codes:
            return TopicUnavailable(message, kind=kind, action=action, transient=False)
    if code in _ROW_REFUSALS:
        return TopicUnavailable(
            message,
            kind="sns_invalid",
            action="SNS refuses the request itself: check ORDER_EVENTS_TOPIC_ARN and this "
            "build's SNS entries (a bug: report it)",
            transient=False,
        )
    return TopicUnavailable(message, kind="sns_unavailable", action=_UNAVAILABLE_ACTION)


def _call_fault(call: str, exc: Exception) -> TopicUnavailable:
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        return topic_fault(code, f"{call}: {exc}")
    return TopicUnavailable(
        f"{call}: {type(exc).__name__}: {exc}", kind="sns_unavailable", action=_UNAVAILABLE_ACTION
    )


class SnsTopic:
    """One topic. A FIFO topic (name ending .fifo) gets each order as its message group and the
    row id as the deduplication id, so SNS itself keeps order and drops a republished row.
    A standard topic with `group_by_customer` gets the order's customer as the message group,
    which SNS passes on: a subscribed fair queue keeps a noisy customer from delaying others."""

    def __init__(
        self,
        client: Any,
        topic_arn: str,
        metrics: Metrics,
        *,
        group_by_customer: bool = False,
    ) -> None:
        self._client = client
        self.topic_arn = topic_arn
        self.fifo = topic_arn.endswith(".fifo")
        self._group_by_customer = group_by_customer and not self.fifo
        self._metrics = metrics

    async def publish(self, rows: Sequence[PendingRow]) -> PublishResult:
        """Publishes up to 10 rows in one PublishBatch. Raises TopicUnavailable when the call
        itself fails (after the SDK's own retries)."""
        if len(rows) > PUBLISH_BATCH_MAX:
            raise ValueError(f"at most {PUBLISH_BATCH_MAX} rows per PublishBatch")
        self._metrics.sns_requests.labels("PublishBatch").inc()
        try:
            response = await self._client.publish_batch(
                TopicArn=self.topic_arn,
                PublishBatchRequestEntries=[self._entry(str(i), r) for i, r in enumerate(rows)],
            )
        except (BotoCoreError, ClientError, OSError) as exc:
            self._metrics.errors.labels("sns").inc()
            raise _call_fault("PublishBatch", exc) from exc
        accepted = frozenset(rows[int(s["Id"])].id for s in response.get("Successful", []))
        refused: dict[UUID, str] = {}
        failure: TopicUnavailable | None = None
        for entry in response.get("Failed", []):
            self._metrics.errors.labels("sns").inc()
            row, code = rows[int(entry["Id"])], str(entry.get("Code", ""))
            reason = f"{code}: {entry.get('Message', '')}"
            if entry.get("SenderFault") and code in _ROW_REFUSALS:
                refused[row.id] = reason
            elif failure is None:
                failure = topic_fault(code, f"SNS refused entry {row.id}: {reason}")
        return PublishResult(accepted, refused, failure)

    def _entry(self, entry_id: str, row: PendingRow) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "Id": entry_id,
            "Message": sqs_safe(row.payload),
            "MessageAttributes": {
                "type": {"DataType": "String", "StringValue": row.type},
                "order_id": {"DataType": "String", "StringValue": str(row.order_id)},
                "sequence": {"DataType": "Number", "StringValue": str(row.sequence)},
                "outbox_id": {"DataType": "String", "StringValue": str(row.id)},
            },
        }
        if row.traceparent:  # the context onward: 5 of SNS's 10 attributes
            entry["MessageAttributes"]["traceparent"] = {
                "DataType": "String",
                "StringValue": row.traceparent,
            }
        if self.fifo:
            entry["MessageGroupId"] = str(row.order_id)
            entry["MessageDeduplicationId"] = str(row.id)
        elif self._group_by_customer and row.customer_id:
            entry["MessageGroupId"] = row.customer_id
        return entry

    async def ping(self) -> None:
        try:
            await self._client.get_topic_attributes(TopicArn=self.topic_arn)
        except (BotoCoreError, ClientError, OSError) as exc:
            raise _call_fault("GetTopicAttributes", exc) from exc


# What SQS takes in a message body, and so what SNS can deliver to every SQS subscriber:
# #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF. The stored payload is
# PostgreSQL's rendering of the jsonb column, which holds characters raw where the worker's own
# JSON (json.dumps) escaped them. In JSON text any other character can only stand inside a
# string (PostgreSQL escapes the controls below #x20 itself), where \uXXXX is the same
# character: so the body means the same to every consumer and SQS takes it.
_SQS_REFUSED = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


# The ASCII characters SQS takes: an ASCII payload with none other (nearly every one) is sent as
# it is after one C-level pass, where the regex above tests each character in turn.
_SQS_TAKEN_ASCII = bytes([0x9, 0xA, 0xD, *range(0x20, 0x80)])


def sqs_safe(payload: str) -> str:
    """The JSON text `payload` with every character SQS refuses written as a JSON escape."""
    if payload.isascii() and not payload.encode("ascii").translate(None, _SQS_TAKEN_ASCII):
        return payload
    return _SQS_REFUSED.sub(_escape, payload)


@contextlib.asynccontextmanager
async def sns_client(region: str) -> AsyncIterator[Any]:
    """Timeouts short enough that one call, retries included, ends well within the 30 s after
    which the database ends an idle claim (see adapters/outbox.py).

    The relay's CPU per row is mostly the SDK's (bench: `sns_client_cpu_us_per_row`), so
    five of its per-call costs are cut: parameter validation (the entries are built by
    `SnsTopic._entry` alone and checked against a real endpoint by the tests), the shape walk
    that flattens a PublishBatch into form fields (`PublishBatchForm` writes the body itself),
    the second encoding of the body (`encode_form_once`), the shape walk that reads a
    successful PublishBatch's response (`PublishBatchResponses`) and the User-Agent string built
    twice per call (`build_user_agent_once`). Credentials, signing, retries, error responses
    and the endpoint rules stay the SDK's."""
    config = AioConfig(
        max_pool_connections=20,
        connect_timeout=3,
        read_timeout=5,
        retries={"mode": "standard", "max_attempts": 3},
        parameter_validation=False,
    )
    async with get_session().create_client("sns", region_name=region, config=config) as client:
        client.meta.events.register("before-sign.sns", encode_form_once)
        client._serializer = PublishBatchForm(client._serializer)
        endpoint = client._endpoint
        endpoint._response_parser_factory = PublishBatchResponses(endpoint._response_parser_factory)
        build_user_agent_once(client._user_agent_creator)
        yield client
