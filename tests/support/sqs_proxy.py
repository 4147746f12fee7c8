"""A fault-injecting HTTP proxy between the worker and the SQS endpoint (test tooling).

SQS speaks the JSON protocol: the action is the `X-Amz-Target` header. For each action the
proxy can hold requests (not forwarded until released), forward and hold the response (SQS
has acted, the worker has not heard), answer 500 or a throttling error, reset the connection,
or fail some entries of a DeleteMessageBatch (those are not forwarded, so SQS keeps them).
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from order_service.adapters.local import free_port


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
    seed: int = 0


class SqsFaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.faults = Faults()
        self.counts: dict[str, int] = {}
        self.received: dict[str, int] = {}  # message id -> times ReceiveMessage returned it
        self.held = 0  # requests or responses held right now
        self._release = asyncio.Event()
        self._drop = False
        self._rng = random.Random(0)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    def set(self, faults: Faults) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed)
        self._release = asyncio.Event()
        self._drop = False

    def release(self, *, drop: bool = False) -> None:
        """Stops holding; what was held goes on, or (`drop`) its connection is closed unsent,
        as when the worker that made the request has died."""
        self._drop = drop
        self.faults.hold_requests = set()
        self.faults.hold_responses = set()
        self._release.set()

    def _count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    async def start(self) -> SqsFaultProxy:
        self._session = aiohttp.ClientSession()
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        self._release.set()
        if self._runner:
            await self._runner.cleanup()
        if self._session:
            await self._session.close()

    async def _hold(self) -> None:
        self.held += 1
        try:
            await self._release.wait()
        finally:
            self.held -= 1

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        action = request.headers.get("X-Amz-Target", "").rpartition(".")[2] or "other"
        self._count(action)
        payload = await request.read()
        faults = self.faults
        if action in faults.hold_requests:
            self._count(f"{action}:held-request")
            await self._hold()
            if self._drop:
                return _reset(request)
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
            return _reset(request)
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
            self.counts["fault:failed-entry"] = self.counts.get("fault:failed-entry", 0) + len(
                failed
            )
            if not kept:
                return web.json_response({"Successful": [], "Failed": failed})
            payload = json.dumps({**body, "Entries": kept}).encode()
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in ("host", "content-length", "transfer-encoding")
        }
        assert self._session is not None
        async with self._session.request(
            request.method, self.upstream + request.path_qs, data=payload, headers=headers
        ) as upstream:
            status, content = upstream.status, await upstream.read()
            content_type = upstream.headers.get("Content-Type", "application/x-amz-json-1.0")
        if action in faults.hold_responses:
            self._count(f"{action}:held-response")
            await self._hold()
            if self._drop:
                return _reset(request)
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


def _reset(request: web.Request) -> web.Response:
    if request.transport is not None:  # None: the client has gone already
        request.transport.close()
    return web.Response(status=500)  # never reaches the client: its connection is gone
