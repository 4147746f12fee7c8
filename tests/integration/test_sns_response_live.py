"""The SNS client as sns_client makes it, on ministack's live answers: each PublishBatch's
response as the client returned it is what the SDK's own parser makes of the same response
(with the retries botocore counts), ResponseMetadata included; and an error is still the SDK's
error, with its code, so retries and the relay's fault kinds are unchanged."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from aiobotocore.parsers import AioResponseParserFactory
from botocore.exceptions import ClientError

from order_service.adapters.sns import SnsTopic, sns_client
from order_service.adapters.sns_response import publish_batch_result
from order_service.entrypoints.local_servers import create_topic_with_queue
from order_service.errors import TopicUnavailable
from order_service.metrics import Metrics
from order_service.service.ports import PendingRow
from tests.support.outbox_fixtures import StatusTopic


class Captured:
    """Each PublishBatch response the client receives, as its parser receives it."""

    def __init__(self, client: Any) -> None:
        self.responses: list[dict[str, Any]] = []
        self._client = client

    def __enter__(self) -> Captured:
        self._client.meta.events.register("before-parse.sns.PublishBatch", self._keep)
        return self

    def __exit__(self, *_: object) -> None:
        self._client.meta.events.unregister("before-parse.sns.PublishBatch", self._keep)

    def _keep(self, response_dict: dict[str, Any], **_: Any) -> None:
        self.responses.append(response_dict)


async def sdk_parse(client: Any, response: dict[str, Any]) -> Any:
    shape = client.meta.service_model.operation_model("PublishBatch").output_shape
    parsed = await AioResponseParserFactory().create_parser("query").parse(response, shape)
    parsed["ResponseMetadata"]["RetryAttempts"] = 0
    return parsed


@pytest.mark.parametrize("fifo", [False, True])
async def test_publish_batch_returns_what_the_sdk_parser_gives(sns, sqs, fifo):
    arn, _ = await create_topic_with_queue(sns, sqs, f"parse-{uuid.uuid4().hex[:8]}", fifo=fifo)
    group = {"MessageGroupId": "g", "MessageDeduplicationId": "d"} if fifo else {}
    calls = [
        [{"Id": f"é{n}", "Message": f"m{n}", **group} for n in range(10)],
        [{"Id": "a", "Message": "x", **group}, {"Id": "b", "Message": "y"}],  # b: no group
        [{"Id": "c", "Message": "z", "MessageAttributes": {"n": {"DataType": "Number",
          "StringValue": "not a number"}}}],
    ]  # fmt: skip
    returned = []
    with Captured(sns) as captured:
        for entries in calls:
            returned.append(
                await sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=entries)
            )
    assert len(captured.responses) == len(calls)
    for response, result in zip(captured.responses, returned, strict=True):
        assert publish_batch_result(response["body"]) is not None  # read by sns_response.py
        assert result == await sdk_parse(sns, response)
    assert {e["Id"] for e in returned[0]["Successful"]} == {f"é{n}" for n in range(10)}
    if fifo:
        assert all("SequenceNumber" in e for e in returned[0]["Successful"])
        assert [e["Id"] for e in returned[1]["Failed"]] == ["b"]


async def test_an_error_response_is_still_the_sdks_error(sns, status_topic: StatusTopic):
    with pytest.raises(ClientError) as raised:
        await sns.publish_batch(
            TopicArn=status_topic.arn + "-missing",
            PublishBatchRequestEntries=[{"Id": "0", "Message": "x"}],
        )
    assert raised.value.response["Error"]["Code"] == "NotFound"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    topic = SnsTopic(sns, status_topic.arn + "-missing", Metrics())
    row = PendingRow(uuid.uuid4(), uuid.uuid4(), "order.status.placed", 1, "{}", datetime.now(UTC))
    with pytest.raises(TopicUnavailable) as fault:
        await topic.publish([row])
    assert (fault.value.kind, fault.value.transient) == ("sns_topic_missing", False)


async def test_the_user_agent_sent_is_the_sdks(sns, status_topic: StatusTopic):
    """The User-Agent as sns_client keeps it (adapters/sns_user_agent.py), on the wire."""
    sent: dict[str, list[bytes]] = {"kept": [], "sdk": []}
    async with sns_client("us-east-1") as sdk:
        del sdk._user_agent_creator.to_string  # built at each call, as the SDK does
        for name, client in (("kept", sns), ("sdk", sdk)):

            def keep(request: Any, name: str = name, **_: Any) -> None:
                sent[name].append(request.headers["User-Agent"])

            client.meta.events.register("before-send.sns", keep)
            for _ in range(2):
                await client.publish_batch(
                    TopicArn=status_topic.arn,
                    PublishBatchRequestEntries=[{"Id": "0", "Message": "x"}],
                )
                await client.get_topic_attributes(TopicArn=status_topic.arn)
            client.meta.events.unregister("before-send.sns", keep)
    assert sent["kept"] == sent["sdk"]
    assert len(set(sent["kept"])) == 1 and b"cfg/retry-mode#standard" in sent["kept"][0]
