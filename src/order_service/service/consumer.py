"""The consuming loop: pollers feed a bounded buffer, processors turn it into committed batches,
then acknowledge each message by its outcome.

At-least-once in, exactly-once effect out: a message is deleted only after `process` returned
its outcome, which for applied and rejected means after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog

from order_service.domain.lifecycle import Outcome
from order_service.errors import OrderServiceError, QueueUnavailable, StoreUnavailable
from order_service.metrics import Metrics
from order_service.service.message_logs import MessageLogs, log_batch
from order_service.service.ports import MessageQueue, OrderStore
from order_service.service.processing import BatchProcessor, Message, Result

log = structlog.get_logger("order_service.consumer")
_DELETE = frozenset({Outcome.APPLIED, Outcome.DUPLICATE, Outcome.REJECTED})


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    pollers: int = 4
    processors: int = 2
    max_in_flight: int = 200
    batch_max_messages: int = 100
    wait_time_seconds: int = 20
    visibility_timeout: int = 60
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 300.0
    message_logs: MessageLogs = "not-applied"  # which messages get a line of their own

    def backoff(self, receive_count: int) -> int:
        """Visibility for a deferred message: exponential in its receive count, capped.

        Growing fourfold, the retries before the redrive policy's 5th receive span about 85
        times the base (170 s by default): longer than the visibility timeout during which
        a crashed worker's messages (an order.placed, say) stay hidden."""
        delay = self.retry_base_seconds * 4.0 ** max(receive_count - 1, 0)
        return max(1, math.ceil(min(delay, self.retry_max_seconds, 43_200.0)))


class Consumer:
    def __init__(
        self,
        queue: MessageQueue,
        store: OrderStore,
        config: ConsumerConfig,
        metrics: Metrics,
        *,
        store_ready: Callable[[], Awaitable[None]],
    ) -> None:
        self._queue = queue
        self._store = store
        self._processor = BatchProcessor(store)
        self._config = config
        self._metrics = metrics
        self._store_ready = store_ready
        self._buffer: asyncio.Queue[Message | None] = asyncio.Queue()  # None: stop
        # Every message received and not yet acknowledged or handed back, with when it was
        # received: the heartbeat keeps all of them invisible, buffered ones included.
        self._in_flight: dict[str, tuple[Message, float]] = {}
        self._capacity = asyncio.Semaphore(config.max_in_flight)
        self._store_up = asyncio.Event()
        self._recovery: asyncio.Task[None] | None = None
        self.processed = 0

    async def run(self, stop: asyncio.Event, grace_seconds: float) -> None:
        """Consume until `stop` is set; then finish in-flight work within `grace_seconds` and
        hand prefetched messages back to the queue."""
        await self._wait_for_store(stop)
        pollers = [
            asyncio.create_task(self._poll(), name=f"poller-{i}")
            for i in range(self._config.pollers)
        ]
        workers = [
            asyncio.create_task(self._work(), name=f"processor-{i}")
            for i in range(self._config.processors)
        ]
        heartbeat = asyncio.create_task(self._heartbeat(), name="heartbeat")
        await stop.wait()
        for task in pollers:
            task.cancel()
        await asyncio.gather(*pollers, return_exceptions=True)
        # Processors finish the batch they hold; what is still buffered goes back at once.
        await self._release_buffered()
        for _ in workers:
            self._buffer.put_nowait(None)
        _, pending = await asyncio.wait(workers, timeout=grace_seconds)
        for task in [*pending, heartbeat, *([self._recovery] if self._recovery else [])]:
            task.cancel()
        await asyncio.gather(*workers, heartbeat, return_exceptions=True)
        if pending:
            log.warning("grace period over; unfinished batches return after their visibility")

    async def _wait_for_store(self, stop: asyncio.Event) -> None:
        delay = 0.5
        while not stop.is_set():
            try:
                await self._store_ready()
                self._store_up.set()
                return
            except StoreUnavailable as exc:
                log.warning("database not reachable; retrying", error=str(exc), retry_in=delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 10)

    async def _poll(self) -> None:
        delay = 0.5
        while True:
            await self._store_up.wait()  # no point taking messages the database can't take
            for _ in range(10):
                await self._capacity.acquire()
            messages: list[Message] = []
            try:
                messages = await self._queue.receive(10, self._config.wait_time_seconds)
                delay = 0.5
            except Exception as exc:  # QueueUnavailable, or a bug: keep polling either way
                log.warning("receive failed; retrying", error=str(exc), retry_in=delay)
                messages = []
                await asyncio.sleep(delay)
                delay = min(delay * 2, 20)
            finally:
                for _ in range(10 - len(messages)):
                    self._capacity.release()
            self._metrics.in_flight.inc(len(messages))
            now = time.monotonic()
            for message in messages:
                self._in_flight[message.receipt_handle] = (message, now)
                self._buffer.put_nowait(message)

    async def _work(self) -> None:
        while (first := await self._buffer.get()) is not None:
            batch = [first]
            while len(batch) < self._config.batch_max_messages and not self._buffer.empty():
                message = self._buffer.get_nowait()
                if message is None:  # stop: finish this batch first
                    self._buffer.put_nowait(None)
                    break
                batch.append(message)
            try:
                await self._handle(batch)
            except Exception:
                # A bug must not kill the processor; unacknowledged messages come back later.
                self._metrics.errors.labels("processing").inc()
                log.exception("batch failed unexpectedly", batch=len(batch))
            finally:
                self._done(batch)

    def _done(self, messages: Sequence[Message]) -> None:
        for message in messages:
            self._in_flight.pop(message.receipt_handle, None)
            self._capacity.release()
        self._metrics.in_flight.dec(len(messages))

    async def _release_buffered(self) -> None:
        batch: list[Message] = []
        while not self._buffer.empty():
            message = self._buffer.get_nowait()
            if message is not None:
                batch.append(message)
        if not batch:
            return
        try:
            await self._queue.change_visibility(batch, [0] * len(batch))
        except QueueUnavailable as exc:
            log.warning("could not release prefetched messages", error=str(exc))
        self._done(batch)
        log.info("released prefetched messages", count=len(batch))

    async def _handle(self, batch: list[Message]) -> None:
        started = time.perf_counter()
        results = await self._processor.process(batch)
        try:
            await self._acknowledge(results)
        except OrderServiceError as exc:
            # Nothing is lost: unacknowledged messages come back after their visibility timeout.
            self._metrics.errors.labels("acknowledge").inc()
            log.error("acknowledgement failed", error=str(exc), batch=len(batch))
        elapsed = time.perf_counter() - started
        self._metrics.batch_seconds.observe(elapsed)
        self._metrics.batch_size.observe(len(batch))
        self._report(results, elapsed)
        if any(r.outcome is Outcome.TRANSIENT for r in results) and self._store_up.is_set():
            # Stop taking messages until the database answers again (probed in the background).
            self._store_up.clear()
            self._recovery = asyncio.create_task(self._wait_for_store(asyncio.Event()))

    async def _heartbeat(self) -> None:
        """Keeps received messages invisible while they wait in the buffer or are processed,
        so that none is redelivered (and counted towards the redrive policy) meanwhile.

        One loop for the whole worker. A message is extended once it is older than one
        interval: younger ones still have two intervals of visibility left at the next tick.
        """
        interval = max(self._config.visibility_timeout / 3, 1)
        timeout = self._config.visibility_timeout
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            due = [m for m, since in list(self._in_flight.values()) if now - since >= interval]
            if not due:
                continue
            try:
                failed = await self._queue.change_visibility(due, [timeout] * len(due))
            except QueueUnavailable as exc:
                failed = [(m, str(exc)) for m in due]
            for message in due:
                if message.receipt_handle in self._in_flight:
                    self._in_flight[message.receipt_handle] = (message, now)
            if failed:
                # The batch still commits; a redelivery meanwhile is absorbed as a duplicate.
                self._metrics.errors.labels("heartbeat").inc(len(failed))
                log.warning("heartbeat could not extend visibility", failed=len(failed))

    async def _acknowledge(self, results: list[Result]) -> None:
        to_delete = [r.message for r in results if r.outcome in _DELETE]
        for result in results:
            if result.outcome is Outcome.INVALID and await self._dead_letter(result):
                to_delete.append(result.message)
        deferred = [r.message for r in results if r.outcome is Outcome.DEFERRED]
        if deferred:
            timeouts = [self._config.backoff(m.receive_count) for m in deferred]
            await self._queue.change_visibility(deferred, timeouts)
        if to_delete:
            failed = await self._queue.delete(to_delete)
            if failed:
                # Effects are committed; a redelivery of these is absorbed as a duplicate.
                self._metrics.errors.labels("delete").inc(len(failed))
                log.error(
                    "delete failed after commit; redelivery will be a duplicate",
                    failed=[{"message_id": m.message_id, "code": code} for m, code in failed],
                )
        self.processed += len(results)

    async def _dead_letter(self, result: Result) -> bool:
        reason = result.reason or "invalid"
        try:
            if not await self._queue.send_to_dlq(result.message, reason):
                await self._store.quarantine(result.message.message_id, result.message.body, reason)
        except OrderServiceError as exc:
            log.error(
                "could not dead-letter; message stays",
                error=str(exc),
                message_id=result.message.message_id,
            )
            return False
        return True

    def _report(self, results: list[Result], elapsed: float) -> None:
        counts = Counter(r.outcome.value for r in results)
        for outcome, count in counts.items():
            self._metrics.messages.labels(outcome).inc(count)
        log_batch(results, elapsed, self._config.message_logs)
