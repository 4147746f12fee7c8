"""The SNS client's one-pass form encoding (adapters/sns_form.py) sends exactly the body botocore's
own preparer would: urllib's urlencode of the fields' UTF-8 bytes."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from botocore.awsrequest import AWSRequest
from hypothesis import given
from hypothesis import strategies as st

from order_service.adapters.sns_form import encode_form, encode_form_once

FIELDS = st.dictionaries(st.text(max_size=40), st.text(max_size=200), max_size=30)
ASCII_FIELDS = st.dictionaries(
    st.text(st.characters(max_codepoint=127), max_size=40),
    st.text(st.characters(max_codepoint=127), max_size=200),
    max_size=30,
)


def botocore_body(fields: dict[str, str]) -> str:
    return urlencode([(k.encode(), v.encode()) for k, v in fields.items()], doseq=True)


@given(FIELDS)
def test_any_text_is_encoded_as_botocore_would(fields: dict[str, str]) -> None:
    assert encode_form(fields) == botocore_body(fields)


@given(ASCII_FIELDS)
def test_ascii_text_takes_the_table_and_matches(fields: dict[str, str]) -> None:
    assert encode_form(fields) == botocore_body(fields)


@given(st.text(st.characters(max_codepoint=127), min_size=60, max_size=2000))
def test_long_ascii_text_takes_the_replaces_and_matches(text: str) -> None:
    assert encode_form({"Message": text}) == botocore_body({"Message": text})


@pytest.mark.parametrize(
    "text", ["%2B+ %", "+" * 70, "%" * 70, " " * 70, "%20+%2B" * 20, "a" * 64, "a" * 63 + "+"]
)
def test_quoting_never_quotes_twice(text: str) -> None:
    assert encode_form({"Message": text}) == botocore_body({"Message": text})


def test_a_status_payload_and_its_attributes() -> None:
    fields = {
        "Action": "PublishBatch",
        "PublishBatchRequestEntries.member.1.Message": '{"status": "PLACED", "total": "28.99"}',
        "PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.StringValue": "é ~",
    }
    assert encode_form(fields) == botocore_body(fields)


def test_fields_that_are_not_all_text_are_left_to_botocore() -> None:
    assert encode_form({"Action": "PublishBatch", "Count": 3}) is None
    request = AWSRequest(method="POST", url="https://sns.test/", data={"Count": 3, "A": "b c"})
    encode_form_once(request)
    assert request.data == "Count=3&A=b+c"


def test_the_request_body_is_encoded_once_before_signing() -> None:
    request = AWSRequest(method="POST", url="https://sns.test/", data={"Message": '{"a": 1}'})
    encode_form_once(request)
    assert request.data == "Message=%7B%22a%22%3A+1%7D"
    assert request.body == b"Message=%7B%22a%22%3A+1%7D"
