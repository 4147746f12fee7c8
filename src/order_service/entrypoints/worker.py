"""`order-service worker`: the long-running process, exiting 0 after a clean stop."""

from __future__ import annotations

import asyncio

from order_service.bootstrap import install_stop_signals, run_worker
from order_service.settings import Settings


def run(settings: Settings) -> int:
    async def main() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        await run_worker(settings, stop)

    asyncio.run(main())
    return 0
