"""The plumbing of the HTTP fault proxies (sqs_proxy.py, sns_proxy.py): a local server on its
own port that forwards each request to the real endpoint unless the subclass's `_handle`
injects a fault first, holds that can be released or dropped, and counts by key."""

from __future__ import annotations

import asyncio
import random
from typing import Any, Self

import aiohttp
from aiohttp import web

from order_service.entrypoints.local_servers import free_port


class FaultProxy:
    def __init__(self, upstream: str, faults: Any) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.faults = faults
        self.counts: dict[str, int] = {}
        self.held = 0  # requests or responses held right now
        self._release = asyncio.Event()
        self._drop = False
        self._rng = random.Random(0)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    def set(self, faults: Any) -> None:
        """New faults from now on, drawn from their own seed."""
        self.faults = faults
        self._rng = random.Random(faults.seed)
        self._release = asyncio.Event()
        self._drop = False

    def release(self, *, drop: bool = False) -> None:
        """Stops holding; what was held goes on, or (`drop`) its connection is closed unsent,
        as when the process that made the request has died."""
        self._drop = drop
        self._release.set()

    async def start(self) -> Self:
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
        raise NotImplementedError

    def _count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    async def _hold(self) -> bool:
        """Waits for `release`; True when what was held is to be dropped."""
        self.held += 1
        try:
            await self._release.wait()
        finally:
            self.held -= 1
        return self._drop

    async def _forward(
        self, request: web.Request, payload: bytes, default_type: str
    ) -> tuple[int, bytes, str]:
        """The real endpoint's answer to this request with `payload` as its body."""
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in ("host", "content-length", "transfer-encoding")
        }
        assert self._session is not None
        async with self._session.request(
            request.method, self.upstream + request.path_qs, data=payload, headers=headers
        ) as upstream:
            content_type = upstream.headers.get("Content-Type", default_type)
            return upstream.status, await upstream.read(), content_type


def reset(request: web.Request) -> web.Response:
    """The connection closed without an answer."""
    if request.transport is not None:  # None: the client has gone already
        request.transport.close()
    return web.Response(status=500)  # never reaches the client: its connection is gone
