"""What the SNS adapter makes of SNS's answers (issue 21): an error code is a kind with what to
do, permanent or passing; an entry refused for what it holds is a refused row (parked by the
relay), any other failed entry a failure of the call; and the body it publishes holds only
characters SQS takes, meaning the same JSON."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

from order_service.adapters.sns import _SQS_REFUSED, SnsTopic, _escape, sqs_safe, topic_fault
from order_service.errors import TopicUnavailable
from order_service.metrics import Metrics
from order_service.service.ports import PendingRow

# The characters SQS refuses in a message body (all but #x9 | #xA | #xD | #x20-#xD7FF |
# #xE000-#xFFFD | #x10000-#x10FFFF) that can stand in a Python str, surrogates aside (no
# UTF-8 text, so no jsonb value, holds one).
SQS_REFUSED = [chr(c) for c in range(0x20) if c not in (0x9, 0xA, 0xD)] + ["\ufffe", "\uffff"]
SQS_ALLOWED = ["\t", "\n", "\r", " ", "\x7f", "\ud7ff", "\ue000", "\ufffd", "\U00010000", "😀"]


def taken_by_sqs(text: str) -> bool:
    return all(
        c in "\t\n\r"
        or 0x20 <= ord(c) <= 0xD7FF
        or 0xE000 <= ord(c) <= 0xFFFD
        or 0x10000 <= ord(c) <= 0x10FFFF
        for c in text
    )


@pytest.mark.parametrize("char", SQS_REFUSED)
def test_a_character_sqs_refuses_is_escaped_to_the_same_json(char):
    raw = f'{{"carrier": "a{char}b{char}"}}'  # the characters raw, as PostgreSQL renders jsonb
    body = sqs_safe(raw)
    assert taken_by_sqs(body)
    assert json.loads(body) == {"carrier": f"a{char}b{char}"}


@pytest.mark.parametrize("char", SQS_ALLOWED)
def test_what_sqs_takes_is_left_as_it_is(char):
    raw = json.dumps({"carrier": char}, ensure_ascii=False)
    assert sqs_safe(raw) == raw


@given(st.text(st.characters(max_codepoint=0x7F)) | st.text())
def test_an_ascii_payload_without_refused_characters_skips_the_regex_alike(text: str) -> None:
    """sqs_safe's ASCII pass gives what the regex alone gives, on any text."""
    assert sqs_safe(text) == _SQS_REFUSED.sub(_escape, text)
    assert taken_by_sqs(sqs_safe(text))


@pytest.mark.parametrize(
    ("code", "kind", "transient"),
    [
        ("Throttling", "sns_throttled", True),
        ("KMSThrottling", "sns_throttled", True),
        ("InternalError", "sns_unavailable", True),
        ("AuthorizationError", "sns_denied", False),
        ("NotFound", "sns_topic_missing", False),
        ("KMSDisabled", "sns_kms", False),
        ("KMSAccessDenied", "sns_kms", False),
    ],
)
def test_each_code_has_a_kind_and_an_action(code, kind, transient):
    fault = topic_fault(code, "x")
    assert (fault.kind, fault.transient) == (kind, transient)
    assert fault.action


class Client:
    def __init__(self, answer: dict[str, Any] | Exception) -> None:
        self.answer = answer
        self.entries: list[dict[str, Any]] = []

    async def publish_batch(self, TopicArn: str, PublishBatchRequestEntries: list) -> dict:
        self.entries = PublishBatchRequestEntries
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def rows(n: int, payload: str = "{}") -> Sequence[PendingRow]:
    now = datetime.now(UTC)
    return [PendingRow(uuid.uuid4(), uuid.uuid4(), "t", 1, payload, now) for _ in range(n)]


async def test_an_entry_refused_for_what_it_holds_is_a_refused_row_the_others_pass():
    client = Client(
        {
            "Successful": [{"Id": "0"}],
            "Failed": [
                {"Id": "1", "Code": "InvalidParameter", "SenderFault": True, "Message": "bad"}
            ],
        }
    )
    sent = rows(2)
    result = await SnsTopic(client, "arn:aws:sns:us-east-1:1:t", metrics=Metrics()).publish(sent)
    assert result.accepted == {sent[0].id}
    assert result.refused == {sent[1].id: "InvalidParameter: bad"}
    assert result.failure is None


async def test_an_entry_failing_for_the_topic_is_a_failure_never_a_parked_row():
    client = Client(
        {"Successful": [], "Failed": [{"Id": "0", "Code": "KMSDisabled", "SenderFault": True}]}
    )
    result = await SnsTopic(client, "arn:aws:sns:us-east-1:1:t", metrics=Metrics()).publish(rows(1))
    assert not result.accepted and not result.refused
    assert result.failure is not None and result.failure.kind == "sns_kms"


async def test_a_refused_call_names_its_cause():
    error = ClientError({"Error": {"Code": "AuthorizationError", "Message": "no"}}, "PublishBatch")
    with pytest.raises(TopicUnavailable) as raised:
        await SnsTopic(Client(error), "arn:aws:sns:us-east-1:1:t", metrics=Metrics()).publish(
            rows(1)
        )
    assert raised.value.kind == "sns_denied" and not raised.value.transient


async def test_the_published_body_is_sqs_safe():
    client = Client({"Successful": [{"Id": "0"}]})
    await SnsTopic(client, "arn:aws:sns:us-east-1:1:t", metrics=Metrics()).publish(
        rows(1, '{"c": "\ufffe\uffff"}')
    )
    assert client.entries[0]["Message"] == '{"c": "\\ufffe\\uffff"}'
