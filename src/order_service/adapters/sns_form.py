"""The body of SNS's query-protocol requests, written with less of the SDK's per-call work.

The relay's CPU per row is mostly the SDK's: for each PublishBatch botocore walks the input
shape to flatten ten entries into some 150 form fields, then percent-encodes them. For
PublishBatch with the entries `SnsTopic` builds (text fields and String/Number attributes), the
body is written here directly, in the order and form botocore's QuerySerializer gives
(tests/unit/test_sns_publish_batch_form.py holds it to the SDK's own serializer on the same
parameters); any other call or field goes to the SDK's serializer. What comes after the body
(endpoint rules, credentials, SigV4 signing, retries) stays the SDK's; a successful
PublishBatch's response is read by adapters/sns_response.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus

from botocore.awsrequest import AWSRequest

# urllib's quote_plus (RFC 3986 unreserved characters kept, space to "+", any other UTF-8 byte
# %XX) in a few C-level passes: the payloads are most of a PublishBatch, and quote_plus walks
# them byte by byte in Python. tests/unit/test_sns_form.py holds it to urllib.
_FORM_ASCII = {
    c: chr(c) if chr(c).isalnum() or chr(c) in "_.-~" else "+" if c == 0x20 else f"%{c:02X}"
    for c in range(128)
}
_FORM_SAFE_BYTES = bytes(c for c, quoted in _FORM_ASCII.items() if quoted == chr(c))
_FORM_QUOTED_BYTES = {c: b"+" if c == 0x20 else b"%%%02X" % c for c in range(256)}
# Text quote_plus leaves as it is (ids, uuids, attribute names and types): one regex match.
_UNQUOTED = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch
# Below this length the table is quicker; above it, one bytes.replace per distinct byte to
# quote (a status payload holds a dozen), found by deleting the safe ones: translate looks up
# each character's mapping in Python's dict, delete and replace scan in C. "%" goes first and
# "+" before " " becomes "+", so that nothing is quoted twice.
_LONG = 64


def _form_quote(text: str) -> str:
    if _UNQUOTED(text):
        return text
    if len(text) < _LONG:
        return text.translate(_FORM_ASCII) if text.isascii() else quote_plus(text)
    data = text.encode()
    quoted = set(data.translate(None, _FORM_SAFE_BYTES))
    for first in (0x25, 0x2B):  # "%", "+"
        if first in quoted:
            data = data.replace(bytes((first,)), _FORM_QUOTED_BYTES[first])
            quoted.discard(first)
    for byte in quoted:
        data = data.replace(bytes((byte,)), _FORM_QUOTED_BYTES[byte])
    return data.decode("ascii")


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
    quote = _form_quote
    parts = ["Action=PublishBatch", f"Version={quote(version)}", f"TopicArn={quote(arn)}"]
    add = parts.append
    for i, entry in enumerate(entries, 1):
        member = f"PublishBatchRequestEntries.member.{i}."
        for key, value in entry.items():
            if key in _ENTRY_TEXT and isinstance(value, str):
                add(f"{member}{key}={quote(value)}")
                continue
            if key != "MessageAttributes" or not value or not isinstance(value, dict):
                return None
            for j, (name, attribute) in enumerate(value.items(), 1):
                if (
                    not isinstance(name, str)
                    or not isinstance(attribute, dict)
                    or not _ATTRIBUTE_TEXT.issuperset(attribute)
                ):
                    return None
                at = f"{member}MessageAttributes.entry.{j}."
                add(f"{at}Name={quote(name)}")
                for field, text in attribute.items():
                    if not isinstance(text, str):
                        return None
                    add(f"{at}Value.{field}={quote(text)}")
    return "&".join(parts)


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
