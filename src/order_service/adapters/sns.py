"""The SNS side of the relay (aiobotocore, AWS_ENDPOINT_URL_SNS like the SQS adapter)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import quote_plus
from uuid import UUID

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError, ClientError

from order_service.errors import TopicUnavailable
from order_service.metrics import Metrics
from order_service.service.ports import PUBLISH_BATCH_MAX, PendingRow


class SnsTopic:
    """One topic. A FIFO topic (name ending .fifo) gets each order as its message group and the
    row id as the deduplication id, so SNS itself keeps order and drops a republished row.
    A standard topic with `group_by_customer` gets the order's customer as the message group,
    which SNS passes on: a subscribed fair queue keeps a noisy customer from delaying others."""

    def __init__(
        self,
        client: Any,
        topic_arn: str,
        metrics: Metrics | None = None,
        *,
        group_by_customer: bool = False,
    ) -> None:
        self._client = client
        self.topic_arn = topic_arn
        self.fifo = topic_arn.endswith(".fifo")
        self._group_by_customer = group_by_customer and not self.fifo
        self._metrics = metrics or Metrics()

    async def publish(self, rows: Sequence[PendingRow]) -> set[UUID]:
        """Publishes up to 10 rows in one PublishBatch; returns the ids SNS accepted. Raises
        TopicUnavailable when the call itself fails (after the SDK's own retries)."""
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
            raise TopicUnavailable(f"PublishBatch: {exc}") from exc
        failed = response.get("Failed", [])
        if failed:
            self._metrics.errors.labels("sns").inc(len(failed))
        return {rows[int(s["Id"])].id for s in response.get("Successful", [])}

    def _entry(self, entry_id: str, row: PendingRow) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "Id": entry_id,
            "Message": row.payload,
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
            raise TopicUnavailable(f"GetTopicAttributes: {exc}") from exc


# urllib's quote_plus on ASCII text (RFC 3986 unreserved characters kept, space to "+", any
# other byte %XX) as one str.translate: the payloads are most of a PublishBatch, and
# quote_plus walks them byte by byte in Python. tests/unit/test_sns_form.py holds it to urllib.
_FORM_ASCII = {
    c: chr(c) if chr(c).isalnum() or chr(c) in "_.-~" else "+" if c == 0x20 else f"%{c:02X}"
    for c in range(128)
}


def _form_quote(text: str) -> str:
    return text.translate(_FORM_ASCII) if text.isascii() else quote_plus(text)


def encode_form(fields: dict[str, Any]) -> str | None:
    """The body botocore would send for these query-protocol fields (None: not all text)."""
    if not all(isinstance(v, str) for v in fields.values()):
        return None
    return "&".join(f"{_form_quote(k)}={_form_quote(v)}" for k, v in fields.items())


def _encode_form_once(request: AWSRequest, **_: Any) -> None:
    """SNS speaks the query protocol: botocore form-encodes the body (a dict) each time it is
    read, and SigV4 reads it once more to hash it before it is sent, so every PublishBatch
    was percent-encoded twice. Encoding it here, before signing, leaves one cheaper pass.
    botocore builds a new request from the dict for each retry, and this runs again."""
    if isinstance(request.data, dict):
        request.data = encode_form(request.data) or request.prepare().body


@contextlib.asynccontextmanager
async def sns_client(region: str) -> AsyncIterator[Any]:
    """Timeouts short enough that one call, retries included, ends well within the 30 s after
    which the database ends an idle claim (see adapters/outbox.py).

    The relay's CPU per row is the SDK's (bench: `relay_cpu_us_per_row`), so two of its
    per-call costs are cut: parameter validation (the entries are built by `SnsTopic._entry`
    alone and checked against a real endpoint by the tests) and the second encoding of the
    body (`_encode_form_once`)."""
    config = AioConfig(
        max_pool_connections=20,
        connect_timeout=3,
        read_timeout=5,
        retries={"mode": "standard", "max_attempts": 3},
        parameter_validation=False,
    )
    async with get_session().create_client("sns", region_name=region, config=config) as client:
        client.meta.events.register("before-sign.sns", _encode_form_once)
        yield client
