"""A fault-injecting HTTP proxy between the worker and the SQS endpoint (test tooling).

SQS speaks the JSON protocol: the action is the `X-Amz-Target` header. For each action the
proxy can hold requests (not forwarded until released), forward and hold the response (SQS
has acted, the worker has not heard), answer 500 or a throttling error, reset the connection,
or fail some entries of a DeleteMessageBatch (those are not forwarded, so SQS keeps them).
A script gives the next calls of an action their faults in turn; the ReceiveRequestAttemptId
of every ReceiveMessage is recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from aiohttp import web

from tests.support.fault_proxy import FaultProxy, reset


@dataclass
class Faults:
    hold_requests: set[str] = field(default_factory=set)  # actions held before forwarding
    hold_responses: set[str] = field(default_factory=set)  # forwarded, answer held
    error_rate: float = 0.0  # 500 InternalError
    throttle_rate: float = 0.0  # 400 ThrottlingException (botocore retries it)
    reset_rate: float = 0.0  # connection closed without an answer
    failed_entry_rate: float = 0.0  # DeleteMessageBatch entries answered as Failed
    fail_actions: set[str] = field(default_factory=set)  # every call of these answers 500
    # SQS's 256 KiB limit on body plus attributes, which ministack does not enforce.
    enforce_size_limit: bool = False
    # action -> the faults of its next calls, in turn: "reset" (no answer, SQS not told),
    # "lost-answer" (SQS acted, the answer lost), "throttle".
    script: dict[str, list[str]] = field(default_factory=dict)
    seed: int = 0


class SqsFaultProxy(FaultProxy):
    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, Faults())
        self.faults: Faults
        self.received: dict[str, int] = {}  # message id -> times ReceiveMessage returned it
        self.attempt_ids: list[str | None] = []  # of each ReceiveMessage, in arrival order

    def release(self, *, drop: bool = False) -> None:
        self.faults.hold_requests = set()
        self.faults.hold_responses = set()
        super().release(drop=drop)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        action = request.headers.get("X-Amz-Target", "").rpartition(".")[2] or "other"
        self._count(action)
        payload = await request.read()
        faults = self.faults
        if action == "ReceiveMessage":
            self.attempt_ids.append(json.loads(payload).get("ReceiveRequestAttemptId"))
        scripted = faults.script.get(action)
        step = scripted.pop(0) if scripted else None
        if step is not None:
            self._count(f"script:{step}")
        if step == "reset":
            return reset(request)
        if step == "throttle":
            return _error(400, "ThrottlingException", "Rate exceeded")
        if step == "lost-answer":
            await self._forward(request, payload, "application/x-amz-json-1.0")
            return reset(request)
        if action in faults.hold_requests:
            self._count(f"{action}:held-request")
            if await self._hold():
                return reset(request)
        if action in faults.fail_actions:
            self._count(f"{action}:failed")
            return _error(500, "InternalError", "injected")
        if faults.enforce_size_limit and action == "SendMessage" and _too_large(payload):
            self._count("fault:too-large")
            return _error(
                400,
                "InvalidParameterValue",
                "One or more parameters are invalid. Reason: Message must be shorter than "
                "262144 bytes.",
            )
        roll = self._rng.random()
        if roll < faults.reset_rate:
            self._count("fault:reset")
            return reset(request)
        roll -= faults.reset_rate
        if roll < faults.error_rate:
            self._count("fault:500")
            return _error(500, "InternalError", "injected")
        roll -= faults.error_rate
        if roll < faults.throttle_rate:
            self._count("fault:throttle")
            return _error(400, "ThrottlingException", "Rate exceeded")
        failed: list[dict[str, object]] = []
        if action == "DeleteMessageBatch" and faults.failed_entry_rate:
            body = json.loads(payload)
            kept = []
            for entry in body["Entries"]:
                if self._rng.random() < faults.failed_entry_rate:
                    failed.append(
                        {"Id": entry["Id"], "SenderFault": False, "Code": "InternalError"}
                    )
                else:
                    kept.append(entry)
            self._count("fault:failed-entry", len(failed))
            if not kept:
                return web.json_response({"Successful": [], "Failed": failed})
            payload = json.dumps({**body, "Entries": kept}).encode()
        status, content, content_type = await self._forward(
            request, payload, "application/x-amz-json-1.0"
        )
        if action in faults.hold_responses:
            self._count(f"{action}:held-response")
            if await self._hold():
                return reset(request)
        if action == "ReceiveMessage" and status == 200:
            for message in json.loads(content).get("Messages", []):
                self.received[message["MessageId"]] = self.received.get(message["MessageId"], 0) + 1
        if failed:
            answer = json.loads(content)
            answer["Failed"] = [*answer.get("Failed", []), *failed]
            content = json.dumps(answer).encode()
        return web.Response(status=status, body=content, headers={"Content-Type": content_type})


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"__type": f"com.amazonaws.sqs#{code}", "message": message},
        status=status,
        headers={"x-amzn-query-error": f"{code};Sender"},
        content_type="application/x-amz-json-1.0",
    )


def _too_large(payload: bytes) -> bool:
    """Body plus message attributes (names, types and values), as SQS counts them."""
    request = json.loads(payload)
    size = len(request.get("MessageBody", "").encode())
    for name, attribute in request.get("MessageAttributes", {}).items():
        size += len(name.encode()) + len(attribute.get("DataType", "").encode())
        size += len(attribute.get("StringValue", "").encode())
    return size > 256 * 1024
