"""PublishBatch's body as adapters/sns_form.py writes it is the body the SDK's own serializer
and preparer give for the same parameters (botocore's QuerySerializer, then urlencode), and
whatever it does not write is left to that serializer unchanged."""

from __future__ import annotations

import functools
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import botocore.session
import pytest
from botocore.config import Config
from hypothesis import given, settings
from hypothesis import strategies as st

from order_service.adapters.sns import SnsTopic
from order_service.adapters.sns_form import PublishBatchForm, publish_batch_body
from order_service.metrics import Metrics
from order_service.service.ports import PendingRow

ARN = "arn:aws:sns:us-east-1:123456789012:order-status"
EXAMPLE = Path(__file__).parents[2] / "docs" / "contract" / "status-examples"


@functools.cache
def sns() -> Any:
    """The SDK's client as sns_client configures it (no parameter validation)."""
    return botocore.session.get_session().create_client(
        "sns", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b",
        config=Config(parameter_validation=False),
    )  # fmt: skip


@pytest.fixture
def sdk() -> Any:
    return sns()


def sdk_request(client: Any, parameters: dict[str, Any]) -> dict[str, Any]:
    """What the SDK serializes, its body as its preparer sends it (urlencode of UTF-8)."""
    model = client.meta.service_model.operation_model("PublishBatch")
    request = client._serializer.serialize_to_request(parameters, model)
    body = request["body"]
    request["body"] = urlencode([(k.encode(), v.encode()) for k, v in body.items()], doseq=True)
    return dict(request)


def ours(client: Any, parameters: dict[str, Any]) -> dict[str, Any]:
    model = client.meta.service_model.operation_model("PublishBatch")
    return PublishBatchForm(client._serializer).serialize_to_request(parameters, model)


def rows(count: int, payload: str, traceparent: str | None = None) -> list[PendingRow]:
    now = datetime.now(UTC)
    return [
        PendingRow(uuid.uuid4(), uuid.uuid4(), "order.status.placed", n + 1, payload, now,
                   traceparent=traceparent, customer_id=f"c-{n}")
        for n in range(count)
    ]  # fmt: skip


@pytest.mark.parametrize("arn", [ARN, ARN + ".fifo"])
@pytest.mark.parametrize("group_by_customer", [False, True])
@pytest.mark.parametrize("traceparent", [None, "00-" + "a" * 32 + "-" + "b" * 16 + "-01"])
def test_the_relays_own_entries_serialize_as_the_sdk_does(
    sdk: Any, arn: str, group_by_customer: bool, traceparent: str | None
) -> None:
    payload = (EXAMPLE / "order.status.placed.json").read_text()
    topic = SnsTopic(None, arn, Metrics(), group_by_customer=group_by_customer)
    entries = [topic._entry(str(i), r) for i, r in enumerate(rows(10, payload, traceparent))]
    parameters = {"TopicArn": arn, "PublishBatchRequestEntries": entries}
    written = ours(sdk, parameters)
    assert isinstance(written["body"], str)  # written here, not the SDK's dict
    assert written == sdk_request(sdk, parameters)


TEXT = st.text(max_size=60)
ATTRIBUTE = st.fixed_dictionaries(
    {"DataType": st.sampled_from(["String", "Number", "String.Array"]), "StringValue": TEXT}
)
ENTRY = st.fixed_dictionaries(
    {"Id": TEXT, "Message": st.text(max_size=400)},
    optional={
        "Subject": TEXT,
        "MessageStructure": TEXT,
        "MessageAttributes": st.dictionaries(TEXT, ATTRIBUTE, min_size=1, max_size=10),
        "MessageDeduplicationId": TEXT,
        "MessageGroupId": TEXT,
    },
)


@settings(max_examples=200, deadline=None)
@given(TEXT, st.lists(ENTRY, min_size=1, max_size=10))
def test_any_text_entries_serialize_as_the_sdk_does(
    arn: str, entries: list[dict[str, Any]]
) -> None:
    client = sns()
    parameters = {"TopicArn": arn, "PublishBatchRequestEntries": entries}
    assert publish_batch_body(parameters, "2010-03-31") is not None
    assert ours(client, parameters) == sdk_request(client, parameters)


@pytest.mark.parametrize(
    "entry",
    [
        {"Id": "0", "Message": "m", "MessageAttributes": {"b": {"DataType": "Binary",
                                                                 "BinaryValue": b"\x00\xff"}}},
        {"Id": "0", "Message": "m", "MessageAttributes": {}},
        {"Id": "0", "Message": 3},
    ],
)  # fmt: skip
def test_what_it_does_not_write_is_the_sdks(sdk: Any, entry: dict[str, Any]) -> None:
    parameters = {"TopicArn": ARN, "PublishBatchRequestEntries": [entry]}
    assert publish_batch_body(parameters, "2010-03-31") is None
    model = sdk.meta.service_model.operation_model("PublishBatch")
    expected = sdk._serializer.serialize_to_request(parameters, model)
    assert ours(sdk, parameters) == expected  # the SDK's dict body, as the SDK gives it


def test_other_parameters_and_calls_are_the_sdks(sdk: Any) -> None:
    extra = {"TopicArn": ARN, "PublishBatchRequestEntries": [{"Id": "0", "Message": "m"}],
             "Other": "x"}  # fmt: skip
    assert publish_batch_body(extra, "2010-03-31") is None
    assert publish_batch_body({"TopicArn": ARN, "PublishBatchRequestEntries": []}, "v") is None
    model = sdk.meta.service_model.operation_model("GetTopicAttributes")
    form = PublishBatchForm(sdk._serializer)
    assert form.serialize_to_request({"TopicArn": ARN}, model) == (
        sdk._serializer.serialize_to_request({"TopicArn": ARN}, model)
    )


def test_the_payload_is_the_bulk_and_survives_a_round_trip(sdk: Any) -> None:
    payload = json.dumps({"note": "é ~ & = + %", "n": 1})
    parameters = {"TopicArn": ARN, "PublishBatchRequestEntries": [{"Id": "0", "Message": payload}]}
    body = publish_batch_body(parameters, "2010-03-31")
    assert body is not None
    assert parse_qs(body)["PublishBatchRequestEntries.member.1.Message"] == [payload]
