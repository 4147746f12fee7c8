"""The HTTP endpoints: /health (alive), /ready (dependencies reachable), /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from order_service.errors import ConfigError
from order_service.metrics import Metrics

Ping = Callable[[], Awaitable[None]]


async def _check(pings: Mapping[str, Ping]) -> tuple[list[str], dict[str, str]]:
    async def one(ping: Ping) -> str | None:
        try:
            await asyncio.wait_for(ping(), 3)
        except Exception as exc:  # any failure makes the dependency "failing"; report it
            return f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
        return None

    names = list(pings)
    errors = await asyncio.gather(*(one(pings[n]) for n in names))
    ok = [n for n, e in zip(names, errors, strict=True) if e is None]
    failing = {n: e for n, e in zip(names, errors, strict=True) if e is not None}
    return ok, failing


def build_app(
    metrics: Metrics,
    pings: Mapping[str, Ping],
    *,
    stuck: Callable[[], str | None] = lambda: None,
    details: Callable[[], Mapping[str, str]] = dict,
) -> web.Application:
    """`details`: what /ready says beside its checks (the queue type)."""

    async def health(_: web.Request) -> web.Response:
        # Never touches the database or the queue: a load balancer must not kill a worker
        # because a dependency is down. Only a consuming loop that is stuck (no progress while
        # nothing excuses it) fails it, so that the orchestrator replaces the task.
        reason = stuck()
        if reason is not None:
            return web.json_response({"status": "stuck", "reason": reason}, status=503)
        return web.json_response({"status": "ok"})

    async def ready(_: web.Request) -> web.Response:
        ok, failing = await _check(pings)
        body = {**details(), "ok": ok, "failing": failing}
        return web.json_response(body, status=503 if failing else 200)

    async def metrics_endpoint(_: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(metrics.registry))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics_endpoint)
    return app


async def start_http(app: web.Application, port: int, host: str = "0.0.0.0") -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:  # in use, or privileged: the setting is wrong, not the machine
        await runner.cleanup()
        raise ConfigError(
            f"HEALTH_PORT: cannot listen on port {port} ({exc.strerror or exc}); "
            "give a free port from 1 to 65535"
        ) from None
    return runner
