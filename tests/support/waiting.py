"""Waiting for a condition: polled with a deadline, so a test never sleeps for a guessed time."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_for(
    check: Callable[[], Any | Awaitable[Any]], timeout: float, what: str, interval: float = 0.2
) -> Any:
    """Calls `check` (plain or async) every `interval` seconds until it returns something
    truthy, and returns that; AssertionError naming `what` once `timeout` has passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
