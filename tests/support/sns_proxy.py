"""A fault-injecting HTTP proxy between the relay and the SNS endpoint (test tooling).

SNS speaks the query protocol: the action is the form's `Action`. For PublishBatch the proxy
can hold requests (not forwarded until released, or dropped), answer 500 or `Throttling`
(botocore retries both), and it records, in the order SNS accepted them, each published
row's (order id, sequence): what shows that an order's rows left in sequence.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

from order_service.adapters.local import free_port

PUBLISH = "PublishBatch"


@dataclass
class SnsFaults:
    hold: bool = False  # PublishBatch requests held before forwarding
    error_rate: float = 0.0  # 500 InternalError
    throttle_rate: float = 0.0  # 400 Throttling
    seed: int = 0


class SnsFaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.faults = SnsFaults()
        self.counts: dict[str, int] = {}
        self.accepted: list[tuple[str, int]] = []  # (order id, sequence) as SNS accepted them
        self.held = 0
        self._release = asyncio.Event()
        self._drop = False
        self._rng = random.Random(0)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    def set(self, faults: SnsFaults) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed)
        self._release = asyncio.Event()
        self._drop = False

    def release(self, *, drop: bool = False) -> None:
        """What was held goes on, or (`drop`) is never forwarded: its sender has died."""
        self._drop = drop
        self.faults.hold = False
        self._release.set()

    def _count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    async def start(self) -> SnsFaultProxy:
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

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        payload = await request.read()
        form = dict(parse_qsl(payload.decode(errors="replace")))
        action = form.get("Action", "other")
        self._count(action)
        if action == PUBLISH:
            if self.faults.hold:
                self._count("held")
                self.held += 1
                try:
                    await self._release.wait()
                finally:
                    self.held -= 1
                if self._drop:
                    if request.transport is not None:
                        request.transport.close()
                    return web.Response(status=500)
            roll = self._rng.random()
            if roll < self.faults.error_rate:
                self._count("fault:500")
                return _error(500, "InternalError", "Receiver")
            if roll < self.faults.error_rate + self.faults.throttle_rate:
                self._count("fault:throttle")
                return _error(400, "Throttling", "Sender")
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
            content_type = upstream.headers.get("Content-Type", "text/xml")
        if action == PUBLISH and status == 200:
            self._record(form, content.decode())
        return web.Response(status=status, body=content, headers={"Content-Type": content_type})

    def _record(self, form: dict[str, str], answer: str) -> None:
        # Entries are member.N; the answer names the successful ones by their Id.
        for key, message in sorted(form.items()):
            if key.startswith("PublishBatchRequestEntries.member.") and key.endswith(".Message"):
                number = key.split(".")[2]
                entry_id = form[f"PublishBatchRequestEntries.member.{number}.Id"]
                if f"<Id>{entry_id}</Id>" in answer:
                    body = json.loads(message)
                    self.accepted.append((body["order_id"], body["sequence"]))


def _error(status: int, code: str, kind: str) -> web.Response:
    body = (
        '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
        f"<Error><Type>{kind}</Type><Code>{code}</Code><Message>injected</Message></Error>"
        "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    )
    return web.Response(status=status, body=body.encode(), content_type="text/xml")
