"""The body of SNS's query-protocol requests, written with less of the SDK's per-call work.

The relay's CPU per row is mostly the SDK's: for each PublishBatch botocore walks the input
shape to flatten ten entries into some 150 form fields, then percent-encodes them. For
PublishBatch with the entries `SnsTopic` builds (text fields and String/Number attributes), the
body is written here directly, in the order and form botocore's QuerySerializer gives
(tests/unit/test_sns_form.py holds it to the SDK's own serializer on the same parameters); any
other call or field goes to the SDK's serializer. What comes after the body (endpoint rules,
credentials, SigV4 signing, retries, the response's parsing) stays the SDK's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus

from botocore.awsrequest import AWSRequest

# urllib's quote_plus on ASCII text (RFC 3986 unreserved characters kept, space to "+", any
# other byte %XX) as one str.translate: the payloads are most of a PublishBatch, and
# quote_plus walks them byte by byte in Python. tests/unit/test_sns_form.py holds it to urllib.
_FORM_ASCII = {
    c: chr(c) if chr(c).isalnum() or chr(c) in "_.-~" else "+" if c == 0x20 else f"%{c:02X}"
    for c in range(128)
}


_FORM_SAFE = frozenset(chr(c) for c, quoted in _FORM_ASCII.items() if quoted == chr(c))
_FORM_QUOTED = {chr(c): quoted for c, quoted in _FORM_ASCII.items()}
# Below this length the table is quicker; above it, one str.replace per distinct character to
# quote (a status payload holds a dozen): translate looks up each character's mapping in
# Python's dict, replace scans in C. "%" goes first and "+" before " " becomes "+", so that
# nothing is quoted twice.
_LONG = 64


def _form_quote(text: str) -> str:
    if not text.isascii():
        return quote_plus(text)
    if len(text) < _LONG:
        return text.translate(_FORM_ASCII)
    quoted = set(text)
    quoted -= _FORM_SAFE
    for first in ("%", "+"):
        if first in quoted:
            text = text.replace(first, _FORM_QUOTED[first])
            quoted.discard(first)
    for char in quoted:
        text = text.replace(char, _FORM_QUOTED[char])
    return text


def encode_form(fields: dict[str, Any]) -> str | None:
    """The body botocore would send for these query-protocol fields (None: not all text)."""
    if not all(isinstance(v, str) for v in fields.values()):
        return None
    return "&".join(f"{_form_quote(k)}={_form_quote(v)}" for k, v in fields.items())


def encode_form_once(request: AWSRequest, **_: Any) -> None:
    """SNS speaks the query protocol: botocore form-encodes the body (a dict) each time it is
    read, and SigV4 reads it once more to hash it before it is sent, so every call's body
    was percent-encoded twice. Encoding it here, before signing, leaves one cheaper pass.
    botocore builds a new request from the dict for each retry, and this runs again. (A
    PublishBatch's body is text already: PublishBatchForm wrote it.)"""
    if isinstance(request.data, dict):
        request.data = encode_form(request.data) or request.prepare().body


# An entry's members that are plain text in SNS's model (its other members are not written
# here); an attribute's value members likewise (BinaryValue is base64: left to the SDK).
_ENTRY_TEXT = frozenset(
    {"Id", "Message", "Subject", "MessageStructure", "MessageDeduplicationId", "MessageGroupId"}
)
_ATTRIBUTE_TEXT = frozenset({"DataType", "StringValue"})


def publish_batch_body(parameters: Mapping[str, Any], version: str) -> str | None:
    """The form body of PublishBatch(**parameters), as QuerySerializer + urlencode give it:
    fields in the parameters' order, lists as `.member.N`, the attribute map as `.entry.N.Name`
    and `.entry.N.Value.*`. None when they hold anything else (the SDK serializes those)."""
    if list(parameters) != ["TopicArn", "PublishBatchRequestEntries"]:
        return None
    arn, entries = parameters["TopicArn"], parameters["PublishBatchRequestEntries"]
    if not isinstance(arn, str) or not entries:
        return None
    parts = [
        "Action=PublishBatch",
        f"Version={_form_quote(version)}",
        f"TopicArn={_form_quote(arn)}",
    ]
    for i, entry in enumerate(entries, 1):
        prefix = f"PublishBatchRequestEntries.member.{i}"
        for key, value in entry.items():
            if key == "MessageAttributes" and value:
                for j, (name, attribute) in enumerate(value.items(), 1):
                    if not isinstance(name, str) or not _text_only(attribute, _ATTRIBUTE_TEXT):
                        return None
                    at = f"{prefix}.MessageAttributes.entry.{j}"
                    parts.append(f"{at}.Name={_form_quote(name)}")
                    parts.extend(f"{at}.Value.{k}={_form_quote(v)}" for k, v in attribute.items())
            elif key in _ENTRY_TEXT and isinstance(value, str):
                parts.append(f"{prefix}.{key}={_form_quote(value)}")
            else:
                return None
    return "&".join(parts)


def _text_only(fields: Any, allowed: frozenset[str]) -> bool:
    return (
        isinstance(fields, dict)
        and allowed.issuperset(fields)
        and all(isinstance(v, str) for v in fields.values())
    )


class PublishBatchForm:
    """The client's serializer with PublishBatch's body written by `publish_batch_body`
    (installed by sns_client on `client._serializer`, which botocore's BaseClient calls for
    each operation); every other call, and a PublishBatch it does not write, goes to the SDK's
    own serializer, `inner`."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def serialize_to_request(self, parameters: Any, operation_model: Any) -> dict[str, Any]:
        if operation_model.name == "PublishBatch" and not operation_model.endpoint:
            body = publish_batch_body(parameters, operation_model.metadata["apiVersion"])
            if body is not None:
                return {
                    "url_path": "/",
                    "query_string": "",
                    "method": operation_model.http.get("method", "POST"),
                    "headers": {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
                    "body": body,
                }
        request: dict[str, Any] = self._inner.serialize_to_request(parameters, operation_model)
        return request
