"""PublishBatch's response as adapters/sns_response.py reads it is what the SDK's own parser
(aiobotocore's query parser, as the client uses it) gives for the same response, its
ResponseMetadata included: on ministack's responses, an AWS-shaped one, and generated ones;
and any other response is the SDK's to read."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

import botocore.session
import pytest
from aiobotocore.parsers import AioResponseParserFactory
from botocore.parsers import ResponseParserError
from hypothesis import given, settings
from hypothesis import strategies as st

from order_service.adapters.sns_response import PublishBatchResponses, publish_batch_result

NS = 'xmlns="http://sns.amazonaws.com/doc/2010-03-31/"'
MINISTACK_HEADERS = {
    "content-type": "text/xml",
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "GET, POST, PUT, DELETE, HEAD, OPTIONS, PATCH",
    "access-control-allow-headers": "*",
    "access-control-expose-headers": "*",
    "x-amzn-requestid": "d1b38b01-04ee-49cc-9f70-1c6069a933f8",
    "x-amz-request-id": "d1b38b01-04ee-49cc-9f70-1c6069a933f8",
    "x-amz-id-2": "YpVC7b4vOa+fVhMFrIa5WW1pZAMhy1ZSaCXL3/a48JwkalFLOLMNrGSLsOZA/irZ",
    "content-length": "483",
    "date": "Mon, 07 Dec 2026 12:36:11 GMT",
}
# Captured from ministack (tests/integration/test_sns_response_live.py reads live ones too): a
# standard topic, and a FIFO topic with one entry refused.
MINISTACK_STANDARD = (
    b'<?xml version="1.0" encoding="UTF-8"?><PublishBatchResponse xmlns="http://sns.amazonaws'
    b'.com/doc/2010-03-31/"><PublishBatchResult><Successful><member><Id>0</Id><MessageId>b2480'
    b"ea8-65cf-4aa0-8304-98cafd885363</MessageId></member><member><Id>1</Id><MessageId>591cd7"
    b"ea-01b5-4a8d-b5b7-8ebef1f1c827</MessageId></member></Successful><Failed></Failed></Publi"
    b"shBatchResult><ResponseMetadata><RequestId>e232947b-1b61-41df-8187-57391def7e00</Request"
    b"Id></ResponseMetadata></PublishBatchResponse>"
)
MINISTACK_FIFO = (
    b'<?xml version="1.0" encoding="UTF-8"?><PublishBatchResponse xmlns="http://sns.amazonaws'
    b'.com/doc/2010-03-31/"><PublishBatchResult><Successful><member><Id>0</Id><MessageId>c2fd3'
    b"8f7-177e-46c6-8c64-974d405b890f</MessageId><SequenceNumber>00000000000000000001</Sequenc"
    b"eNumber></member></Successful><Failed><member><Id>1</Id><Code>InvalidParameterException"
    b"</Code><Message>Invalid parameter: The MessageGroupId parameter is required for FIFO top"
    b"ics</Message><SenderFault>true</SenderFault></member></Failed></PublishBatchResult><Res"
    b"ponseMetadata><RequestId>d8e56f83-2cc0-4504-a3cc-4609a7359b4b</RequestId></ResponseMeta"
    b"data></PublishBatchResponse>"
)
# As AWS writes it: indented, Failed first, members in its own order, a FIFO topic's sequence
# numbers, text to unescape, and ids beyond ASCII (an entry's Id is the caller's).
AWS_SHAPED = f"""<?xml version="1.0" encoding="UTF-8"?>
<PublishBatchResponse {NS}>
  <PublishBatchResult>
    <Failed>
      <member>
        <Code>InternalError</Code>
        <Id>é-2</Id>
        <Message>We &amp; you: "try again" &lt;later&gt;</Message>
        <SenderFault>false</SenderFault>
      </member>
      <member>
        <SenderFault>true</SenderFault>
        <Id>ж3</Id>
        <Code>InvalidParameter</Code>
        <Message>Invalid parameter: MessageGroupId</Message>
      </member>
    </Failed>
    <Successful>
      <member>
        <Id>订单-0</Id>
        <MessageId>567910cd-659e-55d4-8ccb-5aaf14679dc0</MessageId>
        <SequenceNumber>10000000000000003000</SequenceNumber>
      </member>
      <member>
        <MessageId>8f5d7d1e-52f9-5f36-9b6c-c0b0fbc7f6a1</MessageId>
        <Id>😀1</Id>
        <SequenceNumber>10000000000000004000</SequenceNumber>
      </member>
    </Successful>
  </PublishBatchResult>
  <ResponseMetadata>
    <RequestId>4c9e9d8e-8e2b-5f3a-a7d6-4c1f0c2b1a9e</RequestId>
  </ResponseMetadata>
</PublishBatchResponse>
""".encode()
AWS_HEADERS = {
    "x-amzn-RequestId": "4c9e9d8e-8e2b-5f3a-a7d6-4c1f0c2b1a9e",
    "Content-Type": "text/xml",
    "Content-Length": str(len(AWS_SHAPED)),
    "Date": "Mon, 07 Dec 2026 12:36:11 GMT",
}


@functools.cache
def output_shape(operation: str = "PublishBatch") -> Any:
    model = botocore.session.get_session().get_service_model("sns")
    return model.operation_model(operation).output_shape


def response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    return {
        "status_code": status,
        "headers": dict(headers or MINISTACK_HEADERS),
        "body": body,
        "context": {"operation_name": "PublishBatch"},
    }


def completed(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """The parsers' result: neither waits on anything, so no event loop is needed."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("the parser waited")


def sdk_parse(raw: dict[str, Any], shape: Any) -> Any:
    return completed(AioResponseParserFactory().create_parser("query").parse(raw, shape))


def our_parse(raw: dict[str, Any], shape: Any) -> Any:
    factory = PublishBatchResponses(AioResponseParserFactory())
    return completed(factory.create_parser("query").parse(raw, shape))


def outcome(parse: Callable[[dict[str, Any], Any], Any], raw: dict[str, Any]) -> Any:
    """The parsed dict, or the error's type and text (the SDK leaves a repeated member's XML
    nodes in its dict: those as their tag and text)."""
    try:
        return comparable(parse(raw, output_shape()))
    except Exception as error:  # compared, whatever it is
        return type(error), str(error)


def comparable(parsed: Any) -> Any:
    if isinstance(parsed, dict):
        return {k: comparable(v) for k, v in parsed.items()}
    if isinstance(parsed, list):
        return [comparable(v) for v in parsed]
    if isinstance(parsed, Element):
        return parsed.tag, parsed.text
    return parsed


@pytest.mark.parametrize(
    ("body", "headers"),
    [(MINISTACK_STANDARD, MINISTACK_HEADERS), (MINISTACK_FIFO, MINISTACK_HEADERS),
     (AWS_SHAPED, AWS_HEADERS)],
    ids=["ministack", "ministack-fifo", "aws-shaped"],
)  # fmt: skip
def test_a_publish_batch_response_reads_as_the_sdk_reads_it(
    body: bytes, headers: dict[str, str]
) -> None:
    assert publish_batch_result(body) is not None  # read here, not by the SDK
    ours = our_parse(response(body, headers=headers), output_shape())
    assert ours == sdk_parse(response(body, headers=headers), output_shape())
    assert set(ours["ResponseMetadata"]) == {"RequestId", "HTTPStatusCode", "HTTPHeaders"}


def test_the_aws_shaped_response_holds_what_the_relay_reads() -> None:
    parsed = our_parse(response(AWS_SHAPED, headers=AWS_HEADERS), output_shape())
    assert [e["Id"] for e in parsed["Successful"]] == ["订单-0", "😀1"]
    assert parsed["Successful"][0]["SequenceNumber"] == "10000000000000003000"
    assert [(e["Id"], e["SenderFault"]) for e in parsed["Failed"]] == [
        ("é-2", False),
        ("ж3", True),
    ]
    assert parsed["Failed"][0]["Message"] == 'We & you: "try again" <later>'
    assert (
        parsed["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
        == (AWS_HEADERS["x-amzn-RequestId"])
    )


ERROR = (
    f"<ErrorResponse {NS}><Error><Type>Sender</Type><Code>NotFound</Code><Message>Topic does "
    "not exist</Message></Error><RequestId>952c2b9b-0f84-4dfb-ae77-4bb9b764f913</RequestId>"
    "</ErrorResponse>"
).encode()
THROTTLED = ERROR.replace(b"NotFound", b"Throttling").replace(b"Sender", b"Receiver")


@pytest.mark.parametrize(
    ("body", "status"),
    [(ERROR, 404), (THROTTLED, 400), (b"<html><body>Service Unavailable</body></html>", 503),
     (b"", 500), (MINISTACK_STANDARD, 206)],
    ids=["not-found", "throttled", "html-503", "empty-500", "not-200"],
)  # fmt: skip
def test_an_error_or_other_status_is_the_sdks_to_read(body: bytes, status: int) -> None:
    """Retries and the relay's error kinds depend on the SDK's reading of errors."""
    ours = our_parse(response(body, status), output_shape())
    assert ours == sdk_parse(response(body, status), output_shape())


@pytest.mark.parametrize(
    "body",
    [
        # Unknown to the form read here: each goes to the SDK's parser, whatever it makes of it.
        MINISTACK_STANDARD.replace(b"<Failed></Failed>", b"<Failed></Failed><Extra>1</Extra>"),
        MINISTACK_STANDARD.replace(b"<Id>0</Id>", b"<Id>0</Id><Id>9</Id>"),
        MINISTACK_STANDARD.replace(b"<Id>0</Id>", b"<Id>0<b>x</b></Id>"),
        MINISTACK_STANDARD.replace(b"<member><Id>1", b"<entry><Id>1").replace(
            b"</MessageId></member></Successful>", b"</MessageId></entry></Successful>"
        ),
        MINISTACK_STANDARD.replace(b"<Failed></Failed>", b"<Failed></Failed><Failed></Failed>"),
        MINISTACK_STANDARD.replace(b"<ResponseMetadata>", b"<Other/><ResponseMetadata>"),
        MINISTACK_STANDARD.replace(b"PublishBatchResult>", b"PublishResult>"),
        MINISTACK_STANDARD.replace(b"PublishBatchResponse ", b"PublishResponse ").replace(
            b"</PublishBatchResponse>", b"</PublishResponse>"
        ),
        MINISTACK_STANDARD.replace(b"<MessageId>b2480", b"<Code>x</Code><MessageId>b2480"),
    ],
)
def test_a_response_of_another_form_is_the_sdks_to_read(body: bytes) -> None:
    assert publish_batch_result(body) is None
    assert outcome(our_parse, response(body)) == outcome(sdk_parse, response(body))


def test_malformed_xml_fails_as_the_sdk_fails() -> None:
    cut = response(MINISTACK_STANDARD[:-5])
    assert outcome(our_parse, cut)[0] is ResponseParserError
    assert outcome(our_parse, cut) == outcome(sdk_parse, cut)


def test_other_calls_and_a_checksum_context_are_the_sdks_to_read() -> None:
    topic = (
        f"<GetTopicAttributesResponse {NS}><GetTopicAttributesResult><Attributes><entry><key>"
        "TopicArn</key><value>arn:aws:sns:us-east-1:1:t</value></entry></Attributes>"
        "</GetTopicAttributesResult><ResponseMetadata><RequestId>r</RequestId>"
        "</ResponseMetadata></GetTopicAttributesResponse>"
    ).encode()
    shape = output_shape("GetTopicAttributes")
    assert our_parse(response(topic), shape) == sdk_parse(response(topic), shape)
    checked = response(MINISTACK_STANDARD)
    checked["context"]["checksum"] = {"response_algorithm": "crc32"}
    ours = our_parse(checked, output_shape())
    assert ours["ResponseMetadata"]["ChecksumAlgorithm"] == "crc32"
    assert ours == sdk_parse(checked, output_shape())


def test_with_the_sdks_debug_log_on_the_sdk_reads_and_logs_the_response(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="botocore.parsers"):
        ours = our_parse(response(MINISTACK_FIFO), output_shape())
    assert ours == sdk_parse(response(MINISTACK_FIFO), output_shape())
    assert any("Response body" in r.getMessage() for r in caplog.records)


# XML 1.0's characters (no surrogates, no controls but tab and newline; a CR would be read as a
# newline by both parsers alike, and is left out only to keep the examples readable).
xml_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r")
    .filter(lambda c: c in "\t\n" or ord(c) >= 0x20)
    .filter(lambda c: not 0xFFFE <= ord(c) <= 0xFFFF),
    max_size=20,
)
success_entry = st.fixed_dictionaries(
    {"Id": xml_text, "MessageId": xml_text}, optional={"SequenceNumber": xml_text}
)
failed_entry = st.fixed_dictionaries(
    {"Id": xml_text, "Code": xml_text},
    optional={
        "Message": xml_text,
        "SenderFault": st.sampled_from(["true", "false", "True", "", "1"]),
    },
)


def element(tag: str, text: str, empty: str) -> str:
    if not text and empty == "self-closing":
        return f"<{tag}/>"
    return f"<{tag}>{escape(text)}</{tag}>"


def entries_xml(tag: str, entries: list[dict[str, str]] | None, empty: str, gap: str) -> str:
    if entries is None:
        return ""
    members = "".join(
        f"<member>{gap}"
        + gap.join(element(k, v, empty) for k, v in entry.items())
        + f"{gap}</member>"
        for entry in entries
    )
    return element(tag, "", empty) if not members else f"<{tag}>{gap}{members}{gap}</{tag}>"


@settings(max_examples=300, deadline=None)
@given(
    successful=st.none() | st.lists(success_entry, max_size=10),
    failed=st.none() | st.lists(failed_entry, max_size=10),
    failed_first=st.booleans(),
    request_id=xml_text,
    namespace=st.sampled_from([NS, "", 'xmlns:sns="urn:x"']),
    empty=st.sampled_from(["self-closing", "open-close"]),
    gap=st.sampled_from(["", "\n  "]),
    header_value=xml_text.filter(lambda t: t.isprintable()),
)
def test_generated_responses_read_as_the_sdk_reads_them(
    successful: list[dict[str, str]] | None,
    failed: list[dict[str, str]] | None,
    failed_first: bool,
    request_id: str,
    namespace: str,
    empty: str,
    gap: str,
    header_value: str,
) -> None:
    lists = [
        entries_xml("Successful", successful, empty, gap),
        entries_xml("Failed", failed, empty, gap),
    ]
    if failed_first:
        lists.reverse()
    body = (
        f"<PublishBatchResponse {namespace}>{gap}<PublishBatchResult>{gap}{gap.join(lists)}{gap}"
        f"</PublishBatchResult>{gap}<ResponseMetadata>{gap}"
        f"{element('RequestId', request_id, empty)}{gap}</ResponseMetadata>{gap}"
        "</PublishBatchResponse>"
    ).encode()
    headers = {"X-Amzn-RequestId": header_value, "Content-Type": "text/xml"}
    assert publish_batch_result(body) is not None
    ours = our_parse(response(body, headers=headers), output_shape())
    assert ours == sdk_parse(response(body, headers=headers), output_shape())
