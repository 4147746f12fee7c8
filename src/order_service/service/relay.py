"""The outbox relay: publishes committed outbox rows to the topic, each order's in sequence.

Order per order with several relays: a relay claims *whole orders* (adapters/outbox.py: a
transaction-level advisory lock per order, tried and never waited for), reads all their
unpublished rows, and publishes them in rounds: round k holds the k-th row of every claimed
order, so an order's row is sent only after SNS accepted its predecessor, while a round's
rows (of different orders) go out in parallel PublishBatch calls of 10. An order whose row SNS
refuses is left for the next claim from that row on; what was accepted is marked published in
the claim's transaction. A crash between publish and mark republishes those rows with the same
id (at-least-once: consumers dedupe by `id`). Row-by-row `SKIP LOCKED` would let two relays
each take a different row of one order and race them; whole-order claims cannot.

Waking: a relay polls every `poll_interval` for rows other workers wrote, and its own worker's
commits wake it at once (an in-process event), so most rows leave within a round trip of their
commit and an idle fleet costs a few cheap queries a second. LISTEN/NOTIFY would wake every
relay for every batch and, worse, NOTIFY serialises all committing transactions on a global
lock at commit: a cost on the write path this design avoids.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import structlog

from order_service.errors import StoreUnavailable, TopicUnavailable
from order_service.metrics import Metrics
from order_service.service.ports import PUBLISH_BATCH_MAX, Outbox, PendingRow, Topic

log = structlog.get_logger("order_service.relay")


@dataclass(frozen=True)
class RelayConfig:
    poll_interval: float = 0.5
    claim_orders: int = 200
    retention_seconds: float = 24 * 3600.0
    retention_every: float = 60.0
    max_backoff: float = 30.0


class Relay:
    def __init__(
        self,
        outbox: Outbox,
        topic: Topic,
        config: RelayConfig | None = None,
        metrics: Metrics | None = None,
        wake: asyncio.Event | None = None,
    ) -> None:
        self._outbox = outbox
        self._topic = topic
        self._config = config or RelayConfig()
        self._metrics = metrics or Metrics()
        self.wake = wake or asyncio.Event()
        self.published = 0
        self._next_retention = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: publish, back off (doubling up to max_backoff) while the database or
        the topic fails, sleep until woken or the poll interval when nothing is waiting."""
        backoff = 0.0
        while not stop.is_set():
            try:
                full = await self.publish_once()
                await self._retention()
                backoff = 0.0
            except (StoreUnavailable, TopicUnavailable) as exc:
                backoff = min(max(backoff * 2, 0.5), self._config.max_backoff)
                log.warning("outbox relay backing off", error=str(exc), seconds=backoff)
                await _wait(stop, None, backoff)
                continue
            if not full:
                await _wait(stop, self.wake, self._config.poll_interval)

    async def publish_once(self) -> bool:
        """One claim: publishes its rows, marks those SNS accepted; True when the claim was
        full (publish again at once). Raises TopicUnavailable after marking what passed."""
        failure: TopicUnavailable | None = None
        async with self._outbox.claim(self._config.claim_orders) as claim:
            self._metrics.outbox_oldest_unpublished.set(claim.oldest_age_seconds)
            published, failure = await self._publish_in_rounds(claim.rows)
            if published:
                await claim.mark_published(published)
            full = claim.full
        self.published += len(published)
        self._metrics.outbox_published.inc(len(published))
        if failure is not None:
            raise failure
        return full

    async def _publish_in_rounds(
        self, rows: Sequence[PendingRow]
    ) -> tuple[list[UUID], TopicUnavailable | None]:
        queues: dict[UUID, list[PendingRow]] = {}
        for row in rows:
            queues.setdefault(row.order_id, []).append(row)
        for waiting in queues.values():
            waiting.reverse()  # pop() takes the lowest sequence
        published: list[UUID] = []
        failure: TopicUnavailable | None = None
        while queues:
            heads = [waiting[-1] for waiting in queues.values()]
            chunks = [
                heads[i : i + PUBLISH_BATCH_MAX] for i in range(0, len(heads), PUBLISH_BATCH_MAX)
            ]
            results = await asyncio.gather(
                *(self._topic.publish(chunk) for chunk in chunks), return_exceptions=True
            )
            for chunk, result in zip(chunks, results, strict=True):
                if isinstance(result, TopicUnavailable):
                    failure = result
                    accepted: set[UUID] = set()
                elif isinstance(result, BaseException):
                    raise result
                else:
                    accepted = result
                for row in chunk:
                    if row.id in accepted:
                        published.append(row.id)
                        queues[row.order_id].pop()
                    else:  # this order waits for the next claim, from this row on
                        del queues[row.order_id]
                if len(accepted) < len(chunk) and failure is None:
                    failure = TopicUnavailable(
                        f"SNS refused {len(chunk) - len(accepted)} of {len(chunk)} entries"
                    )
            queues = {order: waiting for order, waiting in queues.items() if waiting}
        return published, failure

    async def _retention(self) -> None:
        now = time.monotonic()
        if now < self._next_retention:
            return
        self._next_retention = now + self._config.retention_every
        deleted = await self._outbox.delete_published(self._config.retention_seconds)
        if deleted:
            log.info("outbox rows past retention deleted", deleted=deleted)


async def _wait(stop: asyncio.Event, wake: asyncio.Event | None, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
    if wake is not None:
        wake.clear()
