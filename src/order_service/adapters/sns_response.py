"""PublishBatch's response read with less of the SDK's per-call work.

botocore reads every query-protocol response by walking the output shape over the XML tree,
one handler lookup and dict per node: some 12 us per row for a ten-entry PublishBatch, a tenth
of the relay's cost in the SDK. A successful PublishBatchResponse has one fixed form
(PublishBatchResult: Successful and Failed lists of members; ResponseMetadata), so it is read
here from the same XML tree by one loop. Anything else goes to the SDK's own parser: every
other call, any status but 200 (errors, and so retries and their error codes, stay the SDK's),
and a PublishBatchResponse with a tag, attribute of the shape or repetition not read here.
tests/unit/test_sns_response.py holds the result to the SDK parser's, ResponseMetadata
included, on ministack's responses, an AWS-shaped one and generated ones.
"""

from __future__ import annotations

import logging
from typing import Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder, XMLParser

from botocore.utils import lowercase_dict

# botocore's parsers log each response's headers and body at DEBUG: with that on, the SDK reads
# every response itself, so that its log stays whole.
_SDK_LOG = logging.getLogger("botocore.parsers")

# Each list's entry members (all text in SNS's model, but SenderFault: a boolean).
_ENTRY_MEMBERS = {
    "Successful": frozenset({"Id", "MessageId", "SequenceNumber"}),
    "Failed": frozenset({"Id", "Code", "Message", "SenderFault"}),
}


def _tag(node: Element) -> str:
    """The tag without its namespace, as botocore's `_node_tag` gives it ("{uri}Name")."""
    tag = node.tag
    return tag[tag.index("}") + 1 :] if tag[:1] == "{" else tag


def publish_batch_result(body: bytes) -> dict[str, Any] | None:
    """What botocore's QueryParser gives for this successful PublishBatchResponse body,
    before the HTTP metadata (None: not the form read here)."""
    # The XML parser botocore builds for the same body (the SDK's choice; SNS's answer, not
    # untrusted input).
    try:
        parser = XMLParser(target=TreeBuilder(), encoding="utf-8")  # noqa: S314
        parser.feed(body)
        root = parser.close()
    except ParseError:
        return None
    if _tag(root) != "PublishBatchResponse" or len(root) != 2:
        return None
    result, metadata = root
    if _tag(result) != "PublishBatchResult" or _tag(metadata) != "ResponseMetadata":
        return None
    parsed: dict[str, Any] = {}
    for entries in result:
        name = _tag(entries)
        if name not in _ENTRY_MEMBERS or name in parsed:
            return None
        members = _ENTRY_MEMBERS[name]
        parsed[name] = rows = []
        for member in entries:
            if _tag(member) != "member":
                return None
            row: dict[str, Any] = {}
            for field in member:
                key = _tag(field)
                if key not in members or key in row or len(field):
                    return None
                text = field.text or ""  # <Id/> is "" to botocore, not None
                row[key] = text == "true" if key == "SenderFault" else text
            rows.append(row)
    # ResponseMetadata's text as is (None when empty), as botocore's _inject_response_metadata.
    response_metadata: dict[str, Any] = {}
    for field in metadata:
        key = _tag(field)
        if key in response_metadata or len(field):
            return None
        response_metadata[key] = field.text
    parsed["ResponseMetadata"] = response_metadata
    return parsed


class PublishBatchResponses:
    """The client's response parser factory with PublishBatch's successful responses read by
    `publish_batch_result` (installed by sns_client on the endpoint's
    `_response_parser_factory`, which botocore asks for a parser at each response); the
    parser it gives hands any other response to the SDK's own, from `inner`."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def create_parser(self, protocol: str) -> _Parser:
        return _Parser(self._inner, protocol)


class _Parser:
    def __init__(self, factory: Any, protocol: str) -> None:
        self._factory = factory
        self._protocol = protocol

    async def parse(self, response: dict[str, Any], shape: Any) -> Any:
        if (
            shape is not None
            and shape.name == "PublishBatchResponse"
            and response["status_code"] == 200
            and self._protocol == "query"
            and not _SDK_LOG.isEnabledFor(logging.DEBUG)
            and not response.get("context", {}).get("checksum", {}).get("response_algorithm")
        ):
            parsed = publish_batch_result(response["body"])
            if parsed is not None:
                # As the SDK's ResponseParser.parse adds them (RetryAttempts: its endpoint).
                parsed["ResponseMetadata"]["HTTPStatusCode"] = 200
                parsed["ResponseMetadata"]["HTTPHeaders"] = lowercase_dict(response["headers"])
                return parsed
        return await self._factory.create_parser(self._protocol).parse(response, shape)
